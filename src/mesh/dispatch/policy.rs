//! Delivery options in compiled form: a Trigger's `delivery` replaces its Broker's
//! entirely; what neither sets takes meshbroker's defaults.

use std::time::Duration;

use crate::resources::{
    BackoffPolicy, DEFAULT_BACKOFF_DELAY, DEFAULT_RETRY, DEFAULT_TIMEOUT, DeliverySpec,
    parse_iso8601_duration,
};

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    pub retry: u32,
    pub backoff_policy: BackoffPolicy,
    pub backoff_delay: Duration,
    pub timeout: Duration,
    /// When set, a `Retry-After` on 429/503 is honoured up to this long.
    pub retry_after_max: Option<Duration>,
    /// The resolved dead-letter sink.
    pub dead_letter_sink: Option<String>,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            retry: DEFAULT_RETRY,
            backoff_policy: BackoffPolicy::Exponential,
            backoff_delay: DEFAULT_BACKOFF_DELAY,
            timeout: DEFAULT_TIMEOUT,
            retry_after_max: None,
            dead_letter_sink: None,
        }
    }
}

impl DeliveryPolicy {
    /// From the effective `delivery` (already validated on write, so a bad
    /// duration cannot occur; the default stands in if it somehow does).
    pub fn from_spec(spec: Option<&DeliverySpec>, dead_letter_sink: Option<String>) -> Self {
        let defaults = Self::default();
        let Some(spec) = spec else {
            return Self {
                dead_letter_sink,
                ..defaults
            };
        };
        let duration =
            |text: &Option<String>| text.as_deref().and_then(|t| parse_iso8601_duration(t).ok());
        Self {
            retry: spec
                .retry
                .map_or(defaults.retry, |r| u32::try_from(r).unwrap_or(0)),
            backoff_policy: spec.backoff_policy.unwrap_or(defaults.backoff_policy),
            backoff_delay: duration(&spec.backoff_delay).unwrap_or(defaults.backoff_delay),
            timeout: duration(&spec.timeout).unwrap_or(defaults.timeout),
            retry_after_max: duration(&spec.retry_after_max),
            dead_letter_sink,
        }
    }
}
