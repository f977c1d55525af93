//! Kinds as people type them (`trigger`, `Triggers`, `brokers`), and the
//! resource API paths of their objects.

use crate::resources::{KindSpec, kinds};

use super::failure::Failure;

pub fn kind_named(typed: &str) -> Result<&'static KindSpec, Failure> {
    let wanted = typed.to_ascii_lowercase();
    kinds()
        .iter()
        .find(|kind| {
            let singular = kind.kind.to_ascii_lowercase();
            wanted == singular || wanted == kind.plural || wanted == format!("{singular}s")
        })
        .ok_or_else(|| {
            let known: Vec<&str> = kinds().iter().map(|k| k.plural.as_str()).collect();
            Failure::Usage(format!("no kind {typed:?}; known: {}", known.join(", ")))
        })
}

/// `/api/v1/…` or `/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}]`.
pub fn path_of(kind: &KindSpec, namespace: Option<&str>, name: Option<&str>) -> String {
    let mut path = if kind.group.is_empty() {
        format!("/api/{}", kind.version)
    } else {
        format!("/apis/{}/{}", kind.group, kind.version)
    };
    if let Some(namespace) = namespace.filter(|_| kind.namespaced) {
        path.push_str(&format!("/namespaces/{namespace}"));
    }
    path.push('/');
    path.push_str(&kind.plural);
    if let Some(name) = name {
        path.push('/');
        path.push_str(name);
    }
    path
}

/// The path of one object, in the namespace given (or `default`).
pub fn item_path(kind: &KindSpec, namespace: Option<&str>, name: &str) -> String {
    path_of(kind, namespace_for(kind, namespace), Some(name))
}

/// The namespace of one object: given, or kubectl's `default`.
pub fn namespace_for<'a>(kind: &KindSpec, given: Option<&'a str>) -> Option<&'a str> {
    kind.namespaced.then(|| given.unwrap_or("default"))
}
