//! The Triggers of one Broker, indexed by the exact `type` (or, failing that,
//! `source`) their filter requires, so an event is checked only against Triggers
//! that could match it: those for its type, those for its source, and those that
//! pin neither.
//!
//! A filter that cannot be decided because a CESQL expression went over a limit
//! does not match; each such case is counted (`meshbroker_filter_errors_total`,
//! by limit) and logged, at most once a second.
//!
//! One Trigger's CESQL may cost an event `MAX_WORK` (about 22 ms of one core at
//! the worst); a namespace could otherwise make each of its events cost that
//! many times over with as many Triggers. All of a Broker's Triggers together
//! spend from one budget an event, `BROKER_WORK`: once it is gone, the CESQL
//! filters still to be checked for that event do not match
//! (`reason="broker_work"`), while filters without CESQL cost no budget and
//! are still decided.

use std::collections::HashMap;
use std::sync::Arc;

use cesql::limits::MAX_WORK;
use cesql::{Budget, LimitExceeded};
use cloudevents::{AttributesReader, Event};

use super::Filter;
use crate::telemetry::{Metrics, Throttle, shortened};

static LIMIT_LOG: Throttle = Throttle::new();

/// The CESQL work all of a Broker's Triggers may do for one event: four
/// evaluations' worst. A filter on an ordinary event spends hundreds of
/// units, so thousands of CESQL Triggers fit in it.
pub const BROKER_WORK: u64 = 4 * MAX_WORK;

/// One Trigger of the index.
pub struct Entry<T> {
    /// `namespace/name`, for the log.
    pub trigger: String,
    /// Shared with the routing table's cache of compiled filters.
    pub filter: Arc<Filter>,
    /// What `matching` hands back for it.
    pub value: T,
}

pub struct TriggerIndex<T> {
    by_type: HashMap<String, Vec<usize>>,
    by_source: HashMap<String, Vec<usize>>,
    unindexed: Vec<usize>,
    entries: Vec<Entry<T>>,
}

impl<T> Entry<T> {
    /// Whether the event passes, spending from what is `left` of its
    /// Broker's budget.
    fn passes(&self, event: &Event, metrics: &Metrics, left: &mut u64) -> bool {
        let mut budget = Budget::new(MAX_WORK.min(*left));
        let outcome = self.filter.matches_within(event, &mut budget);
        *left = left.saturating_sub(budget.used());
        outcome.unwrap_or_else(|limit| {
            let reason = match limit {
                LimitExceeded::Work { limit } if limit < MAX_WORK => "broker_work",
                other => other.as_str(),
            };
            refused(&self.trigger, event, metrics, reason, &limit);
            false
        })
    }
}

/// Whether `trigger`'s filter lets `event` through; one stopped by a limit
/// does not, and is counted and logged.
pub fn passes(filter: &Filter, trigger: &str, event: &Event, metrics: &Metrics) -> bool {
    filter.try_matches(event).unwrap_or_else(|limit| {
        refused(trigger, event, metrics, limit.as_str(), &limit);
        false
    })
}

fn refused(
    trigger: &str,
    event: &Event,
    metrics: &Metrics,
    reason: &'static str,
    error: &LimitExceeded,
) {
    metrics.filter_error(reason);
    if let Some(skipped) = LIMIT_LOG.allow() {
        tracing::warn!(%trigger, event_id = ?shortened(event.id()), event_type = ?shortened(event.ty()),
            reason, %error, skipped,
            "a CESQL filter went over a limit; the event does not match the Trigger");
    }
}

impl<T> TriggerIndex<T> {
    pub fn new(entries: Vec<Entry<T>>) -> Self {
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_source: HashMap<String, Vec<usize>> = HashMap::new();
        let mut unindexed = Vec::new();
        for (i, Entry { filter, .. }) in entries.iter().enumerate() {
            if let Some(ty) = filter.required("type") {
                by_type.entry(ty.to_string()).or_default().push(i);
            } else if let Some(source) = filter.required("source") {
                by_source.entry(source.to_string()).or_default().push(i);
            } else {
                unindexed.push(i);
            }
        }
        Self {
            by_type,
            by_source,
            unindexed,
            entries,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every Trigger's value, matching or not.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|entry| &entry.value)
    }

    /// Every entry's value whose filter matches the event; filters stopped by
    /// a limit do not, and are counted in `metrics`.
    pub fn matching<'a>(
        &'a self,
        event: &'a Event,
        metrics: &'a Metrics,
    ) -> impl Iterator<Item = &'a T> + 'a {
        self.entries_matching(event, metrics, |_| true)
            .map(|entry| &entry.value)
    }

