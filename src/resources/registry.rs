//! The kinds meshbroker serves, found by group/version/plural (the resource API's
//! paths) or by Rust type (the typed store), with the checks every write passes:
//! apiVersion/kind agree, metadata is well formed, and the kind's own `validate`;
//! and the two lifecycle hooks the resource API runs around them: a kind's defaults
//! (before validation) and, on replace, the fields it holds immutable.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Namespace;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::names::{check_annotations, check_labels, check_name, route_collision};
use super::{
    AccessToken, Application, ApplicationMapping, Broker, CertificateRevocation, Channel,
    HttpSource, Invalid, KnativeEventType, ServiceInstance, Subscription, TokenRequest, Trigger,
};

/// A kind the store holds and the resource API serves.
pub struct KindSpec {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Who besides the admin may touch it.
    pub access: Access,
    /// On a Kubernetes API server, its status is written through `/status`.
    pub status_subresource: bool,
    validate: fn(&Value) -> Result<(), Refusal>,
    check_update: fn(&Value, &Value) -> Result<(), Refusal>,
    apply_defaults: fn(&mut Value, &Defaults),
}

/// What defaulting takes from the running server rather than from the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// The class a Broker written without `eventing.knative.dev/broker.class` gets.
    pub broker_class: &'static str,
}

/// Who may read and write a kind (the admin always may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A namespace's token, inside its namespace.
    Namespace,
    /// A namespace's token reads it inside its namespace; only the admin writes
    /// it. For grants: mapping an Application into a namespace is an
    /// administrator's decision (as in Kyma), not something the namespace takes.
    NamespaceReads,
    /// The admin only, even inside a namespace.
    Admin,
}

/// Why a write is refused: the body does not have the kind's shape (a field of the
/// wrong type, a required field missing), or it has the shape but breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Malformed(Invalid),
    Invalid(Invalid),
}

impl Refusal {
    pub fn detail(&self) -> &Invalid {
        match self {
            Refusal::Malformed(detail) | Refusal::Invalid(detail) => detail,
        }
    }
}

impl KindSpec {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// A stable key for storage: `group/Kind` (`core/Namespace` for the core group).
    pub fn storage_key(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        format!("{group}/{}", self.kind)
    }

    /// Checks a whole object about to be written: type fields, metadata, then the
    /// kind's own rules. `namespace` is where it is being written.
    pub fn validate(&self, object: &serde_json::Value) -> Result<(), Refusal> {
        let malformed =
            |field: &str, message: String| Refusal::Malformed(Invalid::new(field, message));
        let Some(fields) = object.as_object() else {
            return Err(malformed(
                "",
                "the body must be a JSON or YAML object".into(),
            ));
        };
        let api_version = self.api_version();
        match fields.get("apiVersion").and_then(|v| v.as_str()) {
            Some(v) if v == api_version => {}
            _ => return Err(malformed("apiVersion", format!("must be {api_version}"))),
        }
        match fields.get("kind").and_then(|v| v.as_str()) {
            Some(k) if k == self.kind => {}
            _ => return Err(malformed("kind", format!("must be {}", self.kind))),
        }
        let metadata = fields.get("metadata").and_then(|m| m.as_object());
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        check_name(name, self.kind == "Namespace")
            .map_err(|e| Refusal::Invalid(e.within("metadata.name")))?;
        if let Some(why) = route_collision(&self.kind, name) {
            return Err(Refusal::Invalid(Invalid::new("metadata.name", why)));
        }
        // `null` is no labels (Go decodes it so), as it is no annotations.
        if let Some(labels) = metadata
            .and_then(|m| m.get("labels"))
            .filter(|l| !l.is_null())
        {
            check_labels(labels).map_err(|e| Refusal::Invalid(e.within("metadata.labels")))?;
        }
        if let Some(annotations) = metadata
            .and_then(|m| m.get("annotations"))
            .filter(|a| !a.is_null())
        {
            check_annotations(annotations)
                .map_err(|e| Refusal::Invalid(e.within("metadata.annotations")))?;
        }
        (self.validate)(object)
    }

    /// Fills in what a writer may leave out; runs before `validate`, on create and
    /// on replace alike (a replace is a whole object, defaulted as a new one is).
    pub fn apply_defaults(&self, object: &mut Value, defaults: &Defaults) {
        (self.apply_defaults)(object, defaults)
    }

