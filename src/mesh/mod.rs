//! The dataplane: events as they arrive, the filters Triggers apply, the routing
//! table built from resources, and dispatch to subscribers with retries and
//! dead-letter sinks. The CloudEvents SQL filter language is the workspace crate
//! `cesql`; the HTTP ingress that feeds the dataplane is `crate::ingress`.

pub mod consume;
pub mod dataplane;
pub mod dispatch;
pub mod event;
pub mod filter;
pub mod forward;
pub mod jetstream;
pub mod log;
pub mod routing;
pub mod tap;
