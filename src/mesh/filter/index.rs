//! The Triggers of one Broker, indexed by the exact `type` (or, failing that,
//! `source`) their filter requires, so an event is checked only against Triggers
//! that could match it: those for its type, those for its source, and those that
//! pin neither.

use std::collections::HashMap;

use cloudevents::{AttributesReader, Event};

use super::Filter;

pub struct TriggerIndex<T> {
    by_type: HashMap<String, Vec<usize>>,
    by_source: HashMap<String, Vec<usize>>,
    unindexed: Vec<usize>,
    entries: Vec<(Filter, T)>,
}

impl<T> TriggerIndex<T> {
    pub fn new(entries: Vec<(Filter, T)>) -> Self {
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_source: HashMap<String, Vec<usize>> = HashMap::new();
        let mut unindexed = Vec::new();
        for (i, (filter, _)) in entries.iter().enumerate() {
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

    /// Every entry whose filter matches the event.
    pub fn matching<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a T> + 'a {
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
        typed
            .iter()
            .chain(sourced)
            .chain(self.unindexed.iter())
            .map(|i| &self.entries[*i])
            .filter(move |(filter, _)| filter.matches(event))
            .map(|(_, value)| value)
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

    #[test]
    fn only_candidates_for_the_type_or_source_and_unindexed_filters_are_matched() {
        let mut entries: Vec<(Filter, usize)> = (0..1000)
            .map(|i| (exact("type", &format!("t{i}")), i))
            .collect();
        entries.extend((0..1000).map(|i| (exact("source", &format!("/s{i}")), 10_000 + i)));
        entries.push((
            Filter::Prefix {
                name: "type".into(),
                value: "t99".into(),
            },
            5000,
        ));
        entries.push((Filter::Everything, 6000));
        let index = TriggerIndex::new(entries);
        let event = EventBuilderV10::new()
            .id("1")
            .source("/s7")
            .ty("t990")
            .build()
            .expect("event");
        let mut matched: Vec<usize> = index.matching(&event).copied().collect();
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
}
