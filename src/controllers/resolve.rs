//! Turning a `Destination` into the URI the dataplane sends to: a URI as given; a
//! Broker or Channel by its published address; a Kubernetes Service by its cluster
//! DNS name; plus a relative `uri` appended to a resolved reference.

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
                broker.and_then(|b| b.status).map(|s| s.address),
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
                channel.and_then(|c| c.status).map(|s| s.address),
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
            "cannot resolve a reference to {kind} ({}); use a Broker, Channel, Service or a uri",
            reference.api_version
        )),
    };
    Ok(base.map(|base| match &destination.uri {
        Some(relative) => format!(
            "{}/{}",
            base.trim_end_matches('/'),
            relative.trim_start_matches('/')
        ),
        None => base,
    }))
}

fn address_of(
    address: Option<Addressable>,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<String, String> {
    address
        .and_then(|a| a.url)
        .ok_or_else(|| format!("{kind} {namespace}/{name} has no address yet"))
}
