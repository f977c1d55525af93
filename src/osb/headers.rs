//! OSB request headers, as middleware in front of every OSB route: authentication
//! (401), `X-Broker-API-Version` (412 unless 2.13 or later 2.x), the originating identity
//! (decoded, logged, 400 when malformed) and the request identity (echoed back).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tracing::Instrument;

use super::OsbError;
use crate::state::AppState;

pub const API_VERSION: HeaderName = HeaderName::from_static("x-broker-api-version");
pub const ORIGINATING_IDENTITY: HeaderName =
    HeaderName::from_static("x-broker-api-originating-identity");
pub const REQUEST_IDENTITY: HeaderName = HeaderName::from_static("x-broker-api-request-identity");

/// The oldest platform served: 2.13 brought the `context` object the
/// provisioner reads the namespace from. Later minors are served too: "minor API
/// revisions will always be additive" (OSB v2.17, API Version Header), and 412
/// is for a platform too old for what the broker needs.
const MIN_MINOR: u32 = 13;

/// Who the platform says the end user is.
#[derive(Debug, Clone)]
pub struct OriginatingIdentity {
    pub platform: String,
    pub identity: serde_json::Value,
}

pub async fn osb_headers(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_identity = request.headers().get(&REQUEST_IDENTITY).cloned();
    let checked = check(&state, request.headers());
    let mut response = match checked {
        Ok(identity) => {
            let span = tracing::info_span!(
                "osb",
                request_id = request_identity
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
                platform = identity.as_ref().map_or("", |i| i.platform.as_str()),
                user = identity
                    .as_ref()
                    .and_then(|i| user_of(&i.identity))
                    .unwrap_or(""),
            );
            if let Some(identity) = identity {
                request.extensions_mut().insert(identity);
            }
            next.run(request).instrument(span).await
        }
        Err(error) => error.into_response(),
    };
    if let Some(value) = request_identity {
        response.headers_mut().insert(REQUEST_IDENTITY, value);
    }
    response
}

fn check(state: &AppState, headers: &HeaderMap) -> Result<Option<OriginatingIdentity>, OsbError> {
    state
        .auth
        .platform(headers)
        .map_err(|e| OsbError::Unauthorized(e.to_string()))?;
    check_version(once(headers, &API_VERSION)?)?;
    once(headers, &ORIGINATING_IDENTITY)?
        .map(parse_identity)
        .transpose()
}

/// A header's one value: given twice, which one counts would be a guess (a
/// proxy may add one, and the first and the last can disagree).
fn once<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a HeaderValue>, OsbError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    match values.next() {
        None => Ok(first),
        Some(_) => Err(OsbError::BadRequest(format!(
            "{name} is given more than once; send it once"
        ))),
    }
}

fn check_version(value: Option<&HeaderValue>) -> Result<(), OsbError> {
    let supported = format!("send X-Broker-API-Version 2.{MIN_MINOR} or a later 2.x");
    let Some(value) = value else {
        return Err(OsbError::PreconditionFailed(format!(
            "X-Broker-API-Version is missing; {supported}"
        )));
    };
    // Not ASCII is as unsupported as any other text, and quoted as it came.
    let text = String::from_utf8_lossy(value.as_bytes());
    let text = text.trim();
    let minor = text.strip_prefix("2.").and_then(|m| m.parse::<u32>().ok());
    match minor {
        Some(minor) if minor >= MIN_MINOR => Ok(()),
        _ => Err(OsbError::PreconditionFailed(format!(
            "X-Broker-API-Version {text:?} is not supported; {supported}"
        ))),
    }
}

/// `Platform base64(JSON object)`, as the spec defines it.
fn parse_identity(value: &HeaderValue) -> Result<OriginatingIdentity, OsbError> {
    let malformed = |why: &str| {
        OsbError::BadRequest(format!(
            "X-Broker-API-Originating-Identity must be \"<platform> <base64 of a JSON object>\": {why}"
        ))
    };
    let text = value.to_str().map_err(|_| malformed("not ASCII"))?;
    let (platform, encoded) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| malformed("no space"))?;
    if platform.is_empty() {
        return Err(malformed("the platform is empty"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed("the value is not base64"))?;
    let identity: serde_json::Value =
        serde_json::from_slice(&decoded).map_err(|_| malformed("the value is not JSON"))?;
    if !identity.is_object() {
        return Err(malformed("the value is not a JSON object"));
    }
    Ok(OriginatingIdentity {
        platform: platform.to_string(),
        identity,
    })
}

/// Who the identity says the user is, under the keys platforms use for it.
fn user_of(identity: &serde_json::Value) -> Option<&str> {
    ["username", "user_id", "user"]
        .iter()
        .find_map(|key| identity.get(key).and_then(|v| v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_2_13_are_accepted() {
        for good in ["2.13", "2.14", "2.17", "2.18"] {
            assert!(
                check_version(Some(&HeaderValue::from_static(good))).is_ok(),
                "{good}"
            );
        }
        for bad in ["2.12", "2.", "3.0", "two"] {
            assert!(
                check_version(Some(&HeaderValue::from_static(bad))).is_err(),
                "{bad}"
            );
        }
        assert!(check_version(None).is_err());
        let not_ascii = HeaderValue::from_bytes(b"2.1\xe9").expect("header");
        let refusal = check_version(Some(&not_ascii)).expect_err("not ASCII");
        assert!(
            refusal.to_string().contains("is not supported"),
            "{refusal}"
        );
    }

    #[test]
    fn identities_decode_or_are_refused() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"username":"alice"}"#);
        let header = HeaderValue::from_str(&format!("kubernetes {encoded}")).expect("header");
        let identity = parse_identity(&header).expect("valid identity");
        assert_eq!(identity.platform, "kubernetes");
        assert_eq!(user_of(&identity.identity), Some("alice"));
        assert!(parse_identity(&HeaderValue::from_static("kubernetes not-base64!")).is_err());
        assert!(parse_identity(&HeaderValue::from_static("kubernetes")).is_err());
    }
}
