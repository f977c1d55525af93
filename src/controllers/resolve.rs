//! Turning a `Destination` into the URI the dataplane sends to: a URI as given; a
//! Broker or Channel by its published address; a Kubernetes Service by its cluster
//! DNS name; any other kind (a Knative Service, a Kafka sink…) by Knative's
//! Addressable duck type, its `status.address.url`, read from the Kubernetes API
//! server (the embedded store holds no other kinds); a `uri` beside a reference
//! is resolved against the reference's URI as RFC 3986 resolves a relative
//! reference (Knative: "the `uri` interpreted relative to the resolved URI of
//! the `ref`").

use kube::core::DynamicObject;

use crate::resources::{Addressable, Broker, Channel, Destination};
use crate::store::{StoreError, TypedStore};

/// Ok(Err(reason)) when the destination cannot be resolved now (a missing or
/// unready target): a status to report, not a failure of the controller.
pub async fn resolve_destination(
    store: &TypedStore,
    destination: &Destination,
    default_namespace: &str,
) -> Result<Result<String, String>, StoreError> {
    let Some(reference) = &destination.reference else {
        return Ok(destination
            .uri
            .clone()
            .ok_or_else(|| "the destination has neither ref nor uri".to_string()));
    };
    let namespace = reference.namespace.as_deref().unwrap_or(default_namespace);
    let base = match (reference.kind.as_str(), group_of(&reference.api_version)) {
        ("Broker", "eventing.knative.dev") => {
            let broker = store
                .get::<Broker>(Some(namespace), &reference.name)
                .await?;
            address_of(
                broker.map(|b| b.status.map(|s| s.address)),
                "Broker",
                namespace,
                &reference.name,
            )
        }
        ("Channel", "messaging.knative.dev") => {
            let channel = store
                .get::<Channel>(Some(namespace), &reference.name)
                .await?;
            address_of(
                channel.map(|c| c.status.map(|s| s.address)),
                "Channel",
                namespace,
                &reference.name,
            )
        }
        ("Service", "v1") => Ok(format!(
            "http://{}.{namespace}.svc.cluster.local",
            reference.name
        )),
        (kind, _) => {
            let found = store
                .raw()
                .get_other(&reference.api_version, kind, namespace, &reference.name)
                .await;
            match found {
                Ok(object) => address_of_other(object, kind, namespace, &reference.name),
                // A transient failure: the controller tries again.
                Err(error @ StoreError::Internal(_)) => return Err(error),
                Err(why) => Err(format!(
                    "cannot resolve a reference to a {kind} of {}: {why}",
                    reference.api_version
                )),
            }
        }
    };
    Ok(base.and_then(|base| match &destination.uri {
        Some(relative) => relative_to(&base, relative),
        None => Ok(base),
    }))
}

/// The API group of an `apiVersion` (`v1`: the core group, named `v1` here).
fn group_of(api_version: &str) -> &str {
    api_version.split('/').next().unwrap_or_default()
}

/// Whether any of `destinations` names an object of a kind no controller here
/// hears of (resolved by reading it, as Knative's Addressable duck type): a
/// status that depends on one is looked at again from time to time instead.
pub fn any_names_other_kind<'a>(
    destinations: impl IntoIterator<Item = Option<&'a Destination>>,
) -> bool {
    destinations.into_iter().flatten().any(names_other_kind)
}

fn names_other_kind(destination: &Destination) -> bool {
    destination.reference.as_ref().is_some_and(|reference| {
        !matches!(
            (reference.kind.as_str(), group_of(&reference.api_version)),
            ("Broker", "eventing.knative.dev")
                | ("Channel", "messaging.knative.dev")
                | ("Service", "v1")
        )
    })
}

/// `relative` resolved against `base` (RFC 3986 §5.2): `/p` replaces the path,
/// `p` replaces its last segment, `?q` only the query.
fn relative_to(base: &str, relative: &str) -> Result<String, String> {
    let base = fluent_uri::Uri::parse(base)
        .map_err(|e| format!("the reference's address {base:?} is not a URI: {e}"))?;
    let relative = fluent_uri::UriRef::parse(relative)
        .map_err(|e| format!("uri {relative:?} is not a relative reference: {e}"))?;
    relative
        .resolve_against(&base)
        .map(|resolved| resolved.to_string())
        .map_err(|e| format!("uri {relative} cannot be resolved against {base}: {e}"))
}

/// The address of an object of another kind, by Knative's Addressable duck
/// type: its `status.address.url`.
fn address_of_other(
    found: Option<DynamicObject>,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<String, String> {
    let Some(object) = found else {
        return Err(format!("{kind} {namespace}/{name} does not exist"));
    };
    object.data["status"]["address"]["url"]
        .as_str()
        .filter(|url| !url.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            format!("{kind} {namespace}/{name} has no address yet (status.address.url is not set)")
        })
}

/// The address of a Broker or Channel as read (None: there is no such object).
fn address_of(
    found: Option<Option<Addressable>>,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<String, String> {
    let Some(address) = found else {
        return Err(format!("{kind} {namespace}/{name} does not exist"));
    };
    address
        .and_then(|a| a.url)
        .ok_or_else(|| format!("{kind} {namespace}/{name} has no address yet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_beside_a_reference_resolves_as_rfc_3986_says() {
        let base = "http://events.example:8080/team-a/default";
        for (relative, expected) in [
            ("/extra/path", "http://events.example:8080/extra/path"),
            ("extra", "http://events.example:8080/team-a/extra"),
            ("?q=1", "http://events.example:8080/team-a/default?q=1"),
            ("", "http://events.example:8080/team-a/default"),
        ] {
            assert_eq!(
                relative_to(base, relative).as_deref(),
                Ok(expected),
                "{relative:?}"
            );
        }
        assert_eq!(
            relative_to("http://svc.ns.svc.cluster.local", "/p").as_deref(),
            Ok("http://svc.ns.svc.cluster.local/p")
        );
        assert!(relative_to(base, "a b").is_err());
    }
}
