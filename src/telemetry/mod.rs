//! Logs (tracing, human or JSON) and Prometheus metrics: HTTP requests by listener,
//! route and status, OSB operations by kind and state, dataplane events and
//! delivery durations by outcome.

mod logging;
mod metrics;
mod throttle;

pub use logging::{LogFormat, init_logging};
pub use metrics::{DeliveryOutcome, Metrics, track_requests};
pub use throttle::Throttle;
