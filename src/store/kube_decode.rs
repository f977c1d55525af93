//! Reading the API server's lists and watch events object by object. kube-rs
//! decodes a whole list or event at once, and serde_json refuses JSON nested
//! deeper than 128 levels, which the API server takes wherever a schema keeps
//! unknown fields (a Trigger's `filters`, a Channel's template, an
//! Application's specification). One tenant's deep object would then fail
//! every list and watch of its kind: no namespace's Triggers reconciled, no
//! Broker made Ready. Here the list's items and each event's object are kept
//! as raw text (read without a depth limit, as serde_json skips values) and
//! decoded one by one. What follows a kind (the routing table, controllers)
//! leaves an object that does not decode out (logged), as if absent: its
//! Added or Modified event is passed on as Deleted, so nothing keeps an
//! earlier version of it routed. A plain list names it instead (`Listed`):
//! a decision such as "no other instance is left in the namespace" must not
//! be taken on a list that leaves one out.

use futures::{AsyncBufReadExt, Stream, StreamExt};
use kube::api::{DynamicObject, ListParams, ObjectMeta, WatchParams};
use kube::core::{ListMeta, Request, Status, TypeMeta};
use kube::{Client, Error};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{StoreError, WatchEvent, WatchEventType};
use crate::resources::KindSpec;
use crate::telemetry::Throttle;

static UNREADABLE_LOG: Throttle = Throttle::new();

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    metadata: ListMeta,
    /// The API server may send `null` for none.
    #[serde(default)]
    items: Option<Vec<Box<RawValue>>>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    type_: String,
    object: Box<RawValue>,
}

/// What an object that does not decode still tells: who it is. Only these
/// fields are read (the rest is skipped, without a depth limit): its
/// `managedFields` copy the shape of its fields, as deep as they are.
#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    metadata: Identity,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Identity {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

/// A list as read: the objects that decode, its resourceVersion, and the
/// `namespace/name` of each object left out.
pub struct Listed {
    pub items: Vec<DynamicObject>,
    pub resource_version: String,
    pub left_out: Vec<String>,
}

pub async fn list(
    client: &Client,
    url: &str,
    kind: &KindSpec,
    params: &ListParams,
) -> Result<Listed, Error> {
    let request = Request::new(url)
        .list(params)
        .map_err(Error::BuildRequest)?;
    let text = client.request_text(request).await?;
    let list: RawList = serde_json::from_str(&text).map_err(Error::SerdeError)?;
    Ok(listed(kind, list))
}

fn listed(kind: &KindSpec, list: RawList) -> Listed {
    let mut listed = Listed {
        items: Vec::new(),
        resource_version: list.metadata.resource_version.unwrap_or_default(),
        left_out: Vec::new(),
    };
    for raw in list.items.iter().flatten() {
        match decoded(kind, raw) {
            Decoded::Whole(object) => listed.items.push(object),
            Decoded::OnlyNamed(named) => listed.left_out.push(format!(
                "{}/{}",
                named.metadata.namespace.unwrap_or_default(),
                named.metadata.name.unwrap_or_default()
            )),
        }
    }
    listed
}

/// The changes after `since`, each object decoded on its own. The stream
/// ends where the watch does (the server's timeout, a broken connection):
/// callers watch again from the last resourceVersion they saw.
pub async fn watch(
    client: &Client,
    url: &str,
    kind: &'static KindSpec,
    params: &WatchParams,
    since: &str,
) -> Result<impl Stream<Item = Result<WatchEvent, StoreError>> + use<>, Error> {
    let mut request = Request::new(url)
        .watch(params, since)
        .map_err(Error::BuildRequest)?;
    // As kube-rs asks for its own watches: gzip members are not decoded one by one.
    request.headers_mut().insert(
        axum::http::header::ACCEPT_ENCODING,
        axum::http::HeaderValue::from_static("identity"),
    );
    let lines = client.request_stream(request).await?.lines();
    // The first read error ends it; one other than the server closing the
    // stream is passed on, so callers can say why they watch again.
    let mut broken = false;
    Ok(lines
        .take_while(move |line| {
            let more = !broken;
            broken = line.is_err();
            std::future::ready(more)
        })
        .filter_map(move |line| {
            std::future::ready(match line {
                Ok(line) => event_of(kind, &line),
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => None,
                Err(error) => Some(Err(StoreError::internal(format!(
                    "the watch broke off: {error}"
                )))),
            })
        }))
}

fn event_of(kind: &KindSpec, line: &str) -> Option<Result<WatchEvent, StoreError>> {
    if line.trim().is_empty() {
        return None;
    }
    let event: RawEvent = match serde_json::from_str(line) {
        Ok(event) => event,
        Err(error) => return Some(Err(StoreError::internal(format!("a watch event: {error}")))),
    };
    let type_ = match event.type_.as_str() {
        "ADDED" => WatchEventType::Added,
        "MODIFIED" => WatchEventType::Modified,
        "DELETED" => WatchEventType::Deleted,
        "ERROR" => {
            let status: Status = serde_json::from_str(event.object.get()).unwrap_or_default();
            return Some(Err(match status.code {
                410 => StoreError::Expired(status.message),
                _ => StoreError::Internal(status.message),
            }));
        }
        _ => return None,
    };
    Some(Ok(match decoded(kind, &event.object) {
        Decoded::Whole(object) => WatchEvent { type_, object },
        Decoded::OnlyNamed(object) => WatchEvent {
            type_: WatchEventType::Deleted,
            object,
        },
    }))
}

