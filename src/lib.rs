//! meshbroker: an Open Service Broker that provisions Event ServiceClasses into
//! namespaces and wires them into an embedded CloudEvents mesh.

pub mod auth;
pub mod mesh;
pub mod osb;
pub mod provisioner;
pub mod resource_api;
pub mod resources;
pub mod server;
pub mod store;
pub mod telemetry;
