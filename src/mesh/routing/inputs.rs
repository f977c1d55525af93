//! What the routing table is built from: the Applications, Channels,
//! Subscriptions, Brokers, Triggers and ServiceInstances the watches report,
//! kept in memory. Triggers are grouped by their Broker and Subscriptions by
//! their Channel as they arrive, so a build walks each group once instead of
//! every object for every Broker or Channel.
//!
//! A write that leaves all the table reads unchanged (a condition, a label, an
//! observed generation: what the readiness controllers write) is no change
//! here: the object as it was is kept, and nothing needs building. What the
//! table reads is the object's spec (known unchanged by its uid and
//! generation) and the few status fields each kind's `routes_alike` names.

use std::collections::{BTreeMap, HashMap, HashSet};

use kube::core::{DynamicObject, ObjectMeta};

use crate::resources::{
    Application, Broker, Channel, Conditions, ServiceInstance, Subscription, Trigger, Typed,
};
use crate::store::{WatchEventType, to_typed};

/// (namespace, name); the namespace is "" for a cluster-scoped kind.
pub type Key = (String, String);

pub fn key_of(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// A kind the table reads: what of it matters, and where its objects are kept.
pub trait Watched: Typed {
    /// Whether `self` and `newer` (the same name, before and after a write)
    /// route alike: the same object, the same spec, and the same status fields
    /// the table reads.
    fn routes_alike(&self, newer: &Self) -> bool;

    /// The group a build walks the object in (a Trigger's Broker, a
    /// Subscription's Channel), for kinds that are walked by group.
    fn group(&self) -> Option<Key> {
        None
    }

    fn objects(inputs: &mut Inputs) -> &mut Objects<Self>;

    /// Whether the embedded dataplane routes it at all.
    fn is_routed_here(&self) -> bool {
        true
    }
}

/// The same object (uid) with the same spec: Kubernetes and the embedded
/// store bump `generation` on every spec change and on nothing else.
fn same_spec(older: &ObjectMeta, newer: &ObjectMeta) -> bool {
    older.uid == newer.uid && older.generation.is_some() && older.generation == newer.generation
}

impl Watched for Application {
    fn routes_alike(&self, newer: &Self) -> bool {
        let ready = |a: &Self| a.status.as_ref().is_some_and(|s| s.is_ready());
        same_spec(&self.metadata, &newer.metadata) && ready(self) == ready(newer)
    }

    fn objects(inputs: &mut Inputs) -> &mut Objects<Self> {
        &mut inputs.applications
    }
}

impl Watched for Channel {
    /// Readiness and address matter only to `--dataplane knative`, which
    /// forwards to the address of a ready Channel.
    fn routes_alike(&self, newer: &Self) -> bool {
        let served = |c: &Self| {
            c.status
                .as_ref()
                .map(|s| (s.is_ready(), s.address.url.clone()))
        };
        same_spec(&self.metadata, &newer.metadata) && served(self) == served(newer)
    }

    fn objects(inputs: &mut Inputs) -> &mut Objects<Self> {
        &mut inputs.channels
    }
}

impl Watched for Subscription {
    fn routes_alike(&self, newer: &Self) -> bool {
        let resolved = |s: &Self| s.status.as_ref().map(|s| s.physical_subscription.clone());
        same_spec(&self.metadata, &newer.metadata) && resolved(self) == resolved(newer)
    }

    fn group(&self) -> Option<Key> {
        let namespace = self.metadata.namespace.clone().unwrap_or_default();
        Some((namespace, self.channel_name()?.to_string()))
    }

    fn objects(inputs: &mut Inputs) -> &mut Objects<Self> {
        &mut inputs.subscriptions
    }
}

impl Watched for Broker {
    fn is_routed_here(&self) -> bool {
        self.is_embedded_class()
    }

    /// Its address is what its Triggers' dead letters name when it refuses a
    /// reply (`knativeerrordest`); it is written with the Broker's first
    /// status, and again only when the events listener's URL changes.
    fn routes_alike(&self, newer: &Self) -> bool {
        let address = |b: &Self| b.status.as_ref().and_then(|s| s.address.url.clone());
        same_spec(&self.metadata, &newer.metadata) && address(self) == address(newer)
    }

    fn objects(inputs: &mut Inputs) -> &mut Objects<Self> {
        &mut inputs.brokers
    }
}

impl Watched for Trigger {
    fn routes_alike(&self, newer: &Self) -> bool {
        let resolved = |t: &Self| {
            t.status
                .as_ref()
                .map(|s| (s.subscriber_uri.clone(), s.dead_letter_sink_uri.clone()))
        };
        same_spec(&self.metadata, &newer.metadata) && resolved(self) == resolved(newer)
    }

    fn group(&self) -> Option<Key> {
        let namespace = self.metadata.namespace.clone().unwrap_or_default();
        Some((namespace, self.spec.broker.clone()))
    }

    fn objects(inputs: &mut Inputs) -> &mut Objects<Self> {
        &mut inputs.triggers
    }
}

impl Watched for ServiceInstance {
    fn routes_alike(&self, newer: &Self) -> bool {
        same_spec(&self.metadata, &newer.metadata) && self.is_live() == newer.is_live()
    }

    fn objects(inputs: &mut Inputs) -> &mut Objects<Self> {
        &mut inputs.instances
    }
}

/// The objects of one kind, by group (one group, `None`, for kinds without)
/// and by key within it.
pub struct Objects<K> {
    groups: HashMap<Option<Key>, BTreeMap<Key, K>>,
    group_of: HashMap<Key, Option<Key>>,
    /// Moves whenever a member of the group comes, goes or changes: a build
    /// redoes a group whose version is not the one it built. Never 0, so a
    /// group that is gone (version 0) differs from every group that was.
    versions: HashMap<Key, u64>,
    last_version: u64,
}

impl<K> Default for Objects<K> {
    fn default() -> Self {
        Self {
            groups: HashMap::new(),
            group_of: HashMap::new(),
            versions: HashMap::new(),
            last_version: 0,
        }
    }
}

impl<K: Watched> Objects<K> {
    /// Every object, in key order within each group.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.groups.values().flat_map(BTreeMap::values)
    }

    pub fn len(&self) -> usize {
        self.group_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.group_of.is_empty()
    }

    pub fn get(&self, key: &Key) -> Option<&K> {
        self.groups.get(self.group_of.get(key)?)?.get(key)
    }

    /// The members of `group`, in key order.
    pub fn group(&self, group: &Key) -> impl Iterator<Item = &K> {
        self.groups
            .get(&Some(group.clone()))
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// Changes whenever the group's members do (0: no members).
    pub fn version_of(&self, group: &Key) -> u64 {
        self.versions.get(group).copied().unwrap_or(0)
    }

    /// Keeps `object` unless what it was routes alike; true when routing may
    /// have changed.
    pub fn put(&mut self, object: K) -> bool {
        let key = key_of(object.meta());
        if let Some(known) = self.get(&key) {
            if known.routes_alike(&object) {
                return false;
            }
            self.remove(&key);
        }
        let group = object.group();
        if let Some(group) = &group {
            self.touch(group);
        }
        self.group_of.insert(key.clone(), group.clone());
        self.groups.entry(group).or_default().insert(key, object);
        true
    }

    /// True when there was such an object.
    pub fn remove(&mut self, key: &Key) -> bool {
        let Some(group) = self.group_of.remove(key) else {
            return false;
        };
        if let Some(members) = self.groups.get_mut(&group) {
            members.remove(key);
            if members.is_empty() {
                self.groups.remove(&group);
            }
        }
        if let Some(group) = group {
            self.touch(&group);
            if !self.groups.contains_key(&Some(group.clone())) {
                self.versions.remove(&group);
            }
        }
        true
    }

    /// The objects become exactly `objects` (a fresh list); true when routing
    /// may have changed.
    pub fn replace_all(&mut self, objects: Vec<K>) -> bool {
        let listed: HashSet<Key> = objects.iter().map(|o| key_of(o.meta())).collect();
        let gone: Vec<Key> = self
            .group_of
            .keys()
            .filter(|key| !listed.contains(*key))
            .cloned()
            .collect();
        let mut changed = false;
        for key in gone {
            changed |= self.remove(&key);
        }
        for object in objects {
            changed |= self.put(object);
        }
        changed
    }

    fn touch(&mut self, group: &Key) {
        self.last_version += 1;
        self.versions.insert(group.clone(), self.last_version);
    }
}

/// Everything a build reads.
#[derive(Default)]
pub struct Inputs {
    pub applications: Objects<Application>,
    pub channels: Objects<Channel>,
    /// Grouped by their Channel.
    pub subscriptions: Objects<Subscription>,
    pub brokers: Objects<Broker>,
    /// Grouped by their Broker.
    pub triggers: Objects<Trigger>,
    pub instances: Objects<ServiceInstance>,
}

impl Inputs {
    /// Keeps an added or changed object; true when routing may have changed.
    pub fn put<K: Watched>(&mut self, object: K) -> bool {
        K::objects(self).put(object)
    }

    /// Applies a change a watch of `K` reported; true when routing may have
    /// changed. An object that does not read as its kind is logged and left out.
    pub fn apply<K: Watched>(&mut self, change: WatchEventType, object: DynamicObject) -> bool {
        let key = key_of(&object.metadata);
        if change == WatchEventType::Deleted {
            return K::objects(self).remove(&key);
        }
        match to_typed::<K>(object) {
            Ok(object) if object.is_routed_here() => self.put(object),
            Ok(_) => K::objects(self).remove(&key),
            Err(error) => {
                tracing::warn!(kind = %K::kind(&()), namespace = %key.0, name = %key.1, %error,
                    "a watched object does not read as its kind; the routing table leaves it out");
                K::objects(self).remove(&key)
            }
        }
    }

    /// Replaces every object of `K` with a fresh list of them; true when
    /// routing may have changed. Objects that do not read as their kind are
    /// logged and left out.
    pub fn replace_all<K: Watched>(&mut self, objects: Vec<DynamicObject>) -> bool {
        let typed = objects
            .into_iter()
            .filter_map(|object| {
                let key = key_of(&object.metadata);
                to_typed::<K>(object)
                    .inspect_err(|error| {
                        tracing::warn!(kind = %K::kind(&()), namespace = %key.0, name = %key.1, %error,
                            "a listed object does not read as its kind; the routing table leaves it out");
                    })
                    .ok()
            })
            .filter(K::is_routed_here)
            .collect();
        K::objects(self).replace_all(typed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Condition, TriggerStatus};

    fn trigger(name: &str, broker: &str, uid: &str, generation: i64) -> Trigger {
        let mut trigger: Trigger = serde_json::from_value(serde_json::json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": name, "namespace": "team-a", "uid": uid, "generation": generation},
            "spec": {"broker": broker, "subscriber": {"uri": "http://sink/"}}
        }))
        .expect("a Trigger");
        trigger.status = Some(TriggerStatus {
            subscriber_uri: Some("http://sink/".into()),
            ..TriggerStatus::default()
        });
        trigger
    }

    fn names<'a>(triggers: impl Iterator<Item = &'a Trigger>) -> Vec<String> {
        triggers
            .map(|t| t.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_write_of_nothing_the_table_reads_is_no_change() {
        let mut objects = Objects::default();
        assert!(objects.put(trigger("t", "default", "u1", 1)));
        let group = ("team-a".to_string(), "default".to_string());
        let version = objects.version_of(&group);

        let mut conditions = trigger("t", "default", "u1", 1);
        if let Some(status) = conditions.status.as_mut() {
            status.conditions = vec![Condition::met("Ready")];
            status.observed_generation = Some(1);
        }
        conditions.metadata.resource_version = Some("7".into());
        assert!(!objects.put(conditions), "conditions are not routing");
        assert_eq!(objects.version_of(&group), version);
        let key = ("team-a".to_string(), "t".to_string());
        assert_eq!(
            objects
                .get(&key)
                .and_then(|t| t.metadata.resource_version.clone()),
            None,
            "the object as it was is kept"
        );

        let mut resolved = trigger("t", "default", "u1", 1);
        if let Some(status) = resolved.status.as_mut() {
            status.dead_letter_sink_uri = Some("http://dls/".into());
        }
        assert!(objects.put(resolved), "a resolved URI is routing");
        assert!(
            objects.put(trigger("t", "default", "u1", 2)),
            "a new spec is"
        );
        assert!(
            objects.put(trigger("t", "default", "u2", 2)),
            "so is another object of the same name"
        );
        assert_ne!(objects.version_of(&group), version);
    }

    #[test]
    fn objects_are_walked_by_group_and_leave_their_group_when_they_go() {
        let mut objects = Objects::default();
        for (name, broker) in [("b", "one"), ("a", "one"), ("c", "two")] {
            objects.put(trigger(name, broker, name, 1));
        }
        let one = ("team-a".to_string(), "one".to_string());
        let two = ("team-a".to_string(), "two".to_string());
        assert_eq!(names(objects.group(&one)), ["a", "b"]);
        assert_eq!(names(objects.group(&two)), ["c"]);
        let (one_before, two_before) = (objects.version_of(&one), objects.version_of(&two));

        assert!(objects.remove(&("team-a".to_string(), "a".to_string())));
        assert_eq!(names(objects.group(&one)), ["b"]);
        assert_ne!(objects.version_of(&one), one_before);
        assert_eq!(
            objects.version_of(&two),
            two_before,
            "other groups keep theirs"
        );

        assert!(objects.remove(&("team-a".to_string(), "c".to_string())));
        assert_eq!(objects.version_of(&two), 0, "an empty group is none");
        assert!(!objects.remove(&("team-a".to_string(), "c".to_string())));
    }

    #[test]
    fn a_fresh_list_drops_what_it_lacks_and_keeps_what_routes_alike() {
        let mut objects = Objects::default();
        objects.put(trigger("a", "one", "a", 1));
        objects.put(trigger("b", "one", "b", 1));
        assert!(!objects.replace_all(vec![
            trigger("a", "one", "a", 1),
            trigger("b", "one", "b", 1)
        ]));
        assert!(objects.replace_all(vec![trigger("b", "one", "b", 1)]));
        assert_eq!(names(objects.iter()), ["b"]);
        assert!(
            objects
                .get(&("team-a".to_string(), "a".to_string()))
                .is_none()
        );
    }

    #[test]
    fn a_watched_object_that_does_not_read_as_its_kind_is_left_out() {
        let mut inputs = Inputs::default();
        inputs.put(trigger("t", "default", "u1", 1));
        let unreadable: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "t", "namespace": "team-a", "uid": "u1", "generation": 2},
            "spec": {"broker": 7}
        }))
        .expect("a DynamicObject");
        assert!(inputs.apply::<Trigger>(WatchEventType::Modified, unreadable));
        assert!(inputs.triggers.is_empty());
    }
}