/// The object with its kind's `apiVersion` and `kind`, which the API server
/// leaves out of list items.
pub(super) fn with_types(kind: &KindSpec, mut object: DynamicObject) -> DynamicObject {
    object.types = Some(TypeMeta {
        api_version: kind.api_version(),
        kind: kind.kind.clone(),
    });
    object
}

enum Decoded {
    Whole(DynamicObject),
    /// It does not decode: only its metadata (as much of it as decodes).
    OnlyNamed(DynamicObject),
}

/// The object, with its kind's types.
fn decoded(kind: &KindSpec, raw: &RawValue) -> Decoded {
    match serde_json::from_str::<DynamicObject>(raw.get()) {
        Ok(object) => Decoded::Whole(with_types(kind, object)),
        Err(error) => {
            let identity = serde_json::from_str::<Named>(raw.get())
                .map(|named| named.metadata)
                .unwrap_or_default();
            let metadata = ObjectMeta {
                name: identity.name,
                namespace: identity.namespace,
                uid: identity.uid,
                resource_version: identity.resource_version,
                ..ObjectMeta::default()
            };
            if let Some(skipped) = UNREADABLE_LOG.allow() {
                tracing::warn!(
                    kind = %kind.kind,
                    namespace = metadata.namespace.as_deref().unwrap_or(""),
                    name = metadata.name.as_deref().unwrap_or(""),
                    %error,
                    skipped,
                    "an object does not decode; meshbroker leaves it out as if it did not exist"
                );
            }
            let named = DynamicObject {
                types: None,
                metadata,
                data: serde_json::Value::Null,
            };
            Decoded::OnlyNamed(with_types(kind, named))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Trigger, kind_of};

    fn nested(depth: usize) -> String {
        let mut value = "1".to_string();
        for _ in 0..depth {
            value = format!("{{\"a\":{value}}}");
        }
        value
    }

    /// A Trigger as the API server keeps it: its managedFields copy the
    /// shape of its fields (and so, for a deep map, its depth).
    fn trigger(name: &str, filters: &str, fields: &str) -> String {
        format!(
            r#"{{"apiVersion":"eventing.knative.dev/v1","kind":"Trigger","metadata":{{"name":"{name}","namespace":"team-a","resourceVersion":"7","managedFields":[{{"manager":"kubectl","fieldsV1":{fields}}}]}},"spec":{{"broker":"default","filters":[{filters}]}}}}"#
        )
    }

    #[test]
    fn a_list_keeps_what_decodes_and_names_what_it_left_out() {
        let kind = kind_of::<Trigger>();
        let text = format!(
            r#"{{"kind":"TriggerList","metadata":{{"resourceVersion":"9"}},"items":[{},{}]}}"#,
            trigger("deep", &nested(400), &nested(404)),
            trigger("plain", r#"{"exact":{"type":"x"}}"#, "{}")
        );
        let list = listed(kind, serde_json::from_str(&text).expect("the list reads"));
        let names: Vec<_> = list
            .items
            .iter()
            .map(|o| o.metadata.name.as_deref())
            .collect();
        assert_eq!(names, [Some("plain")]);
        assert_eq!(
            list.left_out,
            ["team-a/deep"],
            "named, though its managedFields are deep too"
        );
        assert_eq!(list.resource_version, "9");

        let none = r#"{"kind":"TriggerList","metadata":{"resourceVersion":"3"},"items":null}"#;
        let list = listed(kind, serde_json::from_str(none).expect("null items read"));
        assert!(list.items.is_empty() && list.left_out.is_empty());
    }

    #[test]
    fn a_watch_event_of_an_object_nested_too_deep_is_passed_on_as_its_deletion() {
        let kind = kind_of::<Trigger>();
        let line = format!(
            r#"{{"type":"MODIFIED","object":{}}}"#,
            trigger("deep", &nested(400), &nested(404))
        );
        let event = event_of(kind, &line)
            .expect("an event")
            .expect("not an error");
        assert_eq!(event.type_, WatchEventType::Deleted);
        assert_eq!(event.object.metadata.name.as_deref(), Some("deep"));
        assert_eq!(event.object.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(
            event.object.types.as_ref().map(|t| t.kind.as_str()),
            Some("Trigger")
        );

        let line = format!(
            r#"{{"type":"ADDED","object":{}}}"#,
            trigger("plain", "{}", "{}")
        );
        let event = event_of(kind, &line)
            .expect("an event")
            .expect("not an error");
        assert_eq!(event.type_, WatchEventType::Added);
        assert_eq!(event.object.data["spec"]["broker"], "default");

        let gone = r#"{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}}"#;
        assert!(matches!(
            event_of(kind, gone),
            Some(Err(StoreError::Expired(_)))
        ));
        let bookmark = r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}"#;
        assert!(event_of(kind, bookmark).is_none());
    }
}
