//! The optional payload check: when the Application's AsyncAPI document gives a
//! schema for the event's type and version, `data` must satisfy it.

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event};

use super::IngressError;
use crate::mesh::routing::ApplicationRoute;

/// The event's version: its `eventtypeversion` extension, or a `.vN` suffix of
/// its type (`order.created.v1`).
fn type_and_version(event: &Event) -> (&str, Option<String>) {
    let ty = event.ty();
    if let Some(ExtensionValue::String(version)) = event.extension("eventtypeversion") {
        return (ty, Some(version.clone()));
    }
    match ty.rsplit_once('.') {
        Some((base, version))
            if version.len() > 1
                && version.starts_with('v')
                && version[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            (base, Some(version.to_string()))
        }
        _ => (ty, None),
    }
}

pub fn check(route: &ApplicationRoute, event: &Event) -> Result<(), IngressError> {
    if route.schemas.is_empty() {
        return Ok(());
    }
    let (ty, Some(version)) = type_and_version(event) else {
        return Ok(());
    };
    let Some(schema) = route.schemas.get(&(ty.to_string(), version.clone())) else {
        return Ok(());
    };
    let parsed;
    let data = match event.data() {
        Some(Data::Json(value)) => value,
        Some(Data::Binary(bytes)) => {
            parsed = serde_json::from_slice(bytes).map_err(|e| not_json(ty, &version, &e))?;
            &parsed
        }
        Some(Data::String(text)) => {
            parsed = serde_json::from_str(text).map_err(|e| not_json(ty, &version, &e))?;
            &parsed
        }
        None => {
            return Err(IngressError::InvalidEvent(format!(
                "{ty} {version} needs data matching its schema; there is none"
            )));
        }
    };
    schema
        .check(data, &format_args!("{ty} {version}"))
        .map_err(IngressError::InvalidEvent)
}

/// Says why: data nested deeper than the parser reads (128 levels) is JSON,
/// but cannot be checked.
fn not_json(ty: &str, version: &str, error: &serde_json::Error) -> IngressError {
    IngressError::InvalidEvent(format!(
        "data of {ty} {version} must be JSON to be checked against its schema: {error}"
    ))
}
