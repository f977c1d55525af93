//! A Trigger's filter in compiled form: the dialects as a tree, CESQL parsed once.

use std::sync::Arc;

use cloudevents::Event;

use super::attributes::{CesqlView, attribute};
use crate::resources::{Dialect, Invalid, SubscriptionsApiFilter, TriggerSpec};
use cesql::{Budget, Expression, LimitExceeded};

#[derive(Debug, Clone)]
pub enum Filter {
    /// Matches everything (no filter at all).
    Everything,
    /// `filter.attributes` entry: equal, or present when the wanted value is "".
    Attribute {
        name: String,
        value: String,
    },
    Exact {
        name: String,
        value: String,
    },
    Prefix {
        name: String,
        value: String,
    },
    Suffix {
        name: String,
        value: String,
    },
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Cesql(Arc<Expression>),
}

impl Filter {
    /// Compiles a Trigger's filter; `filters` wins over `filter` when both are set.
    pub fn of_trigger(spec: &TriggerSpec) -> Result<Self, Invalid> {
        if let Some(filters) = spec.filters.as_ref().filter(|f| !f.is_empty()) {
            let compiled = filters
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    Self::of_dialect(f).map_err(|e| e.within(&format!("spec.filters[{i}]")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Self::all(compiled));
        }
        let attributes = spec.filter.as_ref().map(|f| &f.attributes);
        let compiled = attributes
            .into_iter()
            .flatten()
            .map(|(name, value)| Filter::Attribute {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        Ok(Self::all(compiled))
    }

    fn all(mut filters: Vec<Filter>) -> Self {
        match filters.len() {
            0 => Filter::Everything,
            1 => filters.pop().unwrap_or(Filter::Everything),
            _ => Filter::All(filters),
        }
    }

    /// One Subscriptions API filter, checked as on write.
    pub fn of_dialect(filter: &SubscriptionsApiFilter) -> Result<Self, Invalid> {
        filter.checked().map(Self::from)
    }

    /// Whether `event` passes. `Err` when a CESQL expression went over one of
    /// its limits: then the Trigger does not get the event, whichever dialect
    /// (`not`, `any`) encloses the expression, since a filter that could not
    /// be decided must not let an event through. All of a Trigger's CESQL
    /// expressions share one evaluation's work budget: a Trigger of a hundred
    /// costly expressions costs an event no more than one may.
    pub fn try_matches(&self, event: &Event) -> Result<bool, LimitExceeded> {
        self.matches_within(event, &mut Budget::default())
    }

    /// As `try_matches`, spending from `budget`.
    pub fn matches_within(
        &self,
        event: &Event,
        budget: &mut Budget,
    ) -> Result<bool, LimitExceeded> {
        Ok(match self {
            Filter::Everything => true,
            Filter::Attribute { name, value } => match attribute(event, name) {
                Some(actual) => value.is_empty() || *actual == **value,
                None => false,
            },
            Filter::Exact { name, value } => attribute(event, name).is_some_and(|a| *a == **value),
            Filter::Prefix { name, value } => {
                attribute(event, name).is_some_and(|a| a.starts_with(value.as_str()))
            }
            Filter::Suffix { name, value } => {
                attribute(event, name).is_some_and(|a| a.ends_with(value.as_str()))
            }
            Filter::All(filters) => {
                for filter in filters {
                    if !filter.matches_within(event, budget)? {
                        return Ok(false);
                    }
                }
                true
            }
            Filter::Any(filters) => {
                for filter in filters {
                    if filter.matches_within(event, budget)? {
                        return Ok(true);
                    }
                }
                false
            }
            Filter::Not(inner) => !inner.matches_within(event, budget)?,
            Filter::Cesql(expression) => {
                expression.try_matches_within(&CesqlView(event), budget)?
            }
        })
    }

    /// The value of `attribute` every matching event must have, when the filter
    /// pins one at its top level (an exact match AND-ed with the rest): an index key.
    pub fn required(&self, attribute: &str) -> Option<&str> {
        match self {
            Filter::Attribute { name, value } | Filter::Exact { name, value }
                if name == attribute && !value.is_empty() =>
            {
                Some(value)
            }
            Filter::All(filters) => filters.iter().find_map(|f| f.required(attribute)),
            _ => None,
        }
    }
}

impl From<Dialect> for Filter {
    fn from(dialect: Dialect) -> Self {
        let all = |list: Vec<Dialect>| list.into_iter().map(Self::from).collect();
        match dialect {
            Dialect::Exact { name, value } => Filter::Exact { name, value },
            Dialect::Prefix { name, value } => Filter::Prefix { name, value },
            Dialect::Suffix { name, value } => Filter::Suffix { name, value },
            Dialect::All(list) => Filter::All(all(list)),
            Dialect::Any(list) => Filter::Any(all(list)),
            Dialect::Not(inner) => Filter::Not(Box::new(Self::from(*inner))),
            Dialect::Cesql(expression) => Filter::Cesql(Arc::new(expression)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::{EventBuilder, EventBuilderV10};

    fn event() -> Event {
        EventBuilderV10::new()
            .id("1")
            .source("/orders/eu")
            .ty("order.created")
            .extension("region", "eu-west")
            .build()
            .expect("event")
    }

    fn trigger(spec: serde_json::Value) -> Filter {
        let mut spec = spec;
        spec["broker"] = "default".into();
        spec["subscriber"] = serde_json::json!({"uri": "http://x"});
        let spec: TriggerSpec = serde_json::from_value(spec).expect("spec");
        Filter::of_trigger(&spec).expect("compiles")
    }

    #[test]
    fn attribute_filters_match_exactly_and_empty_means_present() {
        let cases = [
            (serde_json::json!({}), true),
            (
                serde_json::json!({"filter": {"attributes": {"type": "order.created"}}}),
                true,
            ),
            (
                serde_json::json!({"filter": {"attributes": {"type": "order.cancelled"}}}),
                false,
            ),
            (
                serde_json::json!({"filter": {"attributes": {"region": ""}}}),
                true,
            ),
            (
                serde_json::json!({"filter": {"attributes": {"tenant": ""}}}),
                false,
            ),
            (
                serde_json::json!({"filter": {"attributes": {"type": "order.created", "source": "/other"}}}),
                false,
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                trigger(spec.clone()).try_matches(&event()),
                Ok(expected),
                "{spec}"
            );
        }
    }

    #[test]
    fn every_dialect_evaluates_as_the_spec_says() {
        let cases = [
            (
                serde_json::json!([{"exact": {"type": "order.created"}}]),
                true,
            ),
            (serde_json::json!([{"prefix": {"type": "order."}}]), true),
            (
                serde_json::json!([{"exact": {"type": "order.created", "region": "eu-west"}}]),
                true,
            ),
            (
                serde_json::json!([{"prefix": {"type": "order.", "region": "us"}}]),
                false,
            ),
            (serde_json::json!([{"suffix": {"source": "/eu"}}]), true),
            (serde_json::json!([{"suffix": {"source": "/us"}}]), false),
            (
                serde_json::json!([{"not": {"exact": {"type": "order.created"}}}]),
                false,
            ),
            (
                serde_json::json!([{"any": [{"exact": {"type": "x"}}, {"prefix": {"region": "eu"}}]}]),
                true,
            ),
            (
                serde_json::json!([{"all": [{"exact": {"type": "order.created"}}, {"exact": {"region": "us"}}]}]),
                false,
            ),
            (
                serde_json::json!([{"cesql": "type LIKE 'order.%' AND region = 'eu-west'"}]),
                true,
            ),
            (serde_json::json!([{"cesql": "missing = 'x'"}]), false),
            (
                serde_json::json!([{"exact": {"type": "order.created"}}, {"exact": {"region": "us"}}]),
                false,
            ),
        ];
        for (filters, expected) in cases {
            let compiled = trigger(serde_json::json!({"filters": filters}));
            assert_eq!(compiled.try_matches(&event()), Ok(expected), "{filters}");
        }
    }

    #[test]
    fn filters_override_filter() {
        let compiled = trigger(serde_json::json!({
            "filter": {"attributes": {"type": "never"}},
            "filters": [{"exact": {"type": "order.created"}}]
        }));
        assert_eq!(compiled.try_matches(&event()), Ok(true));
    }

    #[test]
    fn required_values_are_found_at_the_top_level_only() {
        let both =
            trigger(serde_json::json!({"filter": {"attributes": {"type": "a", "source": "s"}}}));
        assert_eq!(both.required("type"), Some("a"));
        assert_eq!(both.required("source"), Some("s"));
        let mixed = trigger(
            serde_json::json!({"filters": [{"exact": {"type": "b"}}, {"prefix": {"source": "/"}}]}),
        );
        assert_eq!(mixed.required("type"), Some("b"));
        assert_eq!(mixed.required("source"), None, "a prefix pins nothing");
        let nested = trigger(serde_json::json!({"filters": [{"any": [{"exact": {"type": "b"}}]}]}));
        assert_eq!(nested.required("type"), None);
        let negated = trigger(serde_json::json!({"filters": [{"not": {"exact": {"type": "b"}}}]}));
        assert_eq!(negated.required("type"), None);
        let any_value = trigger(serde_json::json!({"filter": {"attributes": {"type": ""}}}));
        assert_eq!(any_value.required("type"), None);
    }

    #[test]
    fn a_bad_cesql_expression_is_refused_naming_the_filter() {
        let spec: TriggerSpec = serde_json::from_value(serde_json::json!({
            "broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"all": [{"cesql": "type = "}]}]
        }))
        .expect("spec");
        let error = Filter::of_trigger(&spec).expect_err("parse error");
        assert_eq!(error.field, "spec.filters[0].all[0].cesql");
    }

    #[test]
    fn a_cesql_expression_over_a_size_limit_is_refused_naming_the_field_and_the_limit() {
        let long = format!("subject LIKE '%{}%'", "a_".repeat(5_000));
        let spec: TriggerSpec = serde_json::from_value(serde_json::json!({
            "broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"cesql": long}]
        }))
        .expect("spec");
        let error = Filter::of_trigger(&spec).expect_err("over the length limit");
        assert_eq!(error.field, "spec.filters[0].cesql");
        assert!(
            error.message.contains("the limit is 8192 bytes"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_cesql_expression_over_an_evaluation_limit_keeps_the_event_out_whatever_encloses_it() {
        let concat = "CONCAT(subject, subject, subject) = ''";
        let event = EventBuilderV10::new()
            .id("1")
            .source("/orders/eu")
            .ty("order.created")
            .subject("s".repeat(400 * 1024))
            .build()
            .expect("event");
        let over = Err(LimitExceeded::StringLength {
            function: "CONCAT",
            limit: cesql::limits::MAX_STRING_BYTES,
        });
        for filters in [
            serde_json::json!([{"cesql": concat}]),
            serde_json::json!([{"not": {"cesql": concat}}]),
            serde_json::json!([{"any": [{"exact": {"type": "other"}}, {"not": {"cesql": concat}}]}]),
            serde_json::json!([{"all": [{"exact": {"type": "order.created"}}, {"not": {"cesql": concat}}]}]),
        ] {
            let compiled = trigger(serde_json::json!({"filters": filters}));
            assert_eq!(compiled.try_matches(&event), over, "{filters}");
        }
        // Decided before the expression is reached: no error.
        let decided = trigger(serde_json::json!({"filters": [
            {"any": [{"exact": {"type": "order.created"}}, {"cesql": concat}]}
        ]}));
        assert_eq!(decided.try_matches(&event), Ok(true));
    }

    #[test]
    fn a_triggers_expressions_share_one_work_budget() {
        let event = EventBuilderV10::new()
            .id("1")
            .source("/orders/eu")
            .ty("order.created")
            .subject("s".repeat(1024 * 1024))
            .build()
            .expect("event");
        // One scan of the 1 MiB subject fits an evaluation's budget many times;
        // twenty of them in one Trigger do not.
        let scan = serde_json::json!({"cesql": "subject LIKE '%y%'"});
        let one = trigger(serde_json::json!({"filters": [scan.clone()]}));
        assert_eq!(one.try_matches(&event), Ok(false));
        let twenty = trigger(serde_json::json!({"filters": [{"any": vec![scan; 20]}]}));
        assert_eq!(
            twenty.try_matches(&event),
            Err(LimitExceeded::Work {
                limit: cesql::limits::MAX_WORK
            })
        );
    }
}
