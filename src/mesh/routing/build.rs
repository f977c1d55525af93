//! Building a routing table from the resources. Dispatchers are kept across
//! builds (by object and uid) so queues and connections survive changes; one that
//! is no longer needed is dropped with the old table and drains its queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::table::{
    ApplicationRoute, BrokerRoute, ChannelRoute, ChannelSubscriber, ChannelTarget, RoutingTable,
    Schemas,
};
use crate::mesh::dispatch::{
    Budget, DeliveryPolicy, DispatchDeps, Dispatcher, DispatcherSettings, Local, ReplyTo, Target,
};
use crate::mesh::filter::{Entry, Filter, TriggerIndex};
use crate::resources::{
    Application, Broker, Channel, Conditions, DeliveryFormat, DeliverySpec, Destination,
    ServiceInstance, Subscription, Trigger,
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
    /// Compiled payload validators by Application uid, with the generation
    /// they were compiled from.
    schemas: HashMap<String, (Option<i64>, Arc<Schemas>)>,
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
            schemas: HashMap::new(),
        }
    }

    pub fn build(&mut self, inputs: &Inputs) -> RoutingTable {
        let live: HashSet<&str> = inputs
            .applications
            .iter()
            .filter_map(|a| a.metadata.uid.as_deref())
            .collect();
        self.schemas.retain(|uid, _| live.contains(uid.as_str()));
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
        let mut unrouted = HashMap::new();
        let channels = self.channels(inputs, &brokers, &mut used, &mut unrouted);
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
            unrouted,
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
                    local: local_of(&trigger.spec.subscriber, &trigger_ns),
                    dead_letter_local: dead_letter_local(delivery, &trigger_ns),
                    policy: DeliveryPolicy::from_spec(
                        delivery,
                        status.dead_letter_sink_uri.clone(),
                    ),
                    structured: is_structured(delivery),
                    reply_to: Some(ReplyTo::Local(Local::Broker {
                        namespace: namespace.clone(),
                        name: name.clone(),
                    })),
                };
                let uid = trigger.metadata.uid.clone().unwrap_or_default();
                let key = format!("trigger/{trigger_ns}/{trigger_name}");
                entries.push(Entry {
                    trigger: format!("{trigger_ns}/{trigger_name}"),
                    filter,
                    value: self.dispatcher(key, &uid, &namespace, target, used),
                });
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
        unrouted: &mut HashMap<(String, String), String>,
    ) -> HashMap<(String, String), Arc<ChannelRoute>> {
        // An Application's events reach a namespace only while an instance of it
        // lives there: enforced here, not just by the wiring.
        let provisioned: HashSet<(&str, &str)> = inputs
            .instances
            .iter()
            .filter(|i| i.is_live())
            .map(|i| (i.spec.application.as_str(), i.spec.namespace.as_str()))
            .collect();
        let applications: HashSet<&str> = inputs
            .applications
            .iter()
            .filter_map(|a| a.metadata.name.as_deref())
            .collect();
        let mut routes = HashMap::new();
        for channel in &inputs.channels {
            if channel.spec.unsupported_reason().is_some() {
                continue;
            }
            let (namespace, name) = name_of(&channel.metadata);
            // An Application's Channel is the one named after it in the
            // integration namespace (as the Application's route finds it), not
            // whatever carries its label.
            let application = (namespace == self.integration_namespace
                && applications.contains(name.as_str()))
            .then_some(&name);
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
                    let wired_by_meshbroker = application.is_some();
                    if let Some(application) = application
                        && !provisioned.contains(&(application.as_str(), broker_ns.as_str()))
                    {
                        unrouted.insert(
                            (sub_ns, sub_name),
                            format!("no live instance of Application {application} in namespace {broker_ns}: its events reach only namespaces that provisioned it"),
                        );
                        continue;
                    }
                    // Only what meshbroker wires crosses namespaces.
                    if !wired_by_meshbroker && broker_ns != sub_ns {
                        unrouted.insert(
                            (sub_ns.clone(), sub_name),
                            format!("a Subscription of namespace {sub_ns} delivers only into its own namespace, not into {broker_ns}"),
                        );
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
                // Replies go to `spec.reply`: in process when it is one of ours,
                // else to the URI the status controller resolved it to.
                let reply_to = subscription.spec.reply.as_ref().and_then(|reply| {
                    match local_of(reply, &sub_ns) {
                        Some(local) => Some(ReplyTo::Local(local)),
                        None => status
                            .physical_subscription
                            .reply_uri
                            .clone()
                            .map(ReplyTo::Url),
                    }
                });
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
                    local: local_of(&subscription.spec.subscriber, &sub_ns),
                    dead_letter_local: dead_letter_local(delivery, &sub_ns),
                    policy: DeliveryPolicy::from_spec(
                        delivery,
                        status.physical_subscription.dead_letter_sink_uri.clone(),
                    ),
                    structured: is_structured(delivery),
                    reply_to,
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
            let schemas = self.schemas_of(application);
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

/// A destination that is one of our own Brokers or Channels in `namespace` (a
/// plain reference, no relative URI): handed over in process. A reference into
/// another namespace is not: a namespace's objects deliver only into their own.
fn local_of(destination: &Destination, namespace: &str) -> Option<Local> {
    let reference = destination.reference.as_ref()?;
    if destination.uri.is_some()
        || reference
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != namespace)
    {
        return None;
    }
    let group = reference.api_version.split('/').next().unwrap_or_default();
    let (namespace, name) = (namespace.to_string(), reference.name.clone());
    match (reference.kind.as_str(), group) {
        ("Broker", "eventing.knative.dev") => Some(Local::Broker { namespace, name }),
        ("Channel", "messaging.knative.dev") => Some(Local::Channel { namespace, name }),
        _ => None,
    }
}

fn dead_letter_local(delivery: Option<&DeliverySpec>, namespace: &str) -> Option<Local> {
    local_of(delivery?.dead_letter_sink.as_ref()?, namespace)
}

fn is_structured(delivery: Option<&DeliverySpec>) -> bool {
    delivery.and_then(|d| d.format) == Some(DeliveryFormat::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::dispatch::testing;
    use crate::resources::KReference;

    fn builder() -> Builder {
        let settings = DataplaneSettings {
            dispatcher: DispatcherSettings {
                queue_capacity: 8,
                concurrency: 1,
            },
            namespace_budget: 8,
            knative: false,
        };
        Builder::new(settings, testing::deps(), "kyma-integration".into())
    }

    fn application(generation: i64) -> Application {
        let mut application: Application = serde_json::from_value(serde_json::json!({
            "apiVersion": "applicationconnector.kyma-project.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "commerce", "uid": "u1", "generation": generation},
            "spec": {"services": [{"id": "s", "displayName": "S", "entries": [{"type": "Events",
                "specification": {"channels": {"order.created.v1": {"subscribe": {"message":
                    {"payload": {"type": "object"}}}}}}}]}]}
        }))
        .expect("an Application");
        application.metadata.generation = Some(generation);
        application
    }

    fn inputs(applications: Vec<Application>) -> Inputs {
        Inputs {
            applications,
            channels: Vec::new(),
            subscriptions: Vec::new(),
            brokers: Vec::new(),
            triggers: Vec::new(),
            instances: Vec::new(),
        }
    }

    #[tokio::test]
    async fn payload_schemas_are_compiled_once_per_generation_and_forgotten_with_the_application() {
        let mut builder = builder();
        let schemas = |table: &RoutingTable| table.applications["commerce"].schemas.clone();
        let first = schemas(&builder.build(&inputs(vec![application(1)])));
        assert_eq!(first.len(), 1);
        let again = schemas(&builder.build(&inputs(vec![application(1)])));
        assert!(
            Arc::ptr_eq(&first, &again),
            "a rebuild reuses the compiled schemas"
        );
        let changed = schemas(&builder.build(&inputs(vec![application(2)])));
        assert!(
            !Arc::ptr_eq(&first, &changed),
            "a new generation compiles again"
        );
        builder.build(&inputs(Vec::new()));
        assert!(
            builder.schemas.is_empty(),
            "a deleted Application's schemas go"
        );
    }

    fn reference(kind: &str, api_version: &str, namespace: Option<&str>) -> Destination {
        Destination {
            reference: Some(KReference {
                api_version: api_version.into(),
                kind: kind.into(),
                name: "default".into(),
                namespace: namespace.map(str::to_string),
            }),
            uri: None,
        }
    }

    #[test]
    fn only_our_own_brokers_and_channels_in_the_same_namespace_are_handed_over_in_process() {
        let broker = reference("Broker", "eventing.knative.dev/v1", None);
        assert_eq!(
            local_of(&broker, "team-a"),
            Some(Local::Broker {
                namespace: "team-a".into(),
                name: "default".into()
            })
        );
        let same = reference("Channel", "messaging.knative.dev/v1", Some("team-a"));
        assert!(matches!(
            local_of(&same, "team-a"),
            Some(Local::Channel { .. })
        ));
        for other in [
            reference("Broker", "eventing.knative.dev/v1", Some("team-b")),
            reference("Service", "v1", None),
            reference("Broker", "example.com/v1", None),
        ] {
            assert_eq!(local_of(&other, "team-a"), None, "{other:?}");
        }
        let mut relative = broker;
        relative.uri = Some("/extra".into());
        assert_eq!(
            local_of(&relative, "team-a"),
            None,
            "a relative uri means HTTP"
        );
    }
}
