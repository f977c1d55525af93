//! The Triggers of one Broker, indexed by the exact `type` their filter requires,
//! so an event is checked only against Triggers that could match it: those for its
//! type plus those that pin no type.

use std::collections::HashMap;

use cloudevents::{AttributesReader, Event};

use super::Filter;

pub struct TriggerIndex<T> {
    by_type: HashMap<String, Vec<usize>>,
    unindexed: Vec<usize>,
    entries: Vec<(Filter, T)>,
}

impl<T> TriggerIndex<T> {
    pub fn new(entries: Vec<(Filter, T)>) -> Self {
        let mut by_type: HashMap<String, Vec<usize>> = HashMap::new();
        let mut unindexed = Vec::new();
        for (i, (filter, _)) in entries.iter().enumerate() {
            match filter.required_type() {
                Some(ty) => by_type.entry(ty.to_string()).or_default().push(i),
                None => unindexed.push(i),
            }
        }
        Self {
            by_type,
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
        typed
            .iter()
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

    fn exact_type(ty: &str) -> Filter {
        Filter::Exact {
            name: "type".into(),
            value: ty.into(),
        }
    }

    #[test]
    fn only_candidates_for_the_type_and_unindexed_filters_are_matched() {
        let mut entries: Vec<(Filter, usize)> = (0..1000)
            .map(|i| (exact_type(&format!("t{i}")), i))
            .collect();
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
            .source("/s")
            .ty("t990")
            .build()
            .expect("event");
        let mut matched: Vec<usize> = index.matching(&event).copied().collect();
        matched.sort();
        assert_eq!(matched, vec![990, 5000, 6000]);
        assert_eq!(index.len(), 1002);
    }
}
