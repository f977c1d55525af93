//! Logs (tracing, human or JSON) and Prometheus metrics: HTTP requests by listener,
//! route and status, and OSB operations by kind and state.

mod logging;
mod metrics;
mod throttle;

pub use logging::init_logging;
pub use metrics::{Metrics, track_requests};
pub use throttle::Throttle;
