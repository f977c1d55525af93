//! Namespaces are walls: an object written through the resource API may only
//! deliver into its own namespace. A reference (subscriber, reply, dead-letter
//! sink) that names another namespace is refused with 422 naming the field. The
//! one crossing is what meshbroker wires for a provisioned instance — an
//! Application's Channel in the integration namespace to the Brokers of the
//! namespaces that provisioned it — which the provisioner writes itself; an
//! administrator may write such a Subscription too (the routing table still
//! carries it only while an instance of the Application lives there).

use serde_json::Value;

use super::ApiError;
use super::target::Target;
use crate::auth::Caller;
use crate::resources::{Invalid, Refusal};

/// The references each kind may carry, as JSON pointers and field names.
fn references(kind: &str) -> &'static [(&'static str, &'static str)] {
    const DEAD_LETTER: (&str, &str) = (
        "/spec/delivery/deadLetterSink/ref/namespace",
        "spec.delivery.deadLetterSink.ref.namespace",
    );
    const SUBSCRIBER: (&str, &str) = (
        "/spec/subscriber/ref/namespace",
        "spec.subscriber.ref.namespace",
    );
    match kind {
        "Trigger" => &[SUBSCRIBER, DEAD_LETTER],
        "Subscription" => &[
            SUBSCRIBER,
            ("/spec/reply/ref/namespace", "spec.reply.ref.namespace"),
            DEAD_LETTER,
        ],
        "Broker" | "Channel" => &[DEAD_LETTER],
        _ => &[],
    }
}

pub fn stay_in_namespace(
    caller: &Caller,
    target: &Target,
    object: &Value,
    integration_namespace: &str,
) -> Result<(), ApiError> {
    let Some(own) = target.namespace.as_deref() else {
        return Ok(());
    };
    let kind = target.kind.kind.as_str();
    for (pointer, field) in references(kind) {
        let Some(other) = object.pointer(pointer).and_then(Value::as_str) else {
            continue;
        };
        if other.is_empty() || other == own {
            continue;
        }
        let meshbroker_wiring = kind == "Subscription"
            && *field == "spec.subscriber.ref.namespace"
            && own == integration_namespace
            && *caller == Caller::Admin;
        if meshbroker_wiring {
            continue;
        }
        return Err(ApiError::refused(Refusal::Invalid(Invalid::new(
            *field,
            format!(
                "a {kind} of namespace {own:?} delivers only into its own namespace, not into {other:?}"
            ),
        ))));
    }
    Ok(())
}
