//! Building a routing table from the inputs, reusing what did not change:
//! Broker routes (with their Triggers' compiled filters and dispatchers) are
//! kept by `BrokerRoutes` until their Broker or a Trigger of theirs changes;
//! payload validators are compiled once per generation of their Application.
//! Channel and Application routes are few and cheap, and rebuilt each time
//! (Subscriptions walked by Channel). Dispatchers are kept across builds (by
//! object and uid) so queues and connections survive changes; one that is no
//! longer needed is dropped with the old table and drains its queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::brokers::BrokerRoutes;
use super::dispatchers::Dispatchers;
use super::durable::Durable;
use super::inputs::{Inputs, Key, key_of};
use super::running::Consumer;
use super::table::{
    ApplicationRoute, BrokerRoute, ChannelRoute, ChannelSubscriber, ChannelTarget, RoutingTable,
    Schemas,
};
use super::targets;
use crate::mesh::dispatch::{BudgetLimits, DispatchDeps, Dispatcher, DispatcherSettings};
use crate::mesh::log::{LogKind, Owner};
use crate::resources::{Application, Channel, Conditions, PayloadSchema, Subscription};

#[derive(Debug, Clone, Copy)]
pub struct DataplaneSettings {
    pub dispatcher: DispatcherSettings,
    /// What one namespace may have queued or in delivery at once.
    pub namespace_budget: BudgetLimits,
    /// Knative serves Channels, Brokers and Triggers (`--dataplane knative`): the
    /// table only knows where each Application's Channel is.
    pub knative: bool,
}

pub struct Builder {
    knative: bool,
    integration_namespace: String,
    dispatchers: Dispatchers,
    brokers: BrokerRoutes,
    /// HTTP subscribers of Channels by Subscription.
    subscriptions: HashMap<Key, BuiltSubscription>,
    /// Durable delivery: Subscriptions from a Channel to one of our Brokers,
    /// with the Broker each feeds (the embedded log's relay, or JetStream's
    /// wiring of the Broker's Triggers to the Channel's stream).
    relays: HashMap<Key, (Option<String>, Key, Consumer)>,
    /// Durable delivery's logs and consumers; None for memory delivery.
    durable: Option<Durable>,
    /// Compiled payload validators by Application uid, with the generation
    /// they were compiled from.
    schemas: HashMap<String, (Option<i64>, Arc<Schemas>)>,
    /// Each Channel's count of events taken in, kept across rebuilds.
    taken: HashMap<Key, Arc<AtomicU64>>,
}

impl Builder {
    pub fn new(
        settings: DataplaneSettings,
        deps: Arc<DispatchDeps>,
        integration_namespace: String,
    ) -> Self {
        Self {
            knative: settings.knative,
            integration_namespace,
            dispatchers: Dispatchers::new(settings.dispatcher, settings.namespace_budget, deps),
            brokers: BrokerRoutes::default(),
            subscriptions: HashMap::new(),
            relays: HashMap::new(),
            durable: None,
            schemas: HashMap::new(),
            taken: HashMap::new(),
        }
    }

    /// Durable delivery: Brokers and Channels get logs, and routed Triggers and
    /// Subscriptions consumers.
    pub fn with_durable(mut self, durable: Durable) -> Self {
        self.durable = Some(durable);
        self
    }

    pub fn build(&mut self, inputs: &Inputs) -> RoutingTable {
        let live: HashSet<&str> = inputs
            .applications
            .iter()
            .filter_map(|a| a.metadata.uid.as_deref())
            .collect();
        self.schemas.retain(|uid, _| live.contains(uid.as_str()));
        if self.knative {
            return RoutingTable {
                applications: self.applications(inputs, |channel| {
                    let status = channel.status.as_ref()?;
                    let url = status.address.url.as_deref()?;
                    status
                        .is_ready()
                        .then(|| ChannelTarget::Knative(Arc::from(url)))
                }),
                ..RoutingTable::default()
            };
        }
        let brokers = self
            .brokers
            .update(inputs, &mut self.dispatchers, self.durable.as_mut());
        let mut unrouted = HashMap::new();
        let channels = self.channels(inputs, &brokers, &mut unrouted);
        if let Some(durable) = &mut self.durable {
            let logs = brokers.values().filter_map(|b| b.log.as_ref());
            let logs = logs.chain(channels.values().filter_map(|c| c.log.as_ref()));
            durable.sweep(logs.map(|log| log.name().to_string()).collect());
        }
        let applications = self.applications(inputs, |channel| {
            let route = channels.get(&key_of(&channel.metadata))?;
            Some(ChannelTarget::Served(route.clone()))
        });
        self.dispatchers.forget_unused_budgets();
        RoutingTable {
            applications,
            brokers,
            channels,
            unrouted,
        }
    }