    /// The rules of a replace: `new` (already accepted by `validate`) may not change
    /// the fields the kind holds immutable in `stored`.
    pub fn check_update(&self, stored: &Value, new: &Value) -> Result<(), Refusal> {
        (self.check_update)(stored, new)
    }
}

/// Types the typed store reads and writes.
pub trait Typed:
    Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
    fn validate(&self) -> Result<(), Invalid>;

    /// Which fields may not change from `old`; most kinds hold none.
    fn check_update(&self, _old: &Self) -> Result<(), Invalid> {
        Ok(())
    }

    /// Defaults set on the object as written (JSON, so fields meshbroker does not
    /// model are stored as they came); most kinds have none.
    fn apply_defaults(_object: &mut Value, _defaults: &Defaults) {}
}

macro_rules! typed {
    ($($kind:ty),* $(,)?) => {$(
        impl Typed for $kind {
            fn validate(&self) -> Result<(), Invalid> {
                <$kind>::validate(self)
            }
        }
    )*};
}

typed!(
    Application,
    ApplicationMapping,
    HttpSource,
    ServiceInstance,
    AccessToken,
    TokenRequest,
    CertificateRevocation,
    KnativeEventType,
);

// The kinds with lifecycle rules of the Knative control-plane contract.
impl Typed for Subscription {
    fn validate(&self) -> Result<(), Invalid> {
        Subscription::validate(self)
    }
    fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        Subscription::check_update(self, old)
    }
}

impl Typed for Channel {
    fn validate(&self) -> Result<(), Invalid> {
        Channel::validate(self)
    }
    fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        Channel::check_update(self, old)
    }
    fn apply_defaults(object: &mut Value, _defaults: &Defaults) {
        Channel::default_template(object)
    }
}

impl Typed for Trigger {
    fn validate(&self) -> Result<(), Invalid> {
        Trigger::validate(self)
    }
    fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        Trigger::check_update(self, old)
    }
}

impl Typed for Broker {
    fn validate(&self) -> Result<(), Invalid> {
        Broker::validate(self)
    }
    fn check_update(&self, old: &Self) -> Result<(), Invalid> {
        Broker::check_update(self, old)
    }
    fn apply_defaults(object: &mut Value, defaults: &Defaults) {
        Broker::default_class(object, defaults.broker_class)
    }
}

impl Typed for Namespace {
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// Deserializes with the failing field's path in the error, then validates.
fn validate_as<K: Typed>(object: &Value) -> Result<(), Refusal> {
    let typed: K = serde_path_to_error::deserialize(object).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        Refusal::Malformed(Invalid::new(path, e.into_inner().to_string()))
    })?;
    typed.validate().map_err(Refusal::Invalid)
}

fn check_update_as<K: Typed>(stored: &Value, new: &Value) -> Result<(), Refusal> {
    // `new` passed `validate`, so it parses. A stored object that does not (written
    // past meshbroker, e.g. by kubectl on a Kubernetes API server) holds nothing
    // meshbroker could compare: the replace that mends it goes through.
    let (Ok(stored), Ok(new)) = (K::deserialize(stored), K::deserialize(new)) else {
        return Ok(());
    };
    new.check_update(&stored).map_err(Refusal::Invalid)
}

fn spec_of<K: Typed>(namespaced: bool, access: Access) -> KindSpec {
    // Every kind of ours with a status declares the subresource (the CRD derive
    // does); Namespaces' status is never written by meshbroker.
    let status_subresource = !K::group(&()).is_empty() && K::kind(&()) != "ApplicationMapping";
    KindSpec {
        status_subresource,
        group: K::group(&()).into_owned(),
        version: K::version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        plural: K::plural(&()).into_owned(),
        namespaced,
        access,
        validate: validate_as::<K>,
        check_update: check_update_as::<K>,
        apply_defaults: K::apply_defaults,
    }
}

static KINDS: LazyLock<Vec<KindSpec>> = LazyLock::new(|| {
    vec![
        spec_of::<Namespace>(false, Access::Admin),
        spec_of::<Application>(false, Access::Admin),
        spec_of::<ApplicationMapping>(true, Access::NamespaceReads),
        spec_of::<HttpSource>(true, Access::Namespace),
        spec_of::<Channel>(true, Access::Namespace),
        spec_of::<Subscription>(true, Access::Namespace),
        spec_of::<Broker>(true, Access::Namespace),
        spec_of::<Trigger>(true, Access::Namespace),
        spec_of::<ServiceInstance>(false, Access::Admin),
        spec_of::<AccessToken>(true, Access::Admin),
        spec_of::<TokenRequest>(true, Access::Admin),
        spec_of::<CertificateRevocation>(false, Access::Admin),
        spec_of::<KnativeEventType>(true, Access::NamespaceReads),
    ]
});

