//! `eventing.knative.dev/v1`: Broker and Trigger, their delivery options and the
//! Trigger filter dialects (`filter.attributes` and the `filters` of the
//! Subscriptions API), with the checks that refuse a bad Trigger at write time.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::duration::parse_iso8601_duration;
use super::names::is_attribute_name;
use super::{AddressableStatus, Condition, Conditions, Destination, Invalid, KReference, labels};

/// How a delivery is retried and where it goes when retries run out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink: Option<Destination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_policy: Option<BackoffPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_max: Option<String>,
    /// How events are sent: `binary` (the default) or `json` (structured mode), as
    /// Knative's `delivery.format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DeliveryFormat>,
}

/// Retries when nothing says otherwise: 3, exponential from 200 ms.
pub const DEFAULT_RETRY: u32 = 3;
pub const DEFAULT_BACKOFF_DELAY: Duration = Duration::from_millis(200);
/// Per attempt, when `delivery.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryFormat {
    Binary,
    Json,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackoffPolicy {
    Linear,
    Exponential,
}

impl DeliverySpec {
    /// The one check of a `delivery`, wherever it is written: a Trigger, Broker,
    /// Channel or Subscription, or the OSB parameters that become a Subscription's.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(sink) = &self.dead_letter_sink {
            sink.validate().map_err(|e| e.within("deadLetterSink"))?;
        }
        if let Some(retry) = self.retry
            && !(0..=100).contains(&retry)
        {
            return Err(Invalid::new("retry", "must be between 0 and 100"));
        }
        // Negative durations do not parse. Zero is refused only for the timeout: every
        // attempt would time out before it is sent (Knative: "must be greater than
        // 0"). A zero backoffDelay retries at once, at most `retry` times, and a zero
        // retryAfterMax opts out of honouring Retry-After; Knative allows both.
        if let Some(timeout) = duration("timeout", &self.timeout)?
            && timeout.is_zero()
        {
            return Err(Invalid::new("timeout", "must be greater than zero"));
        }
        duration("backoffDelay", &self.backoff_delay)?;
        duration("retryAfterMax", &self.retry_after_max)?;
        Ok(())
    }
}

