//! OSB request bodies and query strings. Unknown fields are ignored, as the spec
//! requires; empty-string ids count as missing.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::Query;
use axum::http::Uri;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::OsbError;

#[derive(Debug, Default, Deserialize)]
pub struct ProvisionBody {
    pub service_id: Option<String>,
    pub plan_id: Option<String>,
    pub organization_guid: Option<String>,
    pub space_guid: Option<String>,
    pub context: Option<Value>,
    pub parameters: Option<Value>,
    pub maintenance_info: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateBody {
    pub service_id: Option<String>,
    pub plan_id: Option<String>,
    pub context: Option<Value>,
    pub parameters: Option<Value>,
    pub maintenance_info: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BindBody {
    pub service_id: Option<String>,
    pub plan_id: Option<String>,
    pub parameters: Option<Value>,
}

/// Reads a JSON body within the size limit; a field of the wrong type is named.
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, OsbError> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| OsbError::PayloadTooLarge(format!("the body is larger than {limit} bytes")))?;
    if bytes.is_empty() {
        return Err(OsbError::BadRequest("the request needs a JSON body".into()));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path == "?" {
            OsbError::BadRequest(format!("the body is not a valid JSON object: {inner}"))
        } else {
            OsbError::BadRequest(format!("{path}: {inner}"))
        }
    })
}

/// A required id: present and not empty.
pub fn required(field: &str, value: Option<&String>) -> Result<String, OsbError> {
    match value.map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        Some(_) => Err(OsbError::BadRequest(format!("{field} must not be empty"))),
        None => Err(OsbError::BadRequest(format!("{field} is required"))),
    }
}

/// Objects the spec types as objects (`parameters`, `context`).
pub fn object_or_absent(field: &str, value: Option<Value>) -> Result<Option<Value>, OsbError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(OsbError::BadRequest(format!(
            "{field} must be a JSON object"
        ))),
    }
}

pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn of(uri: &Uri) -> Result<Self, OsbError> {
        Query::<HashMap<String, String>>::try_from_uri(uri)
            .map(|q| Self(q.0))
            .map_err(|e| OsbError::BadRequest(format!("the query string is malformed: {e}")))
    }

    pub fn get(&self, name: &str) -> Option<&String> {
        self.0.get(name)
    }

    pub fn accepts_incomplete(&self) -> Result<bool, OsbError> {
        match self.0.get("accepts_incomplete").map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(OsbError::BadRequest(format!(
                "accepts_incomplete must be true or false, not {other:?}"
            ))),
        }
    }
}
