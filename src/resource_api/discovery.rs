//! API discovery, as Kubernetes clients (kubectl, client-go, kube-rs) ask for
//! it before anything else: `/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/{group}` and `/apis/{group}/{version}`, in the legacy (unaggregated)
//! form every client falls back to. Built from the kinds this server serves;
//! any authenticated caller may read it, as on a Kubernetes API server.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::ApiError;
use super::body::respond;
use crate::resources::{KindSpec, kind_of, kinds};
use crate::state::AppState;

/// The Kubernetes API version whose types meshbroker's core kinds follow.
const KUBERNETES_MINOR: &str = "33";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/version", get(version))
        .route("/api", get(core_versions))
        .route("/api/v1", get(core_resources))
        .route("/apis", get(groups))
        .route("/apis/{group}", get(group))
        .route("/apis/{group}/{version}", get(group_resources))
}

fn authenticated(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    state.auth.bearer(headers)?;
    Ok(())
}

async fn version(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authenticated(&state, &headers)?;
    let body = json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-meshbroker.{}", env!("CARGO_PKG_VERSION")),
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    });
    Ok(respond(StatusCode::OK, &headers, &body))
}

async fn core_versions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticated(&state, &headers)?;
    let body = json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []});
    Ok(respond(StatusCode::OK, &headers, &body))
}

async fn core_resources(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticated(&state, &headers)?;
    Ok(respond(StatusCode::OK, &headers, &resource_list("", "v1")))
}

async fn groups(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authenticated(&state, &headers)?;
    let groups: Vec<Value> = versions_by_group()
        .into_iter()
        .map(|(name, versions)| api_group(name, &versions))
        .collect();
    let body = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups});
    Ok(respond(StatusCode::OK, &headers, &body))
}

async fn group(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticated(&state, &headers)?;
    let versions = versions_by_group()
        .remove(name.as_str())
        .ok_or_else(|| ApiError::not_found(format!("the server does not serve group {name}")))?;
    let mut body = api_group(&name, &versions);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(respond(StatusCode::OK, &headers, &body))
}

async fn group_resources(
    State(state): State<AppState>,
    Path((group, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticated(&state, &headers)?;
    let served = kinds()
        .iter()
        .any(|k| k.group == group && k.version == version);
    if !served {
        return Err(ApiError::not_found(format!(
            "the server does not serve {group}/{version}"
        )));
    }
    Ok(respond(
        StatusCode::OK,
        &headers,
        &resource_list(&group, &version),
    ))
}

/// Each served group (the core group aside) with its versions.
fn versions_by_group() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for kind in kinds().iter().filter(|k| !k.group.is_empty()) {
        let versions = groups.entry(kind.group.as_str()).or_default();
        if !versions.contains(&kind.version.as_str()) {
            versions.push(kind.version.as_str());
        }
    }
    groups
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let version = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(|v| version(v)).collect::<Vec<_>>(),
        "preferredVersion": version(versions.first().copied().unwrap_or_default()),
    })
}

fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = kinds()
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(resource)
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": kinds()
            .iter()
            .find(|k| k.group == group && k.version == version)
            .map(KindSpec::api_version)
            .unwrap_or_else(|| version.to_string()),
        "resources": resources,
    })
}

fn resource(kind: &KindSpec) -> Value {
    // An AccessToken's token is issued once: it is created and deleted, never changed.
    let verbs: &[&str] = if std::ptr::eq(kind, kind_of::<crate::resources::AccessToken>()) {
        &["create", "delete", "get", "list", "watch"]
    } else {
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ]
    };
    let short_names: &[&str] = if kind.group.is_empty() && kind.kind == "Namespace" {
        &["ns"]
    } else {
        &[]
    };
    json!({
        "name": kind.plural,
        "singularName": kind.kind.to_ascii_lowercase(),
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": verbs,
        "shortNames": short_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_is_discoverable_under_its_group_version() {
        for kind in kinds() {
            let list = resource_list(&kind.group, &kind.version);
            assert_eq!(list["groupVersion"], kind.api_version());
            let listed = list["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .any(|r| r["name"] == kind.plural.as_str() && r["kind"] == kind.kind.as_str());
            assert!(listed, "{} missing from {list}", kind.kind);
            if !kind.group.is_empty() {
                assert!(versions_by_group()[kind.group.as_str()].contains(&kind.version.as_str()));
            }
        }
    }
}