    /// As `matching`, among the Triggers `wanted` picks; the others' filters
    /// are not evaluated and spend nothing of the budget.
    pub fn matching_among<'a>(
        &'a self,
        event: &'a Event,
        metrics: &'a Metrics,
        wanted: impl Fn(&T) -> bool + 'a,
    ) -> impl Iterator<Item = &'a T> + 'a {
        self.entries_matching(event, metrics, wanted)
            .map(|entry| &entry.value)
    }

    /// Every Trigger, as `namespace/name` with its value.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries
            .iter()
            .map(|entry| (entry.trigger.as_str(), &entry.value))
    }

    /// The name of every Trigger whose filter lets `event` through.
    pub fn names_matching(&self, event: &Event, metrics: &Metrics) -> Vec<String> {
        self.entries_matching(event, metrics, |_| true)
            .map(|entry| {
                let label = entry.trigger.as_str();
                label
                    .rsplit_once('/')
                    .map_or(label, |(_, name)| name)
                    .to_string()
            })
            .collect()
    }

    fn entries_matching<'a>(
        &'a self,
        event: &'a Event,
        metrics: &'a Metrics,
        wanted: impl Fn(&T) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Entry<T>> + 'a {
        let typed = self
            .by_type
            .get(event.ty())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let sourced = self
            .by_source
            .get(event.source().as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut left = BROKER_WORK;
        typed
            .iter()
            .chain(sourced)
            .chain(self.unindexed.iter())
            .map(|i| &self.entries[*i])
            .filter(move |entry| wanted(&entry.value) && entry.passes(event, metrics, &mut left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudevents::{EventBuilder, EventBuilderV10};

    fn exact(name: &str, value: &str) -> Filter {
        Filter::Exact {
            name: name.into(),
            value: value.into(),
        }
    }

    fn entry(filter: Filter, value: usize) -> Entry<usize> {
        Entry {
            trigger: format!("ns/t{value}"),
            filter: Arc::new(filter),
            value,
        }
    }

    #[test]
    fn only_candidates_for_the_type_or_source_and_unindexed_filters_are_matched() {
        let mut entries: Vec<Entry<usize>> = (0..1000)
            .map(|i| entry(exact("type", &format!("t{i}")), i))
            .collect();
        entries.extend((0..1000).map(|i| entry(exact("source", &format!("/s{i}")), 10_000 + i)));
        entries.push(entry(
            Filter::Prefix {
                name: "type".into(),
                value: "t99".into(),
            },
            5000,
        ));
        entries.push(entry(Filter::Everything, 6000));
        let index = TriggerIndex::new(entries);
        let event = EventBuilderV10::new()
            .id("1")
            .source("/s7")
            .ty("t990")
            .build()
            .expect("event");
        let metrics = Metrics::new();
        let mut matched: Vec<usize> = index.matching(&event, &metrics).copied().collect();
        matched.sort();
        assert_eq!(matched, vec![990, 5000, 6000, 10_007]);
        assert_eq!(index.len(), 2002);
        assert_eq!(index.by_type.len(), 1000);
        assert_eq!(index.by_source.len(), 1000);
        assert_eq!(
            index.unindexed.len(),
            2,
            "only the filters that pin neither are checked for every event"
        );
    }

    #[test]
    fn a_filter_stopped_by_a_limit_does_not_match_and_is_counted() {
        let concat = cesql::Expression::parse("CONCAT(subject, subject) <> ''").expect("parses");
        let index = TriggerIndex::new(vec![
            entry(Filter::Cesql(Arc::new(concat)), 1),
            entry(Filter::Everything, 2),
        ]);
        let event = EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .subject("s".repeat(600 * 1024))
            .build()
            .expect("event");
        let metrics = Metrics::new();
        let matched: Vec<usize> = index.matching(&event, &metrics).copied().collect();
        assert_eq!(matched, vec![2]);
        let text = metrics.render();
        assert!(
            text.contains(r#"meshbroker_filter_errors_total{reason="string_length"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn a_brokers_triggers_share_one_work_budget_an_event() {
        // Each expression scans the 1 MiB subject once (about 1 Mi units): the
        // Broker's budget covers some thirty of them, not forty.
        let scan = cesql::Expression::parse("subject NOT LIKE '%y%'").expect("parses");
        let mut entries: Vec<Entry<usize>> = (0..40)
            .map(|i| entry(Filter::Cesql(Arc::new(scan.clone())), i))
            .collect();
        entries.push(entry(
            Filter::Prefix {
                name: "type".into(),
                value: "t".into(),
            },
            100,
        ));
        let index = TriggerIndex::new(entries);
        let event = EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .subject("s".repeat(1024 * 1024))
            .build()
            .expect("event");
        let metrics = Metrics::new();
        let matched: Vec<usize> = index.matching(&event, &metrics).copied().collect();
        let scans = matched.iter().filter(|value| **value < 40).count();
        let budgeted = usize::try_from(BROKER_WORK / (1024 * 1024)).expect("small");
        assert!(
            (budgeted - 2..=budgeted).contains(&scans),
            "{scans} scans passed, the budget holds {budgeted}"
        );
        assert_eq!(
            matched.last(),
            Some(&100),
            "a filter without CESQL is still decided once the budget is gone"
        );
        let text = metrics.render();
        assert!(
            text.contains(&format!(
                r#"meshbroker_filter_errors_total{{reason="broker_work"}} {}"#,
                40 - scans
            )),
            "{text}"
        );
        // The budget is the event's, not the index's: the next event has its own.
        let again = index.matching(&event, &metrics).count();
        assert_eq!(again, scans + 1);
    }
}
