//! Knative's addressing types: object references, destinations (a reference or a
//! URI) and the `address` an addressable object publishes in its status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Invalid;
use super::names::check_name;

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
    /// Knative's CA certificates (PEM) for a TLS destination: kept as written;
    /// deliveries trust the system's roots.
    #[serde(default, rename = "CACerts", skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<String>,
    /// Knative's OIDC audience for the destination: kept as written; deliveries
    /// send no OIDC token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

impl Destination {
    pub fn validate(&self) -> Result<(), Invalid> {
        // A reference names an object, so its name is one (not `../team-a/default`).
        if let Some(reference) = &self.reference
            && !reference.name.is_empty()
        {
            check_name(&reference.name, false).map_err(|e| e.within("ref.name"))?;
        }
        match (&self.reference, &self.uri) {
            (None, None) => Err(Invalid::new("", "needs ref or uri")),
            (Some(reference), _) if reference.name.is_empty() => {
                Err(Invalid::new("ref.name", "must not be empty"))
            }
            (Some(reference), _) if reference.kind.is_empty() => {
                Err(Invalid::new("ref.kind", "must not be empty"))
            }
            (Some(reference), _) if reference.api_version.is_empty() => {
                Err(Invalid::new("ref.apiVersion", "must not be empty"))
            }
            // Resolved against the reference's address, so it must be relative
            // (as Knative refuses an absolute one beside a ref).
            (Some(_), Some(uri)) if !is_relative_reference(uri) => Err(Invalid::new(
                "uri",
                format!("{uri:?} must be a relative reference when ref is given, like /path"),
            )),
            (None, Some(uri)) if !is_absolute_http_uri(uri) => Err(Invalid::new(
                "uri",
                match port_problem(uri) {
                    Some(why) => format!("{uri:?} names no port a delivery could reach: {why}"),
                    None => format!("{uri:?} is not an absolute http(s) URI"),
                },
            )),
            // Deliveries carry no credentials of the URI's (HTTP clients drop
            // them), so they would be lost without a word.
            (None, Some(uri)) if has_userinfo(uri) => Err(Invalid::new(
                "uri",
                "carries credentials (user:password@), which no delivery would send",
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
        && parsed
            .authority()
            .is_some_and(|authority| port_of(authority.as_str()).is_ok())
        && uri.bytes().all(|b| b.is_ascii_graphic())
}

/// The TCP port an authority (`[userinfo@]host[:port]`) names, if any. Err
/// when what follows the host's `:` is no port of 1–65535: the `http` crate
/// reads `:99999` as no port at all, and a delivery would dial 80 instead.
pub fn port_of(authority: &str) -> Result<Option<u16>, String> {
    let host_and_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    // An IPv6 host's colons are inside its brackets.
    let after_host = host_and_port
        .rsplit_once(']')
        .map_or(host_and_port, |(_, rest)| rest);
    match after_host.rsplit_once(':') {
        None | Some((_, "")) => Ok(None),
        Some((_, port)) => match port.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("{port:?} is not a TCP port (1-65535)")),
            Ok(port) => Ok(Some(port)),
        },
    }
}

fn port_problem(uri: &str) -> Option<String> {
    let parsed = uri.parse::<axum::http::Uri>().ok()?;
    port_of(parsed.authority()?.as_str()).err()
}

fn has_userinfo(uri: &str) -> bool {
    uri.parse::<axum::http::Uri>()
        .ok()
        .and_then(|parsed| parsed.authority().map(|a| a.as_str().contains('@')))
        .unwrap_or(false)
}

fn is_relative_reference(uri: &str) -> bool {
    fluent_uri::UriRef::parse(uri).is_ok_and(|r| !r.has_scheme() && !r.has_authority())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_an_object() {
        let to = |name: &str| Destination {
            reference: Some(KReference {
                api_version: "eventing.knative.dev/v1".into(),
                kind: "Broker".into(),
                name: name.into(),
                namespace: None,
            }),
            ..Default::default()
        };
        assert_eq!(to("default").validate(), Ok(()));
        for name in ["../team-a/default", "Default", "a b"] {
            let error = to(name).validate().expect_err(name);
            assert_eq!(error.field, "ref.name", "{name}");
        }
    }

    #[test]
    fn a_port_is_a_tcp_port_or_none() {
        for (authority, port) in [
            ("sink", Ok(None)),
            ("sink:", Ok(None)),
            ("sink:8080", Ok(Some(8080))),
            ("[::1]:65535", Ok(Some(65535))),
            ("[::1]", Ok(None)),
            ("user:pw@sink:81", Ok(Some(81))),
        ] {
            assert_eq!(port_of(authority), port, "{authority}");
        }
        for authority in [
            "sink:99999",
            "sink:0",
            "sink:-1",
            "sink:http",
            "[::1]:65536",
        ] {
            assert!(port_of(authority).is_err(), "{authority}");
        }
        let uri = |uri: &str| Destination {
            reference: None,
            uri: Some(uri.into()),
            ..Default::default()
        };
        let refused = uri("http://127.0.0.1:99999/")
            .validate()
            .expect_err("refused");
        assert_eq!(refused.field, "uri");
        assert!(
            refused.message.contains("not a TCP port"),
            "{}",
            refused.message
        );
        assert!(uri("http://127.0.0.1:8080/").validate().is_ok());
    }

    #[test]
    fn a_reference_needs_its_api_version_and_takes_only_a_relative_uri() {
        let destination = |value: serde_json::Value| -> Destination {
            serde_json::from_value(value).expect("destination")
        };
        let broker = serde_json::json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b"});
        for (uri, field) in [
            (None, None),
            (Some("/extra"), None),
            (Some("extra?q=1"), None),
            (Some("http://elsewhere/x"), Some("uri")),
            (Some("//elsewhere/x"), Some("uri")),
            (Some("a b"), Some("uri")),
        ] {
            let result = destination(serde_json::json!({"ref": broker, "uri": uri})).validate();
            assert_eq!(
                result.map_err(|e| e.field).err().as_deref(),
                field,
                "{uri:?}"
            );
        }
        let unversioned = destination(serde_json::json!({"ref": {"kind": "Broker", "name": "b"}}));
        assert_eq!(
            unversioned.validate().map_err(|e| e.field).err().as_deref(),
            Some("ref.apiVersion")
        );
    }

    #[test]
    fn a_uri_with_credentials_is_refused() {
        let destination = |uri: &str| -> Destination {
            serde_json::from_value(serde_json::json!({"uri": uri})).expect("destination")
        };
        let refused = destination("http://user:secret@sink/").validate();
        assert_eq!(refused.map_err(|e| e.field).err().as_deref(), Some("uri"));
        assert!(destination("http://user@sink:8080/").validate().is_err());
        assert!(destination("http://sink/path@x?q=a@b").validate().is_ok());
    }

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
