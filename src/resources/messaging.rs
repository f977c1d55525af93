//! `messaging.knative.dev/v1`: the Application's Channel and the Subscriptions that
//! carry it to namespaces' Brokers.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    AddressableStatus, Condition, Conditions, DeliverySpec, Destination, Invalid, KReference,
};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "messaging.knative.dev",
    version = "v1",
    kind = "Channel",
    namespaced,
    status = "ChannelStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct ChannelSpec {
    /// The channel implementation; meshbroker serves `InMemoryChannel`-style
    /// channels itself and leaves any other kind not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_template: Option<ChannelTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    /// The Channel's Subscriptions, filled in by meshbroker (Knative: "this
    /// array MUST be managed automatically by the controller"); what a
    /// writer puts here is replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberSpec>,
}

/// One Subscription as its Channel's `spec.subscribers` lists it (Knative's
/// duck `SubscriberSpec`): resolved addresses and delivery options.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberSpec {
    pub uid: String,
    /// The Subscription's generation this entry is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_uri: Option<String>,
    /// The Subscription's own delivery options, its dead-letter sink as the
    /// URI it resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

impl SubscriberSpec {
    pub fn of(subscription: &Subscription) -> Self {
        let physical = subscription
            .status
            .as_ref()
            .map(|s| s.physical_subscription.clone())
            .unwrap_or_default();
        let delivery = subscription.spec.delivery.clone().map(|mut delivery| {
            if delivery.dead_letter_sink.is_some() {
                delivery.dead_letter_sink =
                    physical
                        .dead_letter_sink_uri
                        .clone()
                        .map(|uri| Destination {
                            reference: None,
                            uri: Some(uri),
                            ..Default::default()
                        });
            }
            delivery
        });
        Self {
            uid: subscription.metadata.uid.clone().unwrap_or_default(),
            generation: subscription.metadata.generation,
            subscriber_uri: physical.subscriber_uri,
            reply_uri: physical.reply_uri,
            delivery,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTemplate {
    #[serde(default)]
    pub api_version: String,
    pub kind: String,
    /// The implementation's own settings (Knative's `RawExtension`): kept, and
    /// immutable with the rest of the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::application::free_form_object")]
    pub spec: Option<serde_json::Value>,
}

/// The channel kinds the embedded dataplane serves, all of this API group.
pub const SERVED_CHANNEL_KINDS: &[&str] = &["InMemoryChannel", "MeshChannel"];
const CHANNEL_API_VERSION: &str = "messaging.knative.dev/v1";

impl ChannelTemplate {
    /// What a Channel written without a template gets (Knative RECOMMENDS
    /// defaulting it on creation): the in-memory kind, which meshbroker serves.
    fn served_default() -> Self {
        Self {
            api_version: CHANNEL_API_VERSION.to_string(),
            kind: SERVED_CHANNEL_KINDS[0].to_string(),
            spec: None,
        }
    }
}

impl ChannelSpec {
    /// A Channel's spec with the default template.
    pub fn served() -> Self {
        Self {
            channel_template: Some(ChannelTemplate::served_default()),
            delivery: None,
            subscribers: Vec::new(),
        }
    }

    /// Why the embedded dataplane cannot serve this Channel, if it cannot.
    pub fn unsupported_reason(&self) -> Option<String> {
        let template = self.channel_template.as_ref()?;
        let served = SERVED_CHANNEL_KINDS.contains(&template.kind.as_str())
            && (template.api_version.is_empty() || template.api_version == CHANNEL_API_VERSION);
        (!served).then(|| {
            format!(
                "channel kind {} ({}) is not served by the embedded dataplane (served: {} of {CHANNEL_API_VERSION})",
                template.kind,
                template.api_version,
                SERVED_CHANNEL_KINDS.join(", ")
            )
        })
    }
}

/// Knative's Channel status: `address`, `conditions`, `deadLetterSinkUri`.
pub type ChannelStatus = AddressableStatus;

impl Channel {
    /// A Channel written without `spec.channelTemplate` (absent or null) gets
    /// the default one, on creation and on replace alike, as Knative's webhook
    /// does; a non-object `spec` is left for validation to refuse.
    pub fn default_template(object: &mut Value) {
        let Some(fields) = object.as_object_mut() else {
            return;
        };
        let spec = fields
            .entry("spec")
            .or_insert_with(|| Value::Object(Default::default()));
        if spec.is_null() {
            *spec = Value::Object(Default::default());
        }
        let Some(spec) = spec.as_object_mut() else {
            return;
        };
        if spec.get("channelTemplate").is_none_or(Value::is_null) {
            let template = serde_json::json!({
                "apiVersion": CHANNEL_API_VERSION,
                "kind": SERVED_CHANNEL_KINDS[0],
            });
            spec.insert("channelTemplate".to_string(), template);
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(template) = &self.spec.channel_template
            && template.kind.is_empty()
        {
            return Err(Invalid::new(
                "spec.channelTemplate.kind",
                "must not be empty",
            ));
        }
        if let Some(delivery) = &self.spec.delivery {
            delivery.validate().map_err(|e| e.within("spec.delivery"))?;
        }
        Ok(())
    }

    /// "Once created, the `spec.channelTemplate` field MUST be immutable; the
    /// Channel MUST be deleted and re-created to change" it (Knative's control
    /// plane): moving a Channel between implementations is not atomic.
    /// A Channel stored before templates were defaulted may get the default one.
    pub fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        let defaulted = old.spec.channel_template.is_none()
            && self.spec.channel_template == Some(ChannelTemplate::served_default());
        if self.spec.channel_template != old.spec.channel_template && !defaulted {
            return Err(Invalid::immutable("spec.channelTemplate"));
        }
        Ok(())
    }
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "messaging.knative.dev",
    version = "v1",
    kind = "Subscription",
    namespaced,
    status = "SubscriptionStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    pub channel: KReference,
    pub subscriber: Destination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub physical_subscription: PhysicalSubscription,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The resolved addresses the dataplane delivers to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalSubscription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
}

impl Conditions for SubscriptionStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl Subscription {
    /// The Channel this Subscription is of, when `spec.channel` names a kind
    /// meshbroker serves (`messaging.knative.dev/v1` Channel): a Subscription is
    /// associated with a Channel by the whole reference, not by its name alone.
    pub fn channel_name(&self) -> Option<&str> {
        let channel = &self.spec.channel;
        (channel.api_version == CHANNEL_API_VERSION && channel.kind == "Channel")
            .then_some(channel.name.as_str())
    }

    /// Why `spec.channel` can name no Channel here, when it cannot.
    pub fn unserved_channel(&self) -> Option<String> {
        let channel = &self.spec.channel;
        self.channel_name().is_none().then(|| {
            format!(
                "spec.channel names a {} of {}: meshbroker serves Channels of {CHANNEL_API_VERSION} only",
                channel.kind, channel.api_version
            )
        })
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.spec.channel.name.is_empty() {
            return Err(Invalid::new("spec.channel.name", "must name a Channel"));
        }
        // Knative's KReference: apiVersion, kind and name are REQUIRED.
        for (field, value) in [
            ("spec.channel.apiVersion", &self.spec.channel.api_version),
            ("spec.channel.kind", &self.spec.channel.kind),
        ] {
            if value.is_empty() {
                return Err(Invalid::new(field, "must not be empty"));
            }
        }
        // The Knative contract: the Channel is in the Subscription's own namespace.
        // Only meshbroker wires a Channel across namespaces, and it does so with the
        // subscriber (an Application's Channel to a namespace's Broker), never here.
        if let Some(namespace) = self.spec.channel.namespace.as_deref()
            && !namespace.is_empty()
            && self.metadata.namespace.as_deref() != Some(namespace)
        {
            return Err(Invalid::new(
                "spec.channel.namespace",
                format!(
                    "{namespace:?} is not the Subscription's namespace; a Subscription may only name a Channel in its own namespace"
                ),
            ));
        }
        self.spec
            .subscriber
            .validate()
            .map_err(|e| e.within("spec.subscriber"))?;
        if let Some(reply) = &self.spec.reply {
            reply.validate().map_err(|e| e.within("spec.reply"))?;
        }
        if let Some(delivery) = &self.spec.delivery {
            delivery.validate().map_err(|e| e.within("spec.delivery"))?;
        }
        Ok(())
    }

    /// Moving a Subscription to another Channel is not atomic (it may span two
    /// storage systems), so Knative holds `spec.channel` immutable: delete and
    /// re-create.
    pub fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        if self.spec.channel != old.spec.channel {
            return Err(Invalid::immutable("spec.channel"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(channel_namespace: Option<&str>) -> Subscription {
        let mut subscription = Subscription::new(
            "s",
            SubscriptionSpec {
                channel: KReference {
                    api_version: "messaging.knative.dev/v1".into(),
                    kind: "Channel".into(),
                    name: "commerce".into(),
                    namespace: channel_namespace.map(Into::into),
                },
                subscriber: Destination {
                    uri: Some("http://x".into()),
                    ..Default::default()
                },
                reply: None,
                delivery: None,
            },
        );
        subscription.metadata.namespace = Some("kyma-integration".into());
        subscription
    }

    #[test]
    fn a_subscription_names_a_channel_in_its_own_namespace() {
        // (spec.channel.namespace, accepted)
        let cases = [
            (None, true),
            (Some(""), true),
            (Some("kyma-integration"), true),
            (Some("team-a"), false),
        ];
        for (namespace, accepted) in cases {
            let result = subscription(namespace).validate();
            assert_eq!(result.is_ok(), accepted, "{namespace:?}");
            if let Err(error) = result {
                assert_eq!(error.field, "spec.channel.namespace");
            }
        }
    }

    #[test]
    fn a_subscription_names_its_channel_in_full() {
        let mut unkinded = subscription(None);
        unkinded.spec.channel.kind.clear();
        let refused = unkinded.validate().expect_err("no kind");
        assert_eq!(refused.field, "spec.channel.kind");
        let mut unversioned = subscription(None);
        unversioned.spec.channel.api_version.clear();
        let refused = unversioned.validate().expect_err("no apiVersion");
        assert_eq!(refused.field, "spec.channel.apiVersion");
    }

    #[test]
    fn a_subscription_keeps_its_channel() {
        let old = subscription(None);
        let mut new_subscriber = old.clone();
        new_subscriber.spec.subscriber.uri = Some("http://y".into());
        new_subscriber.spec.delivery = Some(DeliverySpec {
            retry: Some(1),
            ..Default::default()
        });
        assert_eq!(new_subscriber.check_update(&old), Ok(()));
        let mut moved = old.clone();
        moved.spec.channel.name = "other".into();
        let error = moved.check_update(&old).expect_err("moved");
        assert_eq!(error.to_string(), "spec.channel: field is immutable");
    }
}
