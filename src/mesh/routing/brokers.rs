//! Each Broker's route, kept across builds: rebuilt only when the Broker or one
//! of its Triggers changed (its Trigger group's version moved), and within it
//! each Trigger kept while it is the same object. A Trigger's filter is
//! compiled again only for a new spec (uid, generation); its dispatcher (queue,
//! workers, connections) is kept for the same uid and retargeted when its spec
//! or resolved URIs change. Rebuilding a route walks its Triggers once and
//! reuses what is unchanged, so a change costs one route's Arc clones, not
//! every filter compiled again.

use std::collections::HashMap;
use std::sync::Arc;

use super::dispatchers::Dispatchers;
use super::durable::{Durable, LogHandle};
use super::inputs::{Inputs, Key, key_of};
use super::running::Consumer;
use super::table::BrokerRoute;
use super::targets;
use crate::mesh::dispatch::Dispatcher;
use crate::mesh::filter::{Entry, Filter, TriggerIndex};
use crate::mesh::log::{LogKind, Owner};
use crate::resources::{Broker, Trigger};

/// A Broker's route and what it was built from.
struct BuiltBroker {
    /// The Broker's resourceVersion (its delivery is its Triggers' default).
    broker_version: Option<String>,
    /// Its Trigger group's version.
    triggers_version: u64,
    route: Arc<BrokerRoute>,
    /// In name order, as the Broker's Trigger group is walked.
    triggers: Vec<BuiltTrigger>,
}

/// A routed Trigger's compiled filter and dispatcher, and what they came from.
struct BuiltTrigger {
    name: String,
    /// `namespace/name`, for the log.
    label: String,
    uid: Option<String>,
    generation: Option<i64>,
    resource_version: Option<String>,
    filter: Arc<Filter>,
    dispatcher: Arc<Dispatcher>,
    /// Durable delivery: what reads the Broker's log for it.
    consumer: Option<Consumer>,
}

#[derive(Default)]
pub struct BrokerRoutes {
    built: HashMap<Key, BuiltBroker>,
}

impl BrokerRoutes {
    /// Every Broker's route as `inputs` has it, rebuilding only what changed.
    /// A Broker that is gone drops its route and its Triggers' dispatchers
    /// (which drain their queues).
    pub fn update(
        &mut self,
        inputs: &Inputs,
        dispatchers: &mut Dispatchers,
        mut durable: Option<&mut Durable>,
    ) -> HashMap<Key, Arc<BrokerRoute>> {
        let mut built = HashMap::with_capacity(inputs.brokers.len());
        for broker in inputs.brokers.iter() {
            let key = key_of(&broker.metadata);
            let triggers_version = inputs.triggers.version_of(&key);
            let current = match self.built.remove(&key) {
                Some(known)
                    if known.broker_version == broker.metadata.resource_version
                        && known.triggers_version == triggers_version =>
                {
                    known
                }
                known => build(
                    broker,
                    inputs.triggers.group(&key),
                    triggers_version,
                    known,
                    dispatchers,
                    durable.as_deref_mut(),
                ),
            };
            built.insert(key, current);
        }
        self.built = built;
        self.built
            .iter()
            .map(|(key, built)| (key.clone(), built.route.clone()))
            .collect()
    }

    /// The compiled filter of a routed Trigger.
    #[cfg(test)]
    pub fn filter_of(&self, broker: &Key, trigger: &str) -> Option<Arc<Filter>> {
        let triggers = &self.built.get(broker)?.triggers;
        let built = triggers.iter().find(|built| built.name == trigger)?;
        Some(built.filter.clone())
    }
}

