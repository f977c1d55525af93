//! A list's and a watch's query, checked as a Kubernetes API server checks
//! it: what is not understood is refused rather than ignored.

use std::time::Duration;

use serde::Deserialize;

use super::ApiError;
use crate::resources::{Invalid, Refusal};
use crate::store::StoreError;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub watch: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<String>,
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
    pub timeout_seconds: Option<String>,
}

/// A list is answered whole (no `continue`), which a client asking for a
/// `limit` reads as the last page; a limit that is not a count is refused
/// rather than ignored.
pub fn check_limit(limit: Option<&str>) -> Result<(), ApiError> {
    match limit {
        Some(limit) if limit.parse::<u64>().is_err() => Err(ApiError::bad_request(format!(
            "limit {limit:?} is not a non-negative integer"
        ))),
        _ => Ok(()),
    }
}

/// A list is always read at the latest revision, which is never older than
/// any `resourceVersion` asked for ("not older than", Kubernetes' default);
/// one that is no revision at all is refused, as a watch from it is.
pub fn check_list_version(resource_version: Option<&str>) -> Result<(), ApiError> {
    match resource_version {
        Some(version) if !version.is_empty() && version.parse::<u64>().is_err() => {
            Err(StoreError::Invalid(Invalid::new(
                "resourceVersion",
                format!("{version:?} is not a resourceVersion"),
            ))
            .into())
        }
        _ => Ok(()),
    }
}

/// `watch` as Go's `strconv.ParseBool` reads it, as a Kubernetes API server
/// does: anything else is refused rather than taken as false.
pub fn watch_asked(watch: Option<&str>) -> Result<bool, ApiError> {
    match watch.unwrap_or_default() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "watch {other:?} is not a boolean"
        ))),
    }
}

/// How long a watch may last (`timeoutSeconds`; 0 is no limit): it then
/// ends, and the client opens it again from the last version it saw, as a
/// Kubernetes API server's watch does.
pub fn watch_timeout(seconds: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let Some(text) = seconds else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(seconds) => Ok(Some(Duration::from_secs(seconds))),
        Err(_) => Err(ApiError::bad_request(format!(
            "timeoutSeconds {text:?} is not a non-negative integer"
        ))),
    }
}

/// `resourceVersionMatch` is a list's: a watch that names one is refused,
/// as a Kubernetes API server refuses it (without `sendInitialEvents`,
/// which this server does not take).
pub fn check_watch_version_match(matching: Option<&str>) -> Result<(), ApiError> {
    match matching {
        Some(matching) if !matching.is_empty() => Err(ApiError::refused(Refusal::Invalid(
            Invalid::new("resourceVersionMatch", "is forbidden for watch"),
        ))),
        _ => Ok(()),
    }
}

/// A list is answered whole, so this server hands out no `continue` token:
/// one sent is not one of its own (Kubernetes answers such a token 400).
pub fn check_continue(token: Option<&str>) -> Result<(), ApiError> {
    match token {
        Some(token) if !token.is_empty() => Err(ApiError::bad_request(format!(
            "continue {token:?} is not a continue token this server gave"
        ))),
        _ => Ok(()),
    }
}

/// How a list's `resourceVersion` is to be read (`resourceVersionMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    NotOlderThan,
    Exact,
}

impl VersionMatch {
    /// As Kubernetes reads it: only with a `resourceVersion`, `Exact` not at "0".
    pub fn of(resource_version: Option<&str>, matching: Option<&str>) -> Result<Self, ApiError> {
        let invalid = |message: &str| {
            ApiError::refused(Refusal::Invalid(Invalid::new(
                "resourceVersionMatch",
                message,
            )))
        };
        let version = resource_version.filter(|v| !v.is_empty());
        let matching = match matching.unwrap_or_default() {
            "" => return Ok(Self::NotOlderThan),
            "NotOlderThan" => Self::NotOlderThan,
            "Exact" => Self::Exact,
            other => {
                return Err(ApiError::unsupported_option(
                    "resourceVersionMatch",
                    other,
                    "\"Exact\", \"NotOlderThan\"",
                ));
            }
        };
        match version {
            None => Err(invalid("is forbidden unless resourceVersion is provided")),
            Some("0") if matching == Self::Exact => {
                Err(invalid("\"Exact\" is forbidden for resourceVersion \"0\""))
            }
            Some(_) => Ok(matching),
        }
    }

    /// Whether a list read at revision `current` answers what was asked.
    /// A revision not yet reached is 504, as a Kubernetes API server answers
    /// once it has waited for it; this store serves only its latest revision,
    /// so an older one asked for exactly is gone (410).
    pub fn check(self, asked: Option<&str>, current: &str) -> Result<(), ApiError> {
        let (Some(asked), Ok(current)) = (
            asked.and_then(|v| v.parse::<u64>().ok()),
            current.parse::<u64>(),
        ) else {
            return Ok(());
        };
        if asked > current {
            return Err(StoreError::TooLarge { asked, current }.into());
        }
        if self == Self::Exact && asked != current && asked != 0 {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "Expired",
                format!(
                    "resourceVersion {asked} is gone: lists are served at the latest, {current}"
                ),
            ));
        }
        Ok(())
    }
}
