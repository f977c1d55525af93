//! Kubernetes naming rules for object names and labels.

use super::Invalid;

/// DNS-1123 subdomain (most objects) or label (namespaces).
pub fn check_name(name: &str, dns_label: bool) -> Result<(), Invalid> {
    let max = if dns_label { 63 } else { 253 };
    if name.is_empty() {
        return Err(Invalid::new("", "is required"));
    }
    if name.len() > max {
        return Err(Invalid::new(
            "",
            format!("must be at most {max} characters"),
        ));
    }
    let allowed = |b: u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (!dns_label && b == b'.')
    };
    let bytes = name.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.iter().all(|b| allowed(*b)) || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(Invalid::new(
            "",
            format!(
                "{name:?} must consist of lower-case letters, digits and '-'{}, and start and end with a letter or digit",
                if dns_label { "" } else { " or '.'" }
            ),
        ));
    }
    Ok(())
}

pub fn is_valid_name(name: &str) -> bool {
    check_name(name, false).is_ok()
}

/// Label keys (`[prefix/]name`) and values, as Kubernetes checks them.
pub fn check_labels(labels: &serde_json::Value) -> Result<(), Invalid> {
    let Some(labels) = labels.as_object() else {
        return Err(Invalid::new("", "must be a map of strings"));
    };
    for (key, value) in labels {
        let Some(value) = value.as_str() else {
            return Err(Invalid::new(key.as_str(), "label values must be strings"));
        };
        check_label_key(key)?;
        if !is_label_value(value) {
            return Err(Invalid::new(
                key.as_str(),
                format!("{value:?} is not a valid label value"),
            ));
        }
    }
    Ok(())
}

/// What all of an object's annotations may take, keys and values together
/// (Kubernetes' limit).
const MOST_ANNOTATION_BYTES: usize = 256 * 1024;

/// Annotation keys (as label keys) with string values, within 256 KiB together.
pub fn check_annotations(annotations: &serde_json::Value) -> Result<(), Invalid> {
    let Some(annotations) = annotations.as_object() else {
        return Err(Invalid::new("", "must be a map of strings"));
    };
    let mut total = 0;
    for (key, value) in annotations {
        let Some(value) = value.as_str() else {
            return Err(Invalid::new(
                key.as_str(),
                "annotation values must be strings",
            ));
        };
        check_label_key(key)?;
        total += key.len() + value.len();
    }
    if total > MOST_ANNOTATION_BYTES {
        return Err(Invalid::new(
            "",
            format!("too long: {total} bytes, at most {MOST_ANNOTATION_BYTES} together"),
        ));
    }
    Ok(())
}

/// A label key: a name, optionally prefixed by a DNS subdomain and `/`.
pub fn check_label_key(key: &str) -> Result<(), Invalid> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_name(prefix, false).map_err(|e| e.within(key))?;
    }
    if !is_label_value(name) || name.is_empty() {
        return Err(Invalid::new(key, "is not a valid label key"));
    }
    Ok(())
}

/// At most 63 characters of `[A-Za-z0-9_.-]`, starting and ending alphanumeric.
pub fn is_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let bytes = value.as_bytes();
    value.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Names that would make a published address collide with another route: a
/// Broker named `events` would be `/{namespace}/events`, an Application's ingress;
/// an Application named `channels` would have its `/channels/v1/events` taken by
/// Channel `events` of namespace `v1`; a namespace named `apis` or `v2` would have
/// its OSB routes `/apis/v2/…`, `/v2/v2/…` taken by the resource API or the
/// unprefixed OSB API. Such objects are refused when written
/// (the events listener's route table checks this list: src/ingress/routes.rs).
pub fn route_collision(kind: &str, name: &str) -> Option<String> {
    match (kind, name) {
        ("Broker", "events") => Some(
            "a Broker named events would publish /{namespace}/events, the ingress of an Application named like the namespace; choose another name".into(),
        ),
        ("Namespace", "v2") => Some(
            "a namespace named v2 would have its OSB routes /v2/v2/… answered by the unprefixed OSB API (/v2/…); choose another name".into(),
        ),
        ("Namespace", "apis") => Some(
            "a namespace named apis would have its OSB routes /apis/v2/… answered by the resource API (/apis/{group}/{version}/…); choose another name".into(),
        ),
        ("Application", "channels") => Some(
            "an Application named channels would publish /channels/v1/events, the address of Channel events in namespace v1; choose another name".into(),
        ),
        _ => None,
    }
}

/// CloudEvents attribute and extension names: lower-case ASCII letters and digits.
pub fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_rules() {
        assert!(check_name("order-service.v1", false).is_ok());
        assert!(check_name("order-service.v1", true).is_err());
        assert!(check_name("-a", false).is_err());
        assert!(check_name("A", false).is_err());
        assert!(check_name(&"a".repeat(64), true).is_err());
    }

    #[test]
    fn labels_follow_kubernetes_rules() {
        assert!(check_labels(&serde_json::json!({"app.kubernetes.io/name": "x", "a": ""})).is_ok());
        assert!(check_labels(&serde_json::json!({"a": "has space"})).is_err());
        assert!(check_labels(&serde_json::json!({"a": 1})).is_err());
        assert!(check_labels(&serde_json::json!({"Bad_Prefix/a": "x"})).is_err());
    }

    #[test]
    fn annotations_are_strings_under_valid_keys_within_256_kib() {
        let fits = "x".repeat(256 * 1024 - 1);
        assert!(
            check_annotations(&serde_json::json!({"a": fits, "kubectl.kubernetes.io/x": ""}))
                .is_err()
        );
        assert!(check_annotations(&serde_json::json!({"a": fits})).is_ok());
        assert!(check_annotations(&serde_json::json!({"a": fits + "x"})).is_err());
        assert!(check_annotations(&serde_json::json!({"a": "any text, spaces: fine"})).is_ok());
        assert!(check_annotations(&serde_json::json!({"a": 1})).is_err());
        assert!(check_annotations(&serde_json::json!({"not a key": "x"})).is_err());
        assert!(check_annotations(&serde_json::json!(["a"])).is_err());
    }
}
