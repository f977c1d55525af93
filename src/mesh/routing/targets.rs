//! The `Target` of a Trigger's or a Subscription's dispatcher: where it
//! delivers, with which policy, and where replies and dead letters go — in
//! process when that is one of our own Brokers or Channels.

use crate::mesh::dispatch::{DeliveryPolicy, Local, ReplyTo, Target};
use crate::mesh::tap::TapPoint;
use crate::resources::{
    Broker, Channel, DeliveryFormat, DeliverySpec, Destination, Subscription, Trigger,
};

/// A Trigger of `broker`, once the status controller resolved its subscriber
/// (until then it has nowhere to deliver).
pub fn of_trigger(trigger: &Trigger, broker: &Broker) -> Option<Target> {
    let status = trigger.status.as_ref()?;
    let subscriber = status.subscriber_uri.clone()?;
    let namespace = trigger.metadata.namespace.as_deref().unwrap_or_default();
    let name = trigger.metadata.name.as_deref().unwrap_or_default();
    // A Trigger's own delivery, else its Broker's; the status controller
    // resolved the effective dead-letter sink alike.
    let delivery = trigger
        .spec
        .delivery
        .as_ref()
        .or(broker.spec.delivery.as_ref());
    Some(Target {
        label: format!("{namespace}/{name}"),
        subscriber,
        local: local_of(&trigger.spec.subscriber, namespace),
        dead_letter_local: dead_letter_local(delivery, namespace),
        policy: DeliveryPolicy::from_spec(delivery, status.dead_letter_sink_uri.clone()),
        structured: is_structured(delivery),
        reply_to: Some(reply_to_broker(trigger, broker)),
        tap: Some(TapPoint {
            namespace: namespace.to_string(),
            broker: trigger.spec.broker.clone(),
            trigger: name.to_string(),
        }),
    })
}

/// A Subscription to `channel` delivering over HTTP, once the status
/// controller resolved its subscriber.
pub fn of_subscription(subscription: &Subscription, channel: &Channel) -> Option<Target> {
    let resolved = &subscription.status.as_ref()?.physical_subscription;
    let subscriber = resolved.subscriber_uri.clone()?;
    let namespace = subscription
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default();
    let name = subscription.metadata.name.as_deref().unwrap_or_default();
    // Replies go to `spec.reply`: in process when it is one of ours, else to
    // the URI the status controller resolved it to.
    let reply_to =
        subscription
            .spec
            .reply
            .as_ref()
            .and_then(|reply| match local_of(reply, namespace) {
                Some(to) => Some(ReplyTo::Local {
                    address: resolved.reply_uri.clone().unwrap_or_else(|| to.to_string()),
                    to,
                }),
                None => resolved.reply_uri.clone().map(ReplyTo::Url),
            });
    // The Channel's delivery is the default of its Subscriptions; the status
    // controller resolved the effective dead-letter sink alike.
    let delivery = subscription
        .spec
        .delivery
        .as_ref()
        .or(channel.spec.delivery.as_ref());
    Some(Target {
        label: format!("{namespace}/{name}"),
        subscriber,
        local: local_of(&subscription.spec.subscriber, namespace),
        dead_letter_local: dead_letter_local(delivery, namespace),
        policy: DeliveryPolicy::from_spec(delivery, resolved.dead_letter_sink_uri.clone()),
        structured: is_structured(delivery),
        reply_to,
        tap: None,
    })
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
    let group = reference
        .api_version
        .split_once('/')
        .map_or(reference.api_version.as_str(), |(group, _)| group);
    let (namespace, name) = (namespace.to_string(), reference.name.clone());
    match (reference.kind.as_str(), group) {
        ("Broker", "eventing.knative.dev") => Some(Local::Broker { namespace, name }),
        ("Channel", "messaging.knative.dev") => Some(Local::Channel { namespace, name }),
        _ => None,
    }
}

/// A Trigger's replies go back into its Broker, named by its address once
/// written (a Broker is routed before it has one).
fn reply_to_broker(trigger: &Trigger, broker: &Broker) -> ReplyTo {
    let to = Local::Broker {
        namespace: trigger.metadata.namespace.clone().unwrap_or_default(),
        name: trigger.spec.broker.clone(),
    };
    let url = broker.status.as_ref().and_then(|s| s.address.url.clone());
    ReplyTo::Local {
        address: url.unwrap_or_else(|| to.to_string()),
        to,
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
    use crate::resources::KReference;

    fn reference(kind: &str, api_version: &str, namespace: Option<&str>) -> Destination {
        Destination {
            reference: Some(KReference {
                api_version: api_version.into(),
                kind: kind.into(),
                name: "default".into(),
                namespace: namespace.map(str::to_string),
            }),
            uri: None,
            ..Default::default()
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
