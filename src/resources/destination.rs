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

/// An absolute `http://` or `https://` URI with a host, that parses as an HTTP
/// request target: no spaces, no CR/LF, brackets closed (`http://[::1` is not one).
/// Refused at write, so nothing shows Ready that cannot be sent to.
pub fn is_absolute_http_uri(uri: &str) -> bool {
    let Ok(parsed) = uri.parse::<axum::http::Uri>() else {
        return false;
    };
    matches!(parsed.scheme_str(), Some("http" | "https"))
        && parsed.host().is_some_and(|host| !host.is_empty())
        && uri.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_uris_that_can_be_requested_are_accepted() {
        for (uri, ok) in [
            ("http://sink.team-a.svc.cluster.local/path?q=1", true),
            ("https://127.0.0.1:8443/", true),
            ("http://[::1]:9090/", true),
            ("http://[::1", false),
            ("http://h:1/a b", false),
            ("http://h:1/a\r\nInjected: 1", false),
            ("http://h/\n", false),
            ("ftp://h/", false),
            ("http:///path", false),
            ("/relative", false),
            ("http://", false),
        ] {
            assert_eq!(is_absolute_http_uri(uri), ok, "{uri:?}");
        }
    }
}
