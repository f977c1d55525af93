//! Whether to retry (classification) and when (backoff), kept apart.
//!
//! Backoff after the n-th failed attempt (n = 1, 2, …): linear waits
//! `backoffDelay` every time, exponential waits `backoffDelay × 2^(n−1)`, as
//! Knative's control-plane specification defines them ("Linear policy uses the
//! same `backoffDelay` for each attempt; Exponential policy uses 2^N multiples");
//! a `Retry-After` on 429 or 503 lengthens the wait up to `retryAfterMax` when
//! that is set.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;

use crate::resources::BackoffPolicy;

use super::policy::DeliveryPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry,
    GiveUp,
}

/// `None` is a connection failure or timeout.
pub fn classify(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        // Not there (yet): the subscriber may be starting.
        Some(404) => Verdict::Retry,
        // Timed out on the subscriber's side.
        Some(408) => Verdict::Retry,
        // A conflicting concurrent change; another try may not conflict.
        Some(409) => Verdict::Retry,
        // Back-pressure: asked to slow down.
        Some(429) => Verdict::Retry,
        // The subscriber failed or is overloaded.
        Some(500..=599) => Verdict::Retry,
        // Malformed, unauthorised, forbidden and other client errors repeat on
        // retry; 1xx and 3xx are errors too, not worth repeating.
        Some(100..=499) => Verdict::GiveUp,
        // Outside the specification's table, which says such a code "SHOULD be
        // treated as a retriable error".
        Some(_) => Verdict::Retry,
        // Unreachable or too slow: may work next time.
        None => Verdict::Retry,
    }
}

pub fn backoff(policy: &DeliveryPolicy, failed_attempts: u32) -> Duration {
    let n = failed_attempts.max(1);
    match policy.backoff_policy {
        BackoffPolicy::Linear => policy.backoff_delay,
        BackoffPolicy::Exponential => policy
            .backoff_delay
            .saturating_mul(2u32.saturating_pow((n - 1).min(31))),
    }
}

/// The wait before the next attempt, honouring `Retry-After` where allowed.
pub fn next_delay(
    policy: &DeliveryPolicy,
    failed_attempts: u32,
    status: Option<u16>,
    headers: Option<&HeaderMap>,
) -> Duration {
    let base = backoff(policy, failed_attempts);
    let asked = match (policy.retry_after_max, status) {
        (Some(max), Some(429 | 503)) => headers.and_then(retry_after).map(|d| d.min(max)),
        _ => None,
    };
    asked.map_or(base, |asked| asked.max(base))
}

/// A delivery that failed `failed` times and whose next attempt is due at
/// `due_ms` (milliseconds since the Unix epoch): what a durable consumer keeps
/// so that a restart resumes the schedule instead of starting it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryDue {
    pub failed: u32,
    pub due_ms: i64,
}

impl RetryDue {
    pub fn after(failed: u32, delay: Duration) -> Self {
        // A long backoffDelay doubled often enough passes what a SystemTime
        // holds: due then means never, not a panic.
        let due_ms = SystemTime::now()
            .checked_add(delay)
            .map_or(i64::MAX, |due| {
                due.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            });
        Self { failed, due_ms }
    }

    /// How long until the attempt is due.
    pub fn left(&self) -> Duration {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Duration::from_millis(self.due_ms.saturating_sub(now_ms).max(0) as u64)
    }

    /// How long until the attempt is due; never longer than the policy could
    /// have asked for (a clock set back must not stall the delivery).
    pub fn wait(&self, policy: &DeliveryPolicy) -> Duration {
        let left = self.left();
        let longest = backoff(policy, self.failed).max(policy.retry_after_max.unwrap_or_default());
        left.min(longest)
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = when.duration_since(jiff::Timestamp::now());
    Duration::try_from(wait).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backoff_beyond_the_clock_is_due_never_not_a_panic() {
        let policy = DeliveryPolicy {
            backoff_policy: BackoffPolicy::Exponential,
            backoff_delay: Duration::from_secs(10_000 * 365 * 86_400),
            ..DeliveryPolicy::default()
        };
        let delay = next_delay(&policy, 60, Some(500), None);
        let due = RetryDue::after(60, delay);
        assert_eq!(due.due_ms, i64::MAX);
        assert!(due.left() > Duration::from_secs(1_000_000_000));
        assert_eq!(due.wait(&policy), due.left().min(delay));
    }

    #[test]
    fn statuses_are_classified_as_knative_does() {
        for status in [200, 201, 202, 204] {
            assert_eq!(classify(Some(status)), Verdict::Delivered, "{status}");
        }
        for status in [404, 408, 409, 429, 500, 502, 503, 504, 599, 600, 999] {
            assert_eq!(classify(Some(status)), Verdict::Retry, "{status}");
        }
        for status in [101, 301, 304, 400, 401, 403, 405, 410, 413, 422, 499] {
            assert_eq!(classify(Some(status)), Verdict::GiveUp, "{status}");
        }
        assert_eq!(classify(None), Verdict::Retry);
    }

    #[test]
    fn linear_backoff_keeps_its_delay_and_exponential_doubles_it() {
        let mut policy = DeliveryPolicy {
            backoff_delay: Duration::from_millis(100),
            ..Default::default()
        };
        policy.backoff_policy = BackoffPolicy::Linear;
        assert_eq!(backoff(&policy, 1), Duration::from_millis(100));
        assert_eq!(backoff(&policy, 3), Duration::from_millis(100));
        policy.backoff_policy = BackoffPolicy::Exponential;
        assert_eq!(backoff(&policy, 1), Duration::from_millis(100));
        assert_eq!(backoff(&policy, 4), Duration::from_millis(800));
    }

    #[test]
    fn retry_after_is_honoured_only_up_to_its_maximum() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "5".parse().expect("value"));
        let mut policy = DeliveryPolicy {
            backoff_delay: Duration::from_millis(100),
            ..Default::default()
        };
        assert_eq!(
            next_delay(&policy, 1, Some(429), Some(&headers)),
            Duration::from_millis(100),
            "off by default"
        );
        policy.retry_after_max = Some(Duration::from_secs(2));
        assert_eq!(
            next_delay(&policy, 1, Some(429), Some(&headers)),
            Duration::from_secs(2)
        );
        assert_eq!(
            next_delay(&policy, 1, Some(500), Some(&headers)),
            Duration::from_millis(100),
            "only 429 and 503"
        );
    }
}
