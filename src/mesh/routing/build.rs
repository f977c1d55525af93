//! Building a routing table from the resources. Dispatchers are kept across
//! builds (by object and uid) so queues and connections survive changes; one that
//! is no longer needed is dropped with the old table and drains its queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::table::{
    ApplicationRoute, BrokerRoute, ChannelRoute, ChannelSubscriber, ChannelTarget, RoutingTable,
};
use crate::mesh::dispatch::{
    Budget, DeliveryPolicy, DispatchDeps, Dispatcher, DispatcherSettings, Target,
};
use crate::mesh::filter::{Filter, TriggerIndex};
use crate::resources::{
    Application, Broker, Channel, Conditions, DeliveryFormat, DeliverySpec, ServiceInstance,
    Subscription, Trigger, labels,
};

/// Everything a build reads, listed from the store in one go.
pub struct Inputs {
    pub applications: Vec<Application>,
    pub channels: Vec<Channel>,
    pub subscriptions: Vec<Subscription>,
    pub brokers: Vec<Broker>,
    pub triggers: Vec<Trigger>,
    pub instances: Vec<ServiceInstance>,
}

#[derive(Debug, Clone, Copy)]
pub struct DataplaneSettings {
    pub dispatcher: DispatcherSettings,
    /// Events one namespace may have queued or in delivery at once.
    pub namespace_budget: usize,
    /// Knative serves Channels, Brokers and Triggers (`--dataplane knative`): the
    /// table only knows where each Application's Channel is.
    pub knative: bool,
}

pub struct Builder {
    settings: DataplaneSettings,
    deps: Arc<DispatchDeps>,
    integration_namespace: String,
    dispatchers: HashMap<String, (String, Arc<Dispatcher>)>,
    budgets: HashMap<String, Arc<Budget>>,
}

