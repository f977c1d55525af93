//! The command line (`meshbroker get|apply|delete`) as a person uses it: the
//! real binary against a real server on ephemeral ports, output and exit codes
//! checked.

#[path = "../common/mod.rs"]
mod common;

const BACKEND: common::Backend = common::Backend::Embedded;

mod commands;
mod walkthrough;
