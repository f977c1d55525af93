//! Turning a `Destination` into the URI the dataplane sends to: a URI as given; a
//! Broker or Channel by its published address; a Kubernetes Service by its cluster
//! DNS name; a `uri` beside a reference is resolved against the reference's URI
//! as RFC 3986 resolves a relative reference (Knative: "the `uri` interpreted
//! relative to the resolved URI of the `ref`").

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
    let group = reference.api_version.split('/').next().unwrap_or_default();
    let base = match (reference.kind.as_str(), group) {
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
        (kind, _) => Err(format!(
            "cannot resolve a reference to a {kind} of {}: meshbroker resolves Brokers (eventing.knative.dev), Channels (messaging.knative.dev) and core v1 Services; give a uri for anything else",
            reference.api_version
        )),
    };
    Ok(base.and_then(|base| match &destination.uri {
        Some(relative) => relative_to(&base, relative),
        None => Ok(base),
    }))
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
