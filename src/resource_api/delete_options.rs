//! A DELETE's options, as a Kubernetes API server takes them: an optional
//! `DeleteOptions` body (JSON or YAML, bounded as every body) and the same
//! fields as query parameters, the body's winning. `preconditions` are
//! honoured (a mismatch is 409 and nothing is deleted), `dryRun` as on every
//! write; `propagationPolicy` and `gracePeriodSeconds` are checked and change
//! nothing: a deletion here is immediate and takes with it what its object's
//! controllers made, whatever the policy (the README says so to users).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use kube::ResourceExt;
use kube::core::DynamicObject;
use serde::Deserialize;

use super::ApiError;
use super::body::read_optional_object;
use super::dry_run::Commit;
use crate::resources::KindSpec;

pub struct DeleteOptions {
    pub commit: Commit,
    pub preconditions: Preconditions,
}

/// What the object must still be for the delete to go ahead.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// The `DeleteOptions` fields this server reads; others (`apiVersion`,
/// `orphanDependents`, …) are let through, as Kubernetes lets them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Given {
    kind: Option<String>,
    preconditions: Option<Preconditions>,
    propagation_policy: Option<String>,
    /// Read only so that a value that is not an integer is refused.
    #[serde(rename = "gracePeriodSeconds")]
    _grace_period_seconds: Option<i64>,
    dry_run: Option<Vec<String>>,
}

const POLICIES: [&str; 3] = ["Foreground", "Background", "Orphan"];

impl DeleteOptions {
    pub async fn read(
        query: &[(String, String)],
        headers: &HeaderMap,
        body: Body,
        limit: usize,
    ) -> Result<Self, ApiError> {
        let from_query = Commit::from_query(query)?;
        for (key, value) in query {
            match key.as_str() {
                "propagationPolicy" => check_policy(value)?,
                "gracePeriodSeconds" if value.parse::<i64>().is_err() => {
                    return Err(ApiError::bad_request(format!(
                        "gracePeriodSeconds {value:?} is not an integer"
                    )));
                }
                _ => {}
            }
        }
        let given = match read_optional_object(headers, body, limit).await? {
            Some(value) => serde_json::from_value::<Given>(value).map_err(|e| {
                ApiError::bad_request(format!("the body is not a DeleteOptions: {e}"))
            })?,
            None => Given::default(),
        };
        if let Some(kind) = given.kind.as_deref().filter(|k| *k != "DeleteOptions") {
            return Err(ApiError::bad_request(format!(
                "the body of a DELETE is a DeleteOptions, not a {kind}"
            )));
        }
        if let Some(policy) = &given.propagation_policy {
            check_policy(policy)?;
        }
        let from_body = Commit::from_values(given.dry_run.iter().flatten().map(String::as_str))?;
        Ok(Self {
            commit: from_query.or(from_body),
            preconditions: given.preconditions.unwrap_or_default(),
        })
    }
}

fn check_policy(policy: &str) -> Result<(), ApiError> {
    if POLICIES.contains(&policy) {
        return Ok(());
    }
    Err(ApiError::unsupported_option(
        "propagationPolicy",
        policy,
        &POLICIES.map(|policy| format!("{policy:?}")).join(", "),
    ))
}

impl Preconditions {
    pub fn is_empty(&self) -> bool {
        self.uid.is_none() && self.resource_version.is_none()
    }

    /// 409 naming the first precondition `object` does not meet.
    pub fn check(&self, kind: &KindSpec, object: &DynamicObject) -> Result<(), ApiError> {
        let held = [
            ("uid", &self.uid, object.metadata.uid.as_ref()),
            (
                "resourceVersion",
                &self.resource_version,
                object.metadata.resource_version.as_ref(),
            ),
        ];
        for (field, wanted, actual) in held {
            let Some(wanted) = wanted else { continue };
            if Some(wanted) != actual {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "precondition failed: preconditions.{field} is {wanted:?} but {} {:?} has {field} {:?}; nothing was deleted",
                        kind.kind,
                        object.name_any(),
                        actual.map_or("", String::as_str),
                    ),
                ));
            }
        }
        Ok(())
    }
}