    fn channels(
        &mut self,
        inputs: &Inputs,
        brokers: &HashMap<Key, Arc<BrokerRoute>>,
        unrouted: &mut HashMap<Key, String>,
    ) -> HashMap<Key, Arc<ChannelRoute>> {
        // An Application's events reach a namespace only while an instance of it
        // lives there: enforced here, not just by the wiring.
        let provisioned: HashSet<(&str, &str)> = inputs
            .instances
            .iter()
            .filter(|i| i.is_live())
            .map(|i| (i.spec.application.as_str(), i.spec.namespace.as_str()))
            .collect();
        let mut used = HashMap::new();
        let mut relays = HashMap::new();
        let mut routes = HashMap::new();
        let mut taken_now = HashMap::new();
        for channel in inputs.channels.iter() {
            if channel.spec.unsupported_reason().is_some() {
                continue;
            }
            let key = key_of(&channel.metadata);
            // An Application's Channel is the one named after it in the
            // integration namespace (as the Application's route finds it), not
            // whatever carries its label.
            let application = (key.0 == self.integration_namespace
                && inputs.applications.get(&application_key(&key.1)).is_some())
            .then(|| key.1.clone());
            let log = self
                .durable
                .as_mut()
                .and_then(|durable| durable.log(LogKind::Channel, &key.0, &key.1));
            let mut subscribers = Vec::new();
            for subscription in inputs.subscriptions.group(&key) {
                let subscription_key = key_of(&subscription.metadata);
                let uid = subscription.metadata.uid.clone();
                match broker_of(subscription, application.as_deref(), &provisioned) {
                    Some(Ok(broker_key)) => {
                        let Some(broker) = brokers.get(&broker_key) else {
                            continue;
                        };
                        subscribers.push(ChannelSubscriber::Broker(broker.clone()));
                        let (Some(durable), Some(from), Some(to)) =
                            (self.durable.as_mut(), &log, &broker.log)
                        else {
                            continue;
                        };
                        let relay = match self.relays.remove(&subscription_key) {
                            Some(known) if known.0 == uid && known.1 == broker_key => known,
                            replaced => {
                                // The old relay stops before the new one
                                // opens the same cursor.
                                drop(replaced);
                                let name = uid.as_deref().unwrap_or(&subscription_key.1);
                                let owner = subscription_owner(&subscription_key);
                                let Some(relay) = durable.channel_to_broker(name, owner, from, to)
                                else {
                                    continue;
                                };
                                (uid, broker_key, relay)
                            }
                        };
                        relays.insert(subscription_key, relay);
                    }
                    Some(Err(why)) => {
                        unrouted.insert(subscription_key, why);
                    }
                    None => {
                        let Some(target) = targets::of_subscription(subscription, channel) else {
                            continue;
                        };
                        let built = match self.subscriptions.remove(&subscription_key) {
                            Some(known) if known.uid == uid => {
                                known.dispatcher.retarget(target);
                                known
                            }
                            _ => {
                                let dispatcher =
                                    self.dispatchers.spawn(target, &subscription_key.0);
                                let consumer = self.durable.as_mut().zip(log.as_ref()).and_then(
                                    |(durable, log)| {
                                        let name = uid.as_deref().unwrap_or(&subscription_key.1);
                                        let owner = subscription_owner(&subscription_key);
                                        durable.subscription(name, owner, log, &dispatcher)
                                    },
                                );
                                BuiltSubscription {
                                    uid,
                                    dispatcher,
                                    _consumer: consumer,
                                }
                            }
                        };
                        subscribers.push(ChannelSubscriber::Http(built.dispatcher.clone()));
                        used.insert(subscription_key, built);
                    }
                }
            }
            let taken = self.taken.remove(&key).unwrap_or_default();
            taken_now.insert(key.clone(), taken.clone());
            let route = ChannelRoute {
                namespace: key.0.clone(),
                name: key.1.clone(),
                application,
                subscribers,
                log,
                taken,
            };
            routes.insert(key, Arc::new(route));
        }
        self.taken = taken_now;
        // Dispatchers of Subscriptions no longer routed go (and drain), and
        // so do their consumers.
        self.subscriptions = used;
        self.relays = relays;
        routes
    }