fn build<'a>(
    broker: &Broker,
    triggers: impl Iterator<Item = &'a Trigger>,
    triggers_version: u64,
    known: Option<BuiltBroker>,
    dispatchers: &mut Dispatchers,
    mut durable: Option<&mut Durable>,
) -> BuiltBroker {
    let (namespace, name) = key_of(&broker.metadata);
    let log = durable
        .as_deref_mut()
        .and_then(|durable| durable.log(LogKind::Broker, &namespace, &name));
    let broker_version = broker.metadata.resource_version.clone();
    let broker_changed = known
        .as_ref()
        .is_none_or(|known| known.broker_version != broker_version);
    // Both in name order: a merge join pairs each Trigger with what was
    // built of it, without a lookup.
    let mut known = known
        .map(|known| known.triggers)
        .unwrap_or_default()
        .into_iter()
        .peekable();
    let mut entries = Vec::new();
    let mut kept = Vec::new();
    for trigger in triggers {
        let trigger_name = trigger.metadata.name.as_deref().unwrap_or_default();
        while known
            .next_if(|known| known.name.as_str() < trigger_name)
            .is_some()
        {}
        let known = known.next_if(|known| known.name == trigger_name);
        let unchanged = !broker_changed
            && known.as_ref().is_some_and(|known| {
                known.uid == trigger.metadata.uid
                    && known.resource_version.is_some()
                    && known.resource_version == trigger.metadata.resource_version
            });
        let built = match known {
            Some(known) if unchanged => known,
            known => match build_trigger(
                trigger,
                broker,
                &namespace,
                known,
                dispatchers,
                durable.as_deref_mut().zip(log.as_ref()),
            ) {
                Some(built) => built,
                None => continue,
            },
        };
        entries.push(Entry {
            trigger: built.label.clone(),
            filter: built.filter.clone(),
            value: built.dispatcher.clone(),
        });
        kept.push(built);
    }
    if let (Some(durable), Some(log)) = (durable, log.as_ref()) {
        let members = kept.iter().filter_map(|built| {
            Some(Entry {
                trigger: built.label.clone(),
                filter: built.filter.clone(),
                value: built.consumer.as_ref()?.member()?.clone(),
            })
        });
        durable.index(log, members.collect());
    }
    BuiltBroker {
        broker_version,
        triggers_version,
        route: Arc::new(BrokerRoute {
            namespace,
            name,
            triggers: TriggerIndex::new(entries),
            log,
        }),
        triggers: kept,
    }
}

/// A Trigger that is new or changed; None while it cannot be routed.
fn build_trigger(
    trigger: &Trigger,
    broker: &Broker,
    namespace: &str,
    known: Option<BuiltTrigger>,
    dispatchers: &mut Dispatchers,
    durable: Option<(&mut Durable, &LogHandle)>,
) -> Option<BuiltTrigger> {
    let target = targets::of_trigger(trigger, broker)?;
    let target_label = target.label.clone();
    let uid = trigger.metadata.uid.clone();
    let generation = trigger.metadata.generation;
    let same_object = known.filter(|known| known.uid == uid);
    let filter = match same_object
        .as_ref()
        .filter(|known| known.generation.is_some() && known.generation == generation)
    {
        Some(known) => known.filter.clone(),
        None => match Filter::of_trigger(&trigger.spec) {
            Ok(filter) => Arc::new(filter),
            Err(error) => {
                // Written Triggers passed the same compile; one written past
                // meshbroker is left out.
                tracing::warn!(trigger = %target.label, %error, "filter does not compile; Trigger skipped");
                return None;
            }
        },
    };
    let (dispatcher, consumer) = match same_object {
        Some(known) => {
            known.dispatcher.retarget(target);
            (known.dispatcher, known.consumer)
        }
        None => (dispatchers.spawn(target, namespace), None),
    };
    let consumer = match (consumer, durable) {
        (Some(consumer), Some(_)) => {
            consumer.refilter(&filter);
            Some(consumer)
        }
        (_, Some((durable, log))) => durable.trigger(
            uid.as_deref().unwrap_or(&target_label),
            Owner {
                kind: "trigger",
                namespace: namespace.to_string(),
                name: trigger.metadata.name.clone().unwrap_or_default(),
            },
            log,
            &dispatcher,
            &filter,
            trigger.replay_from_ms(),
        ),
        (_, None) => None,
    };
    Some(BuiltTrigger {
        name: trigger.metadata.name.clone().unwrap_or_default(),
        label: target_label,
        uid,
        generation,
        resource_version: trigger.metadata.resource_version.clone(),
        filter,
        dispatcher,
        consumer,
    })
}
