//! `eventing.knative.dev/v1`: Broker and Trigger, their delivery options and the
//! Trigger filter dialects (`filter.attributes` and the `filters` of the
//! Subscriptions API), with the checks that refuse a bad Trigger at write time.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::parse_iso8601_duration;
use super::{AddressableStatus, Condition, Conditions, Destination, Invalid, KReference};

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
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(sink) = &self.dead_letter_sink {
            sink.validate().map_err(|e| e.within("deadLetterSink"))?;
        }
        if let Some(retry) = self.retry
            && !(0..=100).contains(&retry)
        {
            return Err(Invalid::new("retry", "must be between 0 and 100"));
        }
        for (field, value) in [
            ("backoffDelay", &self.backoff_delay),
            ("timeout", &self.timeout),
            ("retryAfterMax", &self.retry_after_max),
        ] {
            if let Some(text) = value {
                parse_iso8601_duration(text).map_err(|message| Invalid::new(field, message))?;
            }
        }
        Ok(())
    }
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
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(delivery) = &self.spec.delivery {
            delivery.validate().map_err(|e| e.within("spec.delivery"))?;
        }
        Ok(())
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

impl SubscriptionsApiFilter {
    pub fn validate(&self) -> Result<(), Invalid> {
        let dialects = [
            self.exact.is_some(),
            self.prefix.is_some(),
            self.suffix.is_some(),
            self.all.is_some(),
            self.any.is_some(),
            self.not.is_some(),
            self.cesql.is_some(),
        ];
        match dialects.iter().filter(|set| **set).count() {
            0 => {
                return Err(Invalid::new(
                    "",
                    "needs one dialect: exact, prefix, suffix, all, any, not or cesql",
                ));
            }
            1 => {}
            _ => return Err(Invalid::new("", "sets more than one dialect; use all")),
        }
        for (dialect, map) in [
            ("exact", &self.exact),
            ("prefix", &self.prefix),
            ("suffix", &self.suffix),
        ] {
            if let Some(map) = map {
                validate_attribute_map(map, dialect == "exact").map_err(|e| e.within(dialect))?;
            }
        }
        for (dialect, list) in [("all", &self.all), ("any", &self.any)] {
            if let Some(list) = list {
                if list.is_empty() {
                    return Err(Invalid::new(dialect, "must list at least one filter"));
                }
                for (i, filter) in list.iter().enumerate() {
                    filter
                        .validate()
                        .map_err(|e| e.within(&format!("{dialect}[{i}]")))?;
                }
            }
        }
        if let Some(inner) = &self.not {
            inner.validate().map_err(|e| e.within("not"))?;
        }
        if let Some(expression) = &self.cesql {
            if expression.trim().is_empty() {
                return Err(Invalid::new("cesql", "must not be empty"));
            }
            // Compiled again when the routing table is built; parsing here refuses
            // a bad expression when the Trigger is written, not per event.
            crate::mesh::cesql::Expression::parse(expression)
                .map_err(|e| Invalid::new("cesql", e.to_string()))?;
        }
        Ok(())
    }
}

/// `exact` allows an empty value (matches the empty string); `prefix` and `suffix`
/// need one, as in Knative. Exactly one attribute per dialect object, as the spec says.
fn validate_attribute_map(
    map: &BTreeMap<String, String>,
    empty_value_allowed: bool,
) -> Result<(), Invalid> {
    if map.len() != 1 {
        return Err(Invalid::new("", "must name exactly one attribute"));
    }
    for (attribute, value) in map {
        if !is_attribute_name(attribute) {
            return Err(Invalid::new(
                attribute.as_str(),
                "is not a CloudEvents attribute name (lower-case a-z and 0-9)",
            ));
        }
        if value.is_empty() && !empty_value_allowed {
            return Err(Invalid::new(attribute.as_str(), "must not be empty"));
        }
    }
    Ok(())
}

pub(crate) fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
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
        if let Some(filter) = &self.spec.filter {
            for attribute in filter.attributes.keys() {
                if !is_attribute_name(attribute) {
                    return Err(Invalid::new(
                        format!("spec.filter.attributes.{attribute}"),
                        "is not a CloudEvents attribute name (lower-case a-z and 0-9)",
                    ));
                }
            }
        }
        for (i, filter) in self.spec.filters.iter().flatten().enumerate() {
            filter
                .validate()
                .map_err(|e| e.within(&format!("spec.filters[{i}]")))?;
        }
        if let Some(delivery) = &self.spec.delivery {
            delivery.validate().map_err(|e| e.within("spec.delivery"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn prefix_needs_a_value_and_exact_does_not() {
        assert!(
            filter(serde_json::json!({"prefix": {"type": ""}}))
                .validate()
                .is_err()
        );
        assert!(
            filter(serde_json::json!({"exact": {"type": ""}}))
                .validate()
                .is_ok()
        );
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
}