/// Every kind served, in a stable order.
pub fn kinds() -> &'static [KindSpec] {
    &KINDS
}

/// The kind served at `/apis/{group}/{version}/{plural}` (`/api/v1/...` for core).
pub fn kind_by_path(group: &str, version: &str, plural: &str) -> Option<&'static KindSpec> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The registry entry of a Rust type.
pub fn kind_of<K: Typed>() -> &'static KindSpec {
    let kind = K::kind(&());
    let group = K::group(&());
    KINDS
        .iter()
        .find(|k| k.kind == kind && k.group == group)
        .expect("every Typed kind is registered in KINDS")
}

pub fn namespace_kind() -> &'static KindSpec {
    kind_of::<Namespace>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_path() {
        for kind in KINDS.iter() {
            let found = kind_by_path(&kind.group, &kind.version, &kind.plural)
                .expect("registered kind is found");
            assert_eq!(found.kind, kind.kind);
        }
        assert_eq!(kind_of::<Trigger>().plural, "triggers");
        assert_eq!(kind_of::<HttpSource>().plural, "httpsources");
        assert_eq!(namespace_kind().api_version(), "v1");
    }

    #[test]
    fn validation_names_the_failing_field() {
        let trigger = serde_json::json!({
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": "t"},
            "spec": {"broker": "default", "subscriber": {"uri": 42}}
        });
        let error = kind_of::<Trigger>()
            .validate(&trigger)
            .expect_err("uri must be a string");
        assert!(matches!(error, Refusal::Malformed(_)));
        assert_eq!(error.detail().field, "spec.subscriber.uri");
    }

    #[test]
    fn validation_checks_type_fields_and_names() {
        let kind = kind_of::<Broker>();
        let wrong_kind = serde_json::json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "b"}});
        assert_eq!(
            kind.validate(&wrong_kind).expect_err("kind").detail().field,
            "kind"
        );
        let bad_name = serde_json::json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "Bad_Name"}});
        let refusal = kind.validate(&bad_name).expect_err("name");
        assert!(matches!(refusal, Refusal::Invalid(_)));
        assert_eq!(refusal.detail().field, "metadata.name");
    }

    #[test]
    fn lifecycle_hooks_reach_the_kind() {
        let defaults = Defaults {
            broker_class: "MeshBroker",
        };
        let mut broker = serde_json::json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "b"}, "spec": {}});
        kind_of::<Broker>().apply_defaults(&mut broker, &defaults);
        assert_eq!(
            broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"],
            "MeshBroker"
        );
        let mut channel = serde_json::json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"}, "spec": {"channelTemplate": null}});
        kind_of::<Channel>().apply_defaults(&mut channel, &defaults);
        assert_eq!(
            channel["spec"]["channelTemplate"],
            serde_json::json!({"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"})
        );
        let mut chosen = serde_json::json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"}, "spec": {"channelTemplate": {"kind": "MeshChannel"}}});
        let written = chosen.clone();
        kind_of::<Channel>().apply_defaults(&mut chosen, &defaults);
        assert_eq!(chosen, written, "a template written is kept");
        let mut token = serde_json::json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken", "metadata": {"name": "t"}, "spec": {}});
        let written = token.clone();
        kind_of::<AccessToken>().apply_defaults(&mut token, &defaults);
        assert_eq!(token, written, "a kind without defaults is left alone");

        let trigger = |broker: &str| serde_json::json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"}, "spec": {"broker": broker, "subscriber": {"uri": "http://x"}}});
        let refusal = kind_of::<Trigger>()
            .check_update(&trigger("default"), &trigger("other"))
            .expect_err("moved");
        assert!(matches!(refusal, Refusal::Invalid(_)));
        assert_eq!(refusal.detail().field, "spec.broker");
        assert_eq!(
            kind_of::<Trigger>().check_update(&serde_json::json!({"spec": 1}), &trigger("other")),
            Ok(()),
            "a stored object that does not parse holds nothing to compare"
        );
    }
}
