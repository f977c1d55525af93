//! What the durable event log reports at each scrape: how far each consumer
//! lags (events not yet settled, and the age of the oldest), and the bytes
//! each namespace's Broker logs and each Channel's log hold. Computed when
//! `/metrics` is read, not kept in gauges: a stuck consumer's oldest event
//! ages without anything happening that could update a gauge.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// A consumer of the event log and how far behind it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerLag {
    /// `trigger` or `subscription`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// Events in its log that it has not settled.
    pub events: u64,
    /// How long ago the oldest of them was appended (0 when none).
    pub oldest_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogReport {
    pub consumers: Vec<ConsumerLag>,
    /// Bytes the Broker logs of each namespace hold on disk.
    pub namespace_bytes: Vec<(String, u64)>,
    /// Bytes each Channel's log holds on disk: (namespace, Channel, bytes).
    pub channel_bytes: Vec<(String, String, u64)>,
}

pub type Reporter = Box<dyn Fn() -> LogReport + Send + Sync>;

/// Registered once; told whom to ask when the event log opens.
#[derive(Clone, Default)]
pub struct LogReportCollector {
    reporter: Arc<Mutex<Option<Reporter>>>,
}

impl std::fmt::Debug for LogReportCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogReportCollector")
    }
}

impl LogReportCollector {
    fn reporter(&self) -> std::sync::MutexGuard<'_, Option<Reporter>> {
        // A reporter that panicked left nothing half-written here.
        self.reporter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn report_with(&self, reporter: Reporter) {
        *self.reporter() = Some(reporter);
    }
}

impl Collector for LogReportCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let report = match self.reporter().as_ref() {
            Some(reporter) => reporter(),
            None => return Ok(()),
        };
        let lag = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "consumer_lag_events",
            "Events in a Trigger's or Subscription's log that it has not settled yet (durable delivery)",
            None,
            lag.metric_type(),
        )?;
        for consumer in &report.consumers {
            let labels = consumer.labels();
            let events = i64::try_from(consumer.events).unwrap_or(i64::MAX);
            ConstGauge::new(events).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "consumer_lag_oldest",
            "How long ago the oldest event a Trigger or Subscription has not settled was appended (durable delivery)",
            Some(&Unit::Seconds),
            ConstGauge::new(0f64).metric_type(),
        )?;
        for consumer in &report.consumers {
            let labels = consumer.labels();
            ConstGauge::new(consumer.oldest_seconds).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "event_log_namespace",
            "Bytes the Broker logs of a namespace hold on disk, counted against its disk budget",
            Some(&Unit::Bytes),
            lag.metric_type(),
        )?;
        for (namespace, bytes) in &report.namespace_bytes {
            let labels = [("namespace", namespace.as_str())];
            let bytes = i64::try_from(*bytes).unwrap_or(i64::MAX);
            ConstGauge::new(bytes).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "event_log_channel",
            "Bytes a Channel's log holds on disk, counted against the Channel's own disk budget",
            Some(&Unit::Bytes),
            lag.metric_type(),
        )?;
        for (namespace, channel, bytes) in &report.channel_bytes {
            let labels = [
                ("namespace", namespace.as_str()),
                ("name", channel.as_str()),
            ];
            let bytes = i64::try_from(*bytes).unwrap_or(i64::MAX);
            ConstGauge::new(bytes).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl ConsumerLag {
    fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("kind", self.kind),
            ("namespace", &self.namespace),
            ("name", &self.name),
        ]
    }
}