fn name_of(meta: &kube::core::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl Builder {
    pub fn new(
        settings: DataplaneSettings,
        deps: Arc<DispatchDeps>,
        integration_namespace: String,
    ) -> Self {
        Self {
            settings,
            deps,
            integration_namespace,
            dispatchers: HashMap::new(),
            budgets: HashMap::new(),
        }
    }

    pub fn build(&mut self, inputs: &Inputs) -> RoutingTable {
        if self.settings.knative {
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
        let mut used = HashSet::new();
        let brokers = self.brokers(inputs, &mut used);
        let channels = self.channels(inputs, &brokers, &mut used);
        let applications = self.applications(inputs, |channel| {
            let (namespace, name) = name_of(&channel.metadata);
            let route = channels.get(&(namespace, name))?;
            Some(ChannelTarget::Served(route.clone()))
        });
        self.dispatchers.retain(|key, _| used.contains(key));
        // A budget lives as long as a dispatcher of its namespace holds it.
        self.budgets
            .retain(|_, budget| Arc::strong_count(budget) > 1);
        RoutingTable {
            applications,
            brokers,
            channels,
        }
    }

    fn budget(&mut self, namespace: &str) -> Arc<Budget> {
        let limit = self.settings.namespace_budget;
        self.budgets
            .entry(namespace.to_string())
            .or_insert_with(|| Budget::new(limit))
            .clone()
    }

    /// The dispatcher for `key`, reused when the object (uid) is the same.
    fn dispatcher(
        &mut self,
        key: String,
        uid: &str,
        namespace: &str,
        target: Target,
        used: &mut HashSet<String>,
    ) -> Arc<Dispatcher> {
        used.insert(key.clone());
        if let Some((known_uid, dispatcher)) = self.dispatchers.get(&key)
            && known_uid == uid
        {
            dispatcher.retarget(target);
            return dispatcher.clone();
        }
        let budget = self.budget(namespace);
        let dispatcher =
            Dispatcher::spawn(target, self.settings.dispatcher, budget, self.deps.clone());
        self.dispatchers
            .insert(key, (uid.to_string(), dispatcher.clone()));
        dispatcher
    }

    fn brokers(
        &mut self,
        inputs: &Inputs,
        used: &mut HashSet<String>,
    ) -> HashMap<(String, String), Arc<BrokerRoute>> {
        let mut routes = HashMap::new();
        for broker in &inputs.brokers {
            let (namespace, name) = name_of(&broker.metadata);
            let mut entries = Vec::new();
            for trigger in &inputs.triggers {
                let (trigger_ns, trigger_name) = name_of(&trigger.metadata);
                if trigger_ns != namespace || trigger.spec.broker != name {
                    continue;
                }
                let status = trigger.status.clone().unwrap_or_default();
                // The status controller resolves the subscriber; until then the
                // Trigger has nowhere to deliver.
                let Some(subscriber) = status.subscriber_uri.clone() else {
                    continue;
                };
                let filter = match Filter::of_trigger(&trigger.spec) {
                    Ok(filter) => filter,
                    Err(error) => {
                        tracing::warn!(trigger = %format!("{trigger_ns}/{trigger_name}"), %error, "filter does not compile; Trigger skipped");
                        continue;
                    }
                };
                let delivery = trigger
                    .spec
                    .delivery
                    .as_ref()
                    .or(broker.spec.delivery.as_ref());
                let target = Target {
                    label: format!("{trigger_ns}/{trigger_name}"),
                    subscriber,
                    policy: DeliveryPolicy::from_spec(
                        delivery,
                        status.dead_letter_sink_uri.clone(),
                    ),
                    structured: is_structured(delivery),
                    reply_to: Some((namespace.clone(), name.clone())),
                };
                let uid = trigger.metadata.uid.clone().unwrap_or_default();
                let key = format!("trigger/{trigger_ns}/{trigger_name}");
                entries.push((filter, self.dispatcher(key, &uid, &namespace, target, used)));
            }
            let route = BrokerRoute {
                namespace: namespace.clone(),
                name: name.clone(),
                triggers: TriggerIndex::new(entries),
            };
            routes.insert((namespace, name), Arc::new(route));
        }
        routes
    }

    fn channels(
        &mut self,
        inputs: &Inputs,
        brokers: &HashMap<(String, String), Arc<BrokerRoute>>,
        used: &mut HashSet<String>,
    ) -> HashMap<(String, String), Arc<ChannelRoute>> {
        // An Application's events reach a namespace only while an instance of it
        // lives there: enforced here, not just by the wiring.
        let provisioned: HashSet<(&str, &str)> = inputs
            .instances
            .iter()
            .filter(|i| i.is_live())
            .map(|i| (i.spec.application.as_str(), i.spec.namespace.as_str()))
            .collect();
        let mut routes = HashMap::new();
        for channel in &inputs.channels {
            if channel.spec.unsupported_reason().is_some() {
                continue;
            }
            let (namespace, name) = name_of(&channel.metadata);
            let application = channel
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::APPLICATION_NAME));
            let mut subscribers = Vec::new();
            for subscription in &inputs.subscriptions {
                let (sub_ns, sub_name) = name_of(&subscription.metadata);
                if sub_ns != namespace || subscription.spec.channel.name != name {
                    continue;
                }
                let reference = subscription.spec.subscriber.reference.as_ref();
                if let Some(reference) = reference
                    .filter(|r| r.kind == "Broker" && subscription.spec.subscriber.uri.is_none())
                {
                    let broker_ns = reference
                        .namespace
                        .clone()
                        .unwrap_or_else(|| sub_ns.clone());
                    if let Some(application) = application
                        && namespace == self.integration_namespace
                        && !provisioned.contains(&(application.as_str(), broker_ns.as_str()))
                    {
                        tracing::debug!(subscription = %format!("{sub_ns}/{sub_name}"), "no instance of the Application in the target namespace; not routed");
                        continue;
                    }
                    if let Some(broker) = brokers.get(&(broker_ns, reference.name.clone())) {
                        subscribers.push(ChannelSubscriber::Broker(broker.clone()));
                    }
                    continue;
                }
                let status = subscription.status.clone().unwrap_or_default();
                let Some(subscriber) = status.physical_subscription.subscriber_uri.clone() else {
                    continue;
                };
                // The Channel's delivery is the default of its Subscriptions; the
                // status controller resolved the effective dead-letter sink alike.
                let delivery = subscription
                    .spec
                    .delivery
                    .as_ref()
                    .or(channel.spec.delivery.as_ref());
                let target = Target {
                    label: format!("{sub_ns}/{sub_name}"),
                    subscriber,
                    policy: DeliveryPolicy::from_spec(
                        delivery,
                        status.physical_subscription.dead_letter_sink_uri.clone(),
                    ),
                    structured: is_structured(delivery),
                    reply_to: None,
                };
                let uid = subscription.metadata.uid.clone().unwrap_or_default();
                let key = format!("subscription/{sub_ns}/{sub_name}");
                subscribers.push(ChannelSubscriber::Http(
                    self.dispatcher(key, &uid, &sub_ns, target, used),
                ));
            }
            let route = ChannelRoute {
                namespace: namespace.clone(),
                name: name.clone(),
                application: application.cloned(),
                subscribers,
            };
            routes.insert((namespace, name), Arc::new(route));
        }
        routes
    }

    /// Each Application with its Channel's target (`target` of the Channel object
    /// in the integration namespace, once the Application is ready).
    fn applications(
        &self,
        inputs: &Inputs,
        target: impl Fn(&Channel) -> Option<ChannelTarget>,
    ) -> HashMap<String, Arc<ApplicationRoute>> {
        let mut routes = HashMap::new();
        for application in &inputs.applications {
            let name = application.metadata.name.clone().unwrap_or_default();
            let ready = application.status.as_ref().is_some_and(|s| s.is_ready());
            let channel = inputs
                .channels
                .iter()
                .filter(|_| ready)
                .find(|c| {
                    c.metadata.name.as_deref() == Some(name.as_str())
                        && c.metadata.namespace.as_deref()
                            == Some(self.integration_namespace.as_str())
                })
                .and_then(&target);
            let mut schemas = HashMap::new();
            for service in &application.spec.services {
                for event_type in service.event_types() {
                    let Some(schema) = &event_type.payload_schema else {
                        continue;
                    };
                    match jsonschema::validator_for(schema) {
                        Ok(validator) => {
                            schemas.insert(
                                (event_type.name.clone(), event_type.version.clone()),
                                Arc::new(validator),
                            );
                        }
                        Err(error) => {
                            tracing::warn!(application = %name, event_type = %event_type.name, %error,
                            "payload schema does not compile; events of this type are not checked")
                        }
                    }
                }
            }
            routes.insert(
                name.clone(),
                Arc::new(ApplicationRoute {
                    name,
                    channel,
                    schemas,
                }),
            );
        }
        routes
    }
}

fn is_structured(delivery: Option<&DeliverySpec>) -> bool {
    delivery.and_then(|d| d.format) == Some(DeliveryFormat::Json)
}
