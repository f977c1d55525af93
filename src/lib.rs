//! meshbroker: an Open Service Broker that provisions Event ServiceClasses into
//! namespaces and wires them into an embedded CloudEvents mesh.

pub mod resources;
pub mod store;