    /// The payload validators of an Application, compiled once per generation of
    /// it (not on every rebuild: compiling is costly, and so is the memory of
    /// compiling again and again). Written Applications passed the same compile
    /// (src/resources/application.rs); one that did not (written past
    /// meshbroker) is logged and its events go unchecked.
    fn schemas_of(&mut self, application: &Application) -> Arc<Schemas> {
        let uid = application.metadata.uid.clone().unwrap_or_default();
        let generation = application.metadata.generation;
        if let Some((known, schemas)) = self.schemas.get(&uid)
            && *known == generation
        {
            return schemas.clone();
        }
        let name = application.metadata.name.as_deref().unwrap_or_default();
        let mut schemas = Schemas::new();
        for service in &application.spec.services {
            for event_type in service.event_types() {
                let Some(schema) = &event_type.payload_schema else {
                    continue;
                };
                match PayloadSchema::compile(schema) {
                    Ok(compiled) => {
                        schemas.insert(
                            (event_type.name.clone(), event_type.version.clone()),
                            Arc::new(compiled),
                        );
                    }
                    Err(error) => {
                        tracing::warn!(application = %name, event_type = %event_type.name, %error,
                            "payload schema does not compile; events of this type are not checked")
                    }
                }
            }
        }
        let schemas = Arc::new(schemas);
        self.schemas.insert(uid, (generation, schemas.clone()));
        schemas
    }

    /// Each Application with its Channel's target (`target` of the Channel object
    /// in the integration namespace, once the Application is ready).
    fn applications(
        &mut self,
        inputs: &Inputs,
        target: impl Fn(&Channel) -> Option<ChannelTarget>,
    ) -> HashMap<String, Arc<ApplicationRoute>> {
        let mut routes = HashMap::new();
        for application in inputs.applications.iter() {
            let (_, name) = key_of(&application.metadata);
            let ready = application.status.as_ref().is_some_and(|s| s.is_ready());
            let channel = inputs
                .channels
                .get(&(self.integration_namespace.clone(), name.clone()))
                .filter(|_| ready)
                .and_then(&target);
            let schemas = self.schemas_of(application);
            routes.insert(
                name.clone(),
                Arc::new(ApplicationRoute {
                    uid: application.metadata.uid.clone().unwrap_or_default(),
                    name,
                    channel,
                    schemas,
                }),
            );
        }
        routes
    }
}

/// A Channel's HTTP subscriber, kept across builds while its uid is the same.
struct BuiltSubscription {
    uid: Option<String>,
    dispatcher: Arc<Dispatcher>,
    /// Durable delivery: what reads the Channel's log for it.
    _consumer: Option<Consumer>,
}

/// Applications are cluster-scoped: no namespace.
fn application_key(name: &str) -> Key {
    (String::new(), name.to_string())
}

/// Where a Subscription of a Channel hands events to one of our Brokers (a
/// plain reference to a Broker): Some(Ok(the Broker)), or Some(Err(why not))
/// when it must not; None for a Subscription delivering over HTTP.
fn broker_of(
    subscription: &Subscription,
    application: Option<&str>,
    provisioned: &HashSet<(&str, &str)>,
) -> Option<Result<Key, String>> {
    let subscriber = &subscription.spec.subscriber;
    let reference = subscriber
        .reference
        .as_ref()
        .filter(|r| r.kind == "Broker" && subscriber.uri.is_none())?;
    let namespace = subscription
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default();
    let broker_namespace = reference.namespace.as_deref().unwrap_or(namespace);
    let verdict = match application {
        Some(application) if !provisioned.contains(&(application, broker_namespace)) => {
            Err(format!(
                "no live instance of Application {application} in namespace {broker_namespace}: its events reach only namespaces that provisioned it"
            ))
        }
        Some(_) => Ok(()),
        // Only what meshbroker wires crosses namespaces.
        None if broker_namespace != namespace => Err(format!(
            "a Subscription of namespace {namespace} delivers only into its own namespace, not into {broker_namespace}"
        )),
        None => Ok(()),
    };
    Some(verdict.map(|()| (broker_namespace.to_string(), reference.name.clone())))
}

/// A small builder for unit tests: queues of 8, one worker each.
#[cfg(test)]
impl Builder {
    pub(crate) fn for_tests() -> Self {
        let settings = DataplaneSettings {
            dispatcher: crate::mesh::dispatch::DispatcherSettings {
                queue_capacity: 8,
                queue_bytes: usize::MAX,
                concurrency: 1,
            },
            namespace_budget: BudgetLimits {
                events: 8,
                bytes: usize::MAX,
            },
            knative: false,
        };
        Self::new(
            settings,
            crate::mesh::dispatch::testing::deps(),
            "kyma-integration".into(),
        )
    }
}

#[cfg(test)]
mod tests;

fn subscription_owner(key: &Key) -> Owner {
    Owner {
        kind: "subscription",
        namespace: key.0.clone(),
        name: key.1.clone(),
    }
}
