//! The control plane and the embedded dataplane on a real Kubernetes API server
//! (`--store kube`): the OSB contract suite (but its header checks, which are
//! the HTTP layer's alone and the same on either store), the provisioning
//! tests and the dataplane routing walk-through run again unchanged, each test on its own
//! kube-apiserver where meshbroker has only the deploy/ ClusterRole; then what
//! only a cluster has — RBAC, stale resourceVersions, API server restarts,
//! several replicas with an elected leader.

#[path = "../common/mod.rs"]
mod common;

const BACKEND: common::Backend = common::Backend::Kube;

mod addressables;
mod cluster;
#[path = "../dataplane/connector.rs"]
mod connector;
mod knative;
#[path = "../contract/osb_catalog.rs"]
mod osb_catalog;
#[path = "../contract/osb_instances.rs"]
mod osb_instances;
#[path = "../contract/osb_provision.rs"]
mod osb_provision;
#[path = "../contract/provisioning.rs"]
mod provisioning;
mod replicas;
#[path = "../dataplane/routing.rs"]
mod routing;
