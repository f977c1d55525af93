//! Logs (tracing, human or JSON) and Prometheus metrics: HTTP requests by listener,
//! route and status, OSB operations by kind and state, dataplane events and
//! delivery durations by outcome, and the durable event log's fsyncs, lag and
//! bytes (`log_report`, computed at each scrape).

mod log_report;
mod logging;
mod metrics;
mod shortened;
mod throttle;

pub use log_report::{ConsumerLag, LogReport};
pub use logging::{LogFormat, init_logging};
pub use metrics::{DeliveryOutcome, Metrics, count_request};
pub use shortened::{cut, shortened};
pub use throttle::Throttle;
