//! Names of the objects the provisioner writes, derived so that the same request
//! always names the same object.

use crate::auth::sha256_hex;
use crate::resources::{OperationKind, is_valid_name};

/// What every operation id starts with.
const OPERATION_PREFIX: &str = "op-";
/// What a deprovision's operation id starts with: the one kind of operation whose
/// id a platform may still poll after its record is forgotten.
const DEPROVISION_PREFIX: &str = "op-deprovision-";

/// The ServiceInstance object of an OSB instance id: the id itself when it is a
/// valid object name (GUIDs are), else a digest of it (the id is kept in the spec).
/// An id shaped like a digest is digested too: taken as it is, it would name
/// the record of the other id that digests to it.
pub fn instance_object_name(instance_id: &str) -> String {
    if is_valid_name(instance_id) && !is_digest_name(instance_id) {
        instance_id.to_string()
    } else {
        format!("{DIGEST_PREFIX}{}", &sha256_hex(instance_id)[..DIGEST_HEX])
    }
}

const DIGEST_PREFIX: &str = "i-";
const DIGEST_HEX: usize = 40;

fn is_digest_name(name: &str) -> bool {
    name.strip_prefix(DIGEST_PREFIX)
        .is_some_and(|hex| hex.len() == DIGEST_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The Subscription carrying an Application's Channel to a namespace's Broker:
/// `<application>.<namespace>`. Namespaces contain no dots, so the name is
/// unambiguous; a name too long for Kubernetes falls back to a digest.
pub fn subscription_name(application: &str, namespace: &str) -> String {
    let name = format!("{application}.{namespace}");
    if name.len() <= 253 {
        name
    } else {
        format!("s-{}", &sha256_hex(&name)[..40])
    }
}

/// `op-<20 hex>`, or for a deprovision `op-deprovision-<20 hex>-<12 hex>`, the
/// last part from the instance id's digest (the token is hex, so neither form
/// can be mistaken for the other). A deprovision's id names its instance, so
/// once the instance's record is forgotten a poll naming it is still told the
/// instance is gone, and a poll of an instance that never was is not.
pub fn new_operation_id(kind: OperationKind, instance_id: &str) -> String {
    let token = crate::auth::generate_token("").unwrap_or_else(|error| {
        tracing::warn!(%error, "no OS randomness: this operation id is derived from the clock");
        sha256_hex(&format!("{:?}", std::time::SystemTime::now()))
    });
    match kind {
        OperationKind::Deprovision => format!(
            "{DEPROVISION_PREFIX}{}-{}",
            &token[..20],
            instance_mark(instance_id)
        ),
        OperationKind::Provision | OperationKind::Update => {
            format!("{OPERATION_PREFIX}{}", &token[..20])
        }
    }
}

/// Whether `value` is in the form of the ids `new_operation_id` gives. Some
/// platforms and checkers poll with a value of their own (the operation's kind,
/// `provision`) instead of the id they were given: such a value names no
/// operation of this broker.
pub fn is_in_operation_id_form(value: &str) -> bool {
    value.starts_with(OPERATION_PREFIX)
}

fn instance_mark(instance_id: &str) -> String {
    sha256_hex(instance_id)[..12].to_string()
}

/// Whether an operation id is one `new_operation_id` gave a deprovision of
/// `instance_id` — or, in the form before ids named their instance
/// (`op-deprovision-<20 hex>`), of any instance.
pub fn is_deprovision_of(id: &str, instance_id: &str) -> bool {
    let Some(rest) = id.strip_prefix(DEPROVISION_PREFIX) else {
        return false;
    };
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match rest.split_once('-') {
        Some((token, mark)) => hex(token, 20) && mark == instance_mark(instance_id),
        None => hex(rest, 20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_ids_name_their_record_directly() {
        let id = "3f6a2f1e-5c59-4b1a-9d8e-0b1a2c3d4e5f";
        assert_eq!(instance_object_name(id), id);
    }

    #[test]
    fn other_ids_are_digested_stably() {
        let name = instance_object_name("Instance With Spaces");
        assert!(name.starts_with("i-") && is_valid_name(&name));
        assert_eq!(name, instance_object_name("Instance With Spaces"));
        assert_ne!(name, instance_object_name("instance with spaces"));
        // An id spelled like that digest names a record of its own.
        assert_ne!(instance_object_name(&name), name);
        assert!(is_valid_name(&instance_object_name(&name)));
    }

    #[test]
    fn deprovision_operations_are_known_by_their_id_and_instance() {
        let deprovision = new_operation_id(OperationKind::Deprovision, "orders");
        assert!(is_deprovision_of(&deprovision, "orders"), "{deprovision}");
        assert!(
            !is_deprovision_of(&deprovision, "shipping"),
            "{deprovision}"
        );
        for kind in [OperationKind::Provision, OperationKind::Update] {
            let id = new_operation_id(kind, "orders");
            assert!(
                id.starts_with("op-") && !is_deprovision_of(&id, "orders"),
                "{id}"
            );
        }
        assert!(!is_deprovision_of("op-unknown", "orders"));
        assert!(is_in_operation_id_form(&deprovision));
        assert!(!is_in_operation_id_form("provision"));
        assert!(!is_deprovision_of("op-deprovision-abc", "orders"));
        // Ids given before they named their instance.
        assert!(is_deprovision_of(
            "op-deprovision-0123456789abcdef0123",
            "orders"
        ));
    }

    #[test]
    fn subscription_names_do_not_collide() {
        assert_ne!(subscription_name("a-b", "c"), subscription_name("a", "b-c"));
        assert_eq!(subscription_name("orders", "team-a"), "orders.team-a");
        assert!(is_valid_name(&subscription_name(&"a".repeat(250), "ns")));
    }
}