fn duration(field: &str, text: &Option<String>) -> Result<Option<Duration>, Invalid> {
    text.as_deref()
        .map(parse_iso8601_duration)
        .transpose()
        .map_err(|message| Invalid::new(field, message))
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "eventing.knative.dev",
    version = "v1",
    kind = "Broker",
    namespaced,
    status = "BrokerStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct BrokerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<KReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// Knative's Broker status: `address`, `conditions`, `deadLetterSinkUri`.
pub type BrokerStatus = AddressableStatus;

impl Broker {
    /// The Broker a namespace labelled for injection gets (Knative's name too).
    pub const DEFAULT_NAME: &str = "default";

    /// Whether the embedded dataplane serves it: its class is meshbroker's, or
    /// it has none (written straight to an API server without a defaulting
    /// webhook). A Broker of another class is left to that implementation —
    /// no route, no status written — as Knative's own controllers leave
    /// classes not theirs, so meshbroker and, say, Knative's channel-based
    /// Broker can share a cluster without fighting over a Broker's status.
    pub fn is_embedded_class(&self) -> bool {
        self.annotations()
            .get(labels::BROKER_CLASS)
            .is_none_or(|class| class.is_empty() || class == labels::BROKER_CLASS_VALUE)
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(delivery) = &self.spec.delivery {
            delivery.validate().map_err(|e| e.within("spec.delivery"))?;
        }
        Ok(())
    }

    /// The class and `spec.config` choose the Broker's implementation; Knative holds
    /// both immutable, since moving a Broker between implementations loses events.
    /// A Broker stored without a class (made before classes were defaulted) may get
    /// one: it had none to keep.
    pub fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        let old_class = old.annotations().get(labels::BROKER_CLASS);
        if old_class.is_some() && old_class != self.annotations().get(labels::BROKER_CLASS) {
            return Err(Invalid::immutable(format!(
                "metadata.annotations[{}]",
                labels::BROKER_CLASS
            )));
        }
        if self.spec.config != old.spec.config {
            return Err(Invalid::immutable("spec.config"));
        }
        Ok(())
    }

    /// A Broker written without a class (absent or empty) gets `class`, as Knative
    /// RECOMMENDS on creation. Works on the JSON as written; a non-object
    /// `annotations` is left for validation to refuse.
    pub fn default_class(object: &mut Value, class: &str) {
        let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if annotations.is_null() {
            *annotations = Value::Object(Default::default());
        }
        let Some(annotations) = annotations.as_object_mut() else {
            return;
        };
        let unset = annotations
            .get(labels::BROKER_CLASS)
            .is_none_or(|c| c.as_str() == Some(""));
        if unset {
            annotations.insert(labels::BROKER_CLASS.into(), Value::String(class.into()));
        }
    }
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "eventing.knative.dev",
    version = "v1",
    kind = "Trigger",
    namespaced,
    status = "TriggerStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSpec {
    pub broker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<TriggerFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_array")]
    pub filters: Option<Vec<SubscriptionsApiFilter>>,
    pub subscriber: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// `filter.attributes`: exact matches, where "" means "present with any value".
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct TriggerFilter {
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// One filter of the Subscriptions API dialects; exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsApiFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<SubscriptionsApiFilter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<SubscriptionsApiFilter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<SubscriptionsApiFilter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cesql: Option<String>,
}

/// The filters are recursive; a CRD schema cannot express that, so the CRD keeps
/// them as free-form objects and meshbroker validates them on write.
fn free_form_array(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// A Subscriptions API filter once checked, its CESQL parsed: what the dataplane
/// compiles, so a filter is walked once whether it is being written or routed.
#[derive(Debug)]
pub enum Dialect {
    Exact { name: String, value: String },
    Prefix { name: String, value: String },
    Suffix { name: String, value: String },
    All(Vec<Dialect>),
    Any(Vec<Dialect>),
    Not(Box<Dialect>),
    Cesql(cesql::Expression),
}

/// What all of a Trigger's filters may hold together: each event is matched
/// against every one of them, and each CESQL expression's own bounds (8 KiB,
/// 1,024 nodes) said nothing of how many a Trigger lists (an outside probe:
/// 495 of them, 11 ms of CPU an event and 50 MB a Trigger).
const MOST_FILTER_TESTS: usize = 128;
const MOST_CESQL_BYTES: usize = 8 * 1024;

impl Dialect {
    /// The attribute tests and combinators in this filter, and the bytes of
    /// its CESQL.
    fn weight(&self) -> (usize, usize) {
        match self {
            Dialect::Exact { .. } | Dialect::Prefix { .. } | Dialect::Suffix { .. } => (1, 0),
            Dialect::All(list) | Dialect::Any(list) => list
                .iter()
                .map(Dialect::weight)
                .fold((1, 0), |(tests, bytes), (t, b)| (tests + t, bytes + b)),
            Dialect::Not(inner) => {
                let (tests, bytes) = inner.weight();
                (tests + 1, bytes)
            }
            Dialect::Cesql(expression) => (1, expression.source().len()),
        }
    }
}

impl SubscriptionsApiFilter {
    pub fn validate(&self) -> Result<(), Invalid> {
        self.checked().map(drop)
    }

    /// The filter checked (exactly one dialect, attribute names, non-empty
    /// values, CESQL that parses within its limits) into its parts.
    pub fn checked(&self) -> Result<Dialect, Invalid> {
        let dialects = [
            self.exact.is_some(),
            self.prefix.is_some(),
            self.suffix.is_some(),
            self.all.is_some(),
            self.any.is_some(),
            self.not.is_some(),
            self.cesql.is_some(),
        ];
        if dialects.iter().filter(|set| **set).count() > 1 {
            return Err(Invalid::new("", "sets more than one dialect; use all"));
        }
        let compared = |dialect: &str, map, test| {
            attribute_tests(map, test).map_err(|e: Invalid| e.within(dialect))
        };
        let nested = |dialect: &str, list: &[SubscriptionsApiFilter]| {
            if list.is_empty() {
                return Err(Invalid::new(dialect, "must list at least one filter"));
            }
            list.iter()
                .enumerate()
                .map(|(i, filter)| {
                    filter
                        .checked()
                        .map_err(|e| e.within(&format!("{dialect}[{i}]")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(if let Some(map) = &self.exact {
            compared("exact", map, |name, value| Dialect::Exact { name, value })?
        } else if let Some(map) = &self.prefix {
            compared("prefix", map, |name, value| Dialect::Prefix { name, value })?
        } else if let Some(map) = &self.suffix {
            compared("suffix", map, |name, value| Dialect::Suffix { name, value })?
        } else if let Some(list) = &self.all {
            Dialect::All(nested("all", list)?)
        } else if let Some(list) = &self.any {
            Dialect::Any(nested("any", list)?)
        } else if let Some(inner) = &self.not {
            Dialect::Not(Box::new(inner.checked().map_err(|e| e.within("not"))?))
        } else if let Some(expression) = &self.cesql {
            if expression.trim().is_empty() {
                return Err(Invalid::new("cesql", "must not be empty"));
            }
            let parsed = cesql::Expression::parse(expression)
                .map_err(|e| Invalid::new("cesql", e.to_string()))?;
            // It compiles (the spec makes it an evaluation error), but the
            // filter could never pass as written: a misspelt name says so now.
            if let Some((name, arity)) = parsed.missing_function() {
                return Err(Invalid::new("cesql", missing_function(name, arity)));
            }
            Dialect::Cesql(parsed)
        } else {
            return Err(Invalid::new(
                "",
                "needs one dialect: exact, prefix, suffix, all, any, not or cesql",
            ));
        })
    }
}

/// Why a CESQL filter calling `name` with `arity` arguments is refused.
pub fn missing_function(name: &str, arity: usize) -> String {
    format!(
        "no CESQL function {name} takes {arity} argument(s): every evaluation would fail (MissingFunctionError)"
    )
}

/// `exact`, `prefix` and `suffix`: one test per attribute named, all of which
/// must hold (Subscriptions API §3.2.4.1.1, whose example names `type` and
/// `subject` at once; Knative accepts only one). Neither a name nor a value may
/// be empty ("MUST NOT be empty strings", for all three); "present with any
/// value" is what `filter.attributes` with "" says.
fn attribute_tests(
    map: &BTreeMap<String, String>,
    test: fn(String, String) -> Dialect,
) -> Result<Dialect, Invalid> {
    let mut tests = map
        .iter()
        .map(|(attribute, value)| {
            check_attribute_name(attribute)?;
            if value.is_empty() {
                return Err(Invalid::new(attribute.as_str(), "must not be empty"));
            }
            Ok(test(attribute.clone(), value.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match tests.pop() {
        None => Err(Invalid::new("", "must name at least one attribute")),
        Some(only) if tests.is_empty() => Ok(only),
        Some(last) => {
            tests.push(last);
            Ok(Dialect::All(tests))
        }
    }
}

/// A name a filter may match on: a CloudEvents attribute name (v1.0.2, "Naming
/// Conventions": lower-case ASCII letters and digits) that starts with a letter,
/// as Knative's Trigger validation requires (`^[a-z][a-z0-9]*$`): a Trigger that
/// Knative would refuse is refused here too, so the two stay interchangeable. The
/// 20-character limit is a SHOULD for whoever defines an attribute, not a rule
/// events follow, so longer names are matched too.
fn check_attribute_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(Invalid::new("", "an attribute name must not be empty"));
    }
    if !is_attribute_name(name) || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Invalid::new(
            name,
            "is not a CloudEvents attribute name (lower-case a-z and 0-9, starting with a letter)",
        ));
    }
    Ok(())
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Conditions for TriggerStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl Trigger {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.spec.broker.is_empty() {
            return Err(Invalid::new("spec.broker", "must name a Broker"));
        }
        self.spec
            .subscriber
            .validate()
            .map_err(|e| e.within("spec.subscriber"))?;
        let mut tests = 0;
        if let Some(filter) = &self.spec.filter {
            for attribute in filter.attributes.keys() {
                check_attribute_name(attribute).map_err(|e| e.within("spec.filter.attributes"))?;
            }
            tests += filter.attributes.len();
        }
        let mut cesql_bytes = 0;
        for (i, filter) in self.spec.filters.iter().flatten().enumerate() {
            let (t, b) = filter
                .checked()
                .map_err(|e| e.within(&format!("spec.filters[{i}]")))?
                .weight();
            tests += t;
            cesql_bytes += b;
        }
        if tests > MOST_FILTER_TESTS || cesql_bytes > MOST_CESQL_BYTES {
            return Err(Invalid::new(
                "spec.filters",
                format!(
                    "holds {tests} tests and {cesql_bytes} bytes of CESQL; a Trigger's filters may hold at most {MOST_FILTER_TESTS} tests and {MOST_CESQL_BYTES} bytes of CESQL together (every event is matched against all of them)"
                ),
            ));
        }
        if let Some(delivery) = &self.spec.delivery {
            delivery.validate().map_err(|e| e.within("spec.delivery"))?;
        }
        if let Some(text) = self.annotations().get(labels::REPLAY_FROM) {
            replay_from(text).map_err(|message| {
                Invalid::new(
                    format!("metadata.annotations[{}]", labels::REPLAY_FROM),
                    message,
                )
            })?;
        }
        Ok(())
    }

    /// Where a new Trigger's consumer starts: the time its
    /// `meshbroker.io/replay-from` annotation names, in milliseconds since the
    /// Unix epoch; None to start with the next event.
    pub fn replay_from_ms(&self) -> Option<i64> {
        let text = self.annotations().get(labels::REPLAY_FROM)?;
        replay_from(text).ok().map(|at| at.as_millisecond())
    }

    /// Moving a Trigger to another Broker is not atomic (it may span two storage
    /// systems), so Knative holds `spec.broker` immutable: delete and re-create.
    pub fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        if self.spec.broker != old.spec.broker {
            return Err(Invalid::immutable("spec.broker"));
        }
        Ok(())
    }
}

fn replay_from(text: &str) -> Result<jiff::Timestamp, String> {
    text.parse::<jiff::Timestamp>()
        .map_err(|e| format!("{text:?} is not an RFC 3339 time like 2026-12-01T10:00:00Z: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_from_must_be_an_rfc_3339_time() {
        let mut trigger = Trigger::new(
            "t",
            serde_json::from_value(serde_json::json!({
                "broker": "default",
                "subscriber": {"uri": "http://sink.example/"}
            }))
            .expect("spec"),
        );
        trigger
            .annotations_mut()
            .insert(labels::REPLAY_FROM.into(), "yesterday".into());
        let refused = trigger.validate().expect_err("not a time");
        assert!(
            refused.to_string().contains("meshbroker.io/replay-from"),
            "{refused}"
        );
        trigger
            .annotations_mut()
            .insert(labels::REPLAY_FROM.into(), "2026-12-01T10:00:00Z".into());
        assert!(trigger.validate().is_ok());
        assert_eq!(trigger.replay_from_ms(), Some(1_796_119_200_000));
    }

    fn filter(json: serde_json::Value) -> SubscriptionsApiFilter {
        serde_json::from_value(json).expect("test filter parses")
    }

    #[test]
    fn a_filter_needs_exactly_one_dialect() {
        assert!(filter(serde_json::json!({})).validate().is_err());
        assert!(
            filter(serde_json::json!({"exact": {"type": "a"}, "prefix": {"type": "b"}}))
                .validate()
                .is_err()
        );
        assert!(
            filter(serde_json::json!({"exact": {"type": "a"}}))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn nested_errors_name_their_path() {
        let bad = filter(
            serde_json::json!({"all": [{"exact": {"type": "a"}}, {"prefix": {"Type": "x"}}]}),
        );
        let error = bad.validate().expect_err("upper-case attribute is refused");
        assert_eq!(error.field, "all[1].prefix.Type");
    }

    #[test]
    fn exact_prefix_and_suffix_need_a_name_and_a_value() {
        // (filter, the refused field or None when accepted)
        let cases = [
            (serde_json::json!({"exact": {"type": "a"}}), None),
            (
                serde_json::json!({"exact": {"type": "a", "subject": "b"}}),
                None,
            ),
            (serde_json::json!({"suffix": {}}), Some("suffix")),
            (
                serde_json::json!({"prefix": {"type": "a", "subject": ""}}),
                Some("prefix.subject"),
            ),
            (
                serde_json::json!({"exact": {"type": ""}}),
                Some("exact.type"),
            ),
            (
                serde_json::json!({"prefix": {"type": ""}}),
                Some("prefix.type"),
            ),
            (
                serde_json::json!({"suffix": {"type": ""}}),
                Some("suffix.type"),
            ),
            (serde_json::json!({"exact": {"": "a"}}), Some("exact")),
            (serde_json::json!({"prefix": {"": "a"}}), Some("prefix")),
            (serde_json::json!({"suffix": {"": "a"}}), Some("suffix")),
            (
                serde_json::json!({"not": {"exact": {"": ""}}}),
                Some("not.exact"),
            ),
        ];
        for (json, refused) in cases {
            let result = filter(json.clone()).validate();
            assert_eq!(
                result.map_err(|e| e.field).err().as_deref(),
                refused,
                "{json}"
            );
        }
    }

    #[test]
    fn filter_attribute_names_follow_the_cloudevents_naming_rules() {
        // (name, accepted): lower-case ASCII letters and digits, starting with a
        // letter (Knative's rule); more than 20 characters are allowed.
        let cases = [
            ("type", true),
            ("eventtypeversion", true),
            ("region2", true),
            ("2fa", false),
            ("averyveryverylongextensionname", true),
            ("", false),
            ("Type", false),
            ("event-type", false),
            ("event_type", false),
            ("typé", false),
        ];
        for (name, accepted) in cases {
            let dialect = filter(serde_json::json!({"suffix": {name: "x"}})).validate();
            assert_eq!(dialect.is_ok(), accepted, "filters: {name:?}");
            let trigger = Trigger::new(
                "t",
                serde_json::from_value(serde_json::json!({
                    "broker": "default",
                    "subscriber": {"uri": "http://x"},
                    "filter": {"attributes": {name: ""}},
                }))
                .expect("spec"),
            );
            let attributes = trigger.validate();
            assert_eq!(attributes.is_ok(), accepted, "filter.attributes: {name:?}");
            if let Err(error) = attributes {
                let field = if name.is_empty() {
                    "spec.filter.attributes".to_string()
                } else {
                    format!("spec.filter.attributes.{name}")
                };
                assert_eq!(error.field, field);
            }
        }
    }

    #[test]
    fn a_cesql_filter_must_parse() {
        let bad = filter(serde_json::json!({"cesql": "type = 'a' AND"}));
        assert_eq!(bad.validate().expect_err("incomplete").field, "cesql");
        assert!(
            filter(serde_json::json!({"cesql": "type = 'a'"}))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn delivery_durations_are_checked() {
        let delivery = DeliverySpec {
            backoff_delay: Some("2 seconds".into()),
            ..Default::default()
        };
        assert_eq!(delivery.validate().expect_err("bad").field, "backoffDelay");
    }

    #[test]
    fn a_delivery_timeout_must_be_greater_than_zero() {
        // (timeout, backoffDelay, retryAfterMax, the refused field or None)
        let cases = [
            ("PT0S", None, None, Some("timeout")),
            ("P0D", None, None, Some("timeout")),
            ("PT0.000S", None, None, Some("timeout")),
            ("-PT1S", None, None, Some("timeout")),
            ("PT-1S", None, None, Some("timeout")),
            ("PT0.001S", None, None, None),
            ("PT30S", Some("PT0S"), Some("PT0S"), None),
            ("PT30S", Some("-PT1S"), None, Some("backoffDelay")),
            ("PT30S", None, Some("-PT1S"), Some("retryAfterMax")),
        ];
        for (timeout, backoff_delay, retry_after_max, refused) in cases {
            let delivery = DeliverySpec {
                timeout: Some(timeout.into()),
                backoff_delay: backoff_delay.map(Into::into),
                retry_after_max: retry_after_max.map(Into::into),
                ..Default::default()
            };
            let result = delivery.validate().map_err(|e| e.field);
            assert_eq!(result.err().as_deref(), refused, "{delivery:?}");
        }
    }

    fn trigger(broker: &str) -> Trigger {
        Trigger::new(
            "t",
            TriggerSpec {
                broker: broker.into(),
                subscriber: Destination {
                    uri: Some("http://x".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
    }

    #[test]
    fn a_triggers_filters_are_bounded_together() {
        let with = |filters: Vec<SubscriptionsApiFilter>| {
            let mut t = trigger("default");
            t.spec.filters = Some(filters);
            t.validate().err().map(|e| e.field)
        };
        let cesql = |bytes: usize| SubscriptionsApiFilter {
            cesql: Some(format!("id = '{}'", "x".repeat(bytes - 7))),
            ..Default::default()
        };
        let exact = |i: usize| SubscriptionsApiFilter {
            exact: Some(BTreeMap::from([("type".to_string(), format!("t{i}"))])),
            ..Default::default()
        };
        assert_eq!(with((0..MOST_FILTER_TESTS).map(exact).collect()), None);
        assert_eq!(
            with((0..=MOST_FILTER_TESTS).map(exact).collect()).as_deref(),
            Some("spec.filters")
        );
        // Each within its own bound, too many together.
        assert_eq!(with(vec![cesql(4096), cesql(4096)]), None);
        assert_eq!(
            with(vec![cesql(4096), cesql(4097)]).as_deref(),
            Some("spec.filters")
        );
        let nested = SubscriptionsApiFilter {
            all: Some(vec![cesql(5000)]),
            ..Default::default()
        };
        assert_eq!(
            with(vec![nested, cesql(4000)]).as_deref(),
            Some("spec.filters"),
            "nested CESQL counts"
        );
    }

    #[test]
    fn a_trigger_keeps_its_broker() {
        let old = trigger("default");
        let mut moved_subscriber = old.clone();
        moved_subscriber.spec.subscriber.uri = Some("http://y".into());
        assert_eq!(moved_subscriber.check_update(&old), Ok(()));
        let error = trigger("other").check_update(&old).expect_err("moved");
        assert_eq!(error.to_string(), "spec.broker: field is immutable");
    }

    fn broker(class: Option<&str>, config: Option<&str>) -> Broker {
        let mut broker = Broker::new(
            "default",
            BrokerSpec {
                config: config.map(|name| KReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: name.into(),
                    namespace: None,
                }),
                delivery: None,
            },
        );
        broker.metadata.annotations = class
            .map(|class| BTreeMap::from([(labels::BROKER_CLASS.to_string(), class.to_string())]));
        broker
    }

    #[test]
    fn the_embedded_dataplane_serves_its_own_class_and_brokers_without_one() {
        assert!(broker(Some("MeshBroker"), None).is_embedded_class());
        assert!(broker(None, None).is_embedded_class());
        assert!(broker(Some(""), None).is_embedded_class());
        assert!(!broker(Some("MTChannelBasedBroker"), None).is_embedded_class());
        assert!(!broker(Some("Kafka"), None).is_embedded_class());
    }

    #[test]
    fn a_broker_keeps_its_class_and_config() {
        let old = broker(Some("MeshBroker"), Some("a"));
        // (new, the refused field or None)
        let cases = [
            (broker(Some("MeshBroker"), Some("a")), None),
            (
                broker(Some("Other"), Some("a")),
                Some("metadata.annotations[eventing.knative.dev/broker.class]"),
            ),
            (
                broker(None, Some("a")),
                Some("metadata.annotations[eventing.knative.dev/broker.class]"),
            ),
            (broker(Some("MeshBroker"), Some("b")), Some("spec.config")),
            (broker(Some("MeshBroker"), None), Some("spec.config")),
        ];
        for (new, refused) in cases {
            let result = new.check_update(&old).map_err(|e| e.field);
            assert_eq!(result.err().as_deref(), refused, "{:?}", new.metadata);
        }
        let classless = broker(None, None);
        assert_eq!(
            broker(Some("MeshBroker"), None).check_update(&classless),
            Ok(()),
            "a Broker stored without a class may get one"
        );
    }

    #[test]
    fn a_broker_without_a_class_gets_the_default() {
        let class =
            |object: &Value| object["metadata"]["annotations"][labels::BROKER_CLASS].clone();
        // (metadata as written, the class after defaulting)
        let cases = [
            (serde_json::json!({"name": "b"}), "MeshBroker"),
            (
                serde_json::json!({"name": "b", "annotations": null}),
                "MeshBroker",
            ),
            (
                serde_json::json!({"name": "b", "annotations": {"team": "a"}}),
                "MeshBroker",
            ),
            (
                serde_json::json!({"name": "b", "annotations": {labels::BROKER_CLASS: ""}}),
                "MeshBroker",
            ),
            (
                serde_json::json!({"name": "b", "annotations": {labels::BROKER_CLASS: "Other"}}),
                "Other",
            ),
        ];
        for (metadata, expected) in cases {
            let mut object = serde_json::json!({"metadata": metadata.clone()});
            Broker::default_class(&mut object, "MeshBroker");
            assert_eq!(class(&object), expected, "{metadata}");
        }
        let mut odd = serde_json::json!({"metadata": {"annotations": "not a map"}});
        Broker::default_class(&mut odd, "MeshBroker");
        assert_eq!(
            odd["metadata"]["annotations"], "not a map",
            "left for validation to refuse"
        );
    }
}
