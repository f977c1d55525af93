//! Black-box contract tests over a real socket: one test per OSB v2.17 rule the
//! broker follows (named after the rule), provisioning end to end, the resource
//! API, access control and bad input. Each test starts its own broker.

#[path = "../common/mod.rs"]
mod common;

const BACKEND: common::Backend = common::Backend::Embedded;

mod access;
mod bad_input;
mod concurrency;
mod kubectl;
mod lifecycle_rules;
mod namespace_loss;
mod osb_catalog;
mod osb_headers;
mod osb_instances;
mod osb_provision;
mod provisioning;
mod resource_api;
mod slow_clients;
