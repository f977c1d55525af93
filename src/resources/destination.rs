//! Knative's addressing types: object references, destinations (a reference or a
//! URI) and the `address` an addressable object publishes in its status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Invalid;

/// A reference to another object, as Knative writes it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KReference {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Where events go: an object reference, a URI, or a reference plus a relative URI.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<KReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl Destination {
    pub fn validate(&self) -> Result<(), Invalid> {
        match (&self.reference, &self.uri) {
            (None, None) => Err(Invalid::new("", "needs ref or uri")),
            (Some(reference), _) if reference.name.is_empty() => {
                Err(Invalid::new("ref.name", "must not be empty"))
            }
            (Some(reference), _) if reference.kind.is_empty() => {
                Err(Invalid::new("ref.kind", "must not be empty"))
            }
            (None, Some(uri)) if !is_absolute_http_uri(uri) => Err(Invalid::new(
                "uri",
                format!("{uri:?} is not an absolute http(s) URI"),
            )),
            _ => Ok(()),
        }
    }
}

/// The `status.address` of an addressable object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct Addressable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

pub fn is_absolute_http_uri(uri: &str) -> bool {
    let rest = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}
