//! meshbroker: an Open Service Broker that provisions Event ServiceClasses into
//! namespaces and wires them into an embedded CloudEvents mesh.
//!
//! The modules form a stack whose imports only run downwards (tests/layers.rs
//! keeps it so): telemetry, shutdown, ids, locks, bodies, files → resources → config, store → auth →
//! mesh (the dataplane), provisioner → controllers (the control plane) → state →
//! osb, resource_api, ingress (the routers) → server (wiring only).

pub mod auth;
pub mod bodies;
pub mod cli;
pub mod config;
pub mod connector;
pub mod console;
pub mod controllers;
pub mod files;
pub mod ids;
pub mod ingress;
pub mod leader;
pub mod locks;
pub mod mesh;
pub mod osb;
pub mod pki;
pub mod provisioner;
pub mod resource_api;
pub mod resources;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
