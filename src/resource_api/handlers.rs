//! The resource API's handlers. Each runs: authenticate → resolve the path →
//! authorize → decode, default and validate the body (a replace also against the
//! stored object's immutable fields) → one store call, or its dry run → answer.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kube::ResourceExt;
use kube::core::DynamicObject;
use serde_json::{Value, json};

use super::ApiError;
use super::access::{Intent, authorize};
use super::body::{WrittenObject, read_object, respond};
use super::credentials;
use super::delete_options::DeleteOptions;
use super::dry_run::Commit;
use super::duplicate_fields::Duplicates;
use super::fields::FieldSelector;
use super::generate_name::name_if_generated;
use super::list_query::{
    ListQuery, VersionMatch, check_continue, check_limit, check_list_version,
    check_watch_version_match, watch_asked, watch_timeout,
};
use super::patch::read_patch;
use super::quota;
use super::references::stay_in_namespace;
use super::service_ids::refuse_claimed_service_ids;
use super::target::Target;
use super::unknown_fields::{FieldValidation, Warnings};
use super::watch::watch_response;
use crate::auth::{Caller, generate_token, sha256_hex, until_revoked};
use crate::config::{DataplaneKind, StoreKind};
use crate::resources::{
    AccessToken, Application, Defaults, Invalid, Refusal, kind_of, labels, namespace_kind,
};
use crate::state::AppState;
use crate::store::{LabelSelector, StoreError, WatchStream};

/// A write's query: `dryRun` (and what else a client sends, such as
/// `fieldManager`, read by nobody).
type WriteQuery = Query<Vec<(String, String)>>;

fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    Ok(state.auth.bearer(headers)?)
}

/// The defaults of this server: a Broker gets the class its dataplane serves.
fn defaults(state: &AppState) -> Defaults {
    Defaults {
        broker_class: labels::broker_class(state.config.dataplane == DataplaneKind::Embedded),
    }
}

pub(super) fn resolve(
    state: &AppState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    intent: Intent,
) -> Result<(Caller, Target), ApiError> {
    let caller = caller(state, headers)?;
    let target = Target::from_path(params)?;
    authorize(&caller, &target, intent)?;
    Ok((caller, target))
}

/// A namespace token watches nothing from before it was issued, as if the
/// log were compacted there: a namespace deleted and created again under its
/// name leaves the changes of its old objects — another tenant's — in the log.
fn watched_before_the_token(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    asked: Option<&str>,
) -> Option<StoreError> {
    if !matches!(caller, Caller::Namespace(_)) {
        return None;
    }
    let asked: u64 = asked?.parse().ok()?;
    let issued_at = state.auth.token_issued_at(headers)?;
    (asked != 0 && asked < issued_at).then(|| {
        StoreError::Expired(format!(
            "{asked} (before the token watching was issued, at {issued_at})"
        ))
    })
}

pub async fn list(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (caller, target) = resolve(&state, &headers, &params, Intent::Read)?;
    let selector = LabelSelector::parse(query.label_selector.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(query.field_selector.as_deref().unwrap_or_default())?;
    check_limit(query.limit.as_deref())?;
    check_continue(query.continue_token.as_deref())?;
    let timeout = watch_timeout(query.timeout_seconds.as_deref())?;
    if watch_asked(query.watch.as_deref())? {
        check_watch_version_match(query.resource_version_match.as_deref())?;
        let slot = caller
            .take_watch_slot(&state.watch_slots)
            .map_err(ApiError::too_many_open)?;
        let asked = query.resource_version.as_deref();
        let started = match watched_before_the_token(&state, &headers, &caller, asked) {
            Some(expired) => Err(expired),
            None => {
                let namespace = target.namespace.as_deref();
                let store = state.store.raw();
                store.watch(target.kind, namespace, &selector, asked).await
            }
        };
        let stream = match started {
            Ok(stream) => stream,
            // As the API server's watch cache answers it: 200, and the one
            // event that says to list again.
            Err(expired @ StoreError::Expired(_)) => {
                let only: WatchStream = Box::pin(futures::stream::once(async { Err(expired) }));
                return Ok(watch_response(only, std::future::pending()));
            }
            Err(error) => return Err(error.into()),
        };
        let revoked = until_revoked(
            state.auth.clone(),
            headers.clone(),
            caller,
            state.shutdown.clone(),
        );
        let ends = async move {
            // The watch's place is given back when it ends.
            let _slot = slot;
            match timeout {
                Some(timeout) => {
                    let _ = tokio::time::timeout(timeout, revoked).await;
                }
                None => revoked.await,
            }
        };
        return Ok(watch_response(fields.retain(stream), ends));
    }
    check_list_version(query.resource_version.as_deref())?;
    // A list being sent holds a copy of all it lists until its reader took it.
    let slot = caller
        .take_watch_slot(&state.list_slots)
        .map_err(ApiError::too_many_open)?;
    let matching = VersionMatch::of(
        query.resource_version.as_deref(),
        query.resource_version_match.as_deref(),
    )?;
    let mut list = state
        .store
        .raw()
        .list(target.kind, target.namespace.as_deref(), &selector)
        .await?;
    matching.check(query.resource_version.as_deref(), &list.resource_version)?;
    list.items.retain(|object| fields.matches(object));
    let body = json!({
        "apiVersion": target.kind.api_version(),
        "kind": format!("{}List", target.kind.kind),
        "metadata": { "resourceVersion": list.resource_version },
        "items": list.items,
    });
    let (parts, body) = respond(StatusCode::OK, &headers, &body).into_parts();
    let sent = futures::StreamExt::map(body.into_data_stream(), move |chunk| {
        let _held = &slot;
        chunk
    });
    Ok(Response::from_parts(parts, Body::from_stream(sent)))
}

pub async fn get(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, target) = resolve(&state, &headers, &params, Intent::Read)?;
    let object = state
        .store
        .raw()
        .get(target.kind, target.namespace.as_deref(), target.name())
        .await?;
    Ok(respond(StatusCode::OK, &headers, &object))
}

pub async fn create(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): WriteQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (caller, target) = resolve(&state, &headers, &params, Intent::Write)?;
    let commit = Commit::from_query(&query)?;
    if target.kind.namespaced && target.namespace.is_none() {
        return Err(ApiError::method_not_allowed(format!(
            "create a {} under /apis/{}/namespaces/{{namespace}}/{}",
            target.kind.kind,
            target.kind.api_version(),
            target.kind.plural
        )));
    }
    let validation = FieldValidation::from_query(&query)?;
    let WrittenObject {
        mut value,
        duplicates,
    } = read_object(&headers, body, state.config.max_body_bytes).await?;
    let warnings = drop_unknown_fields(&state, validation, &target, &mut value, &duplicates)?;
    place(&mut value, &target, None)?;
    if let Some(object) = value.as_object_mut() {
        // Status belongs to the controllers; a creator cannot set it.
        object.remove("status");
    }
    target.kind.apply_defaults(&mut value, &defaults(&state));
    target.kind.validate(&value).map_err(ApiError::refused)?;
    stay_in_namespace(
        &caller,
        &target,
        &value,
        &state.config.integration_namespace,
    )?;
    refuse_integration_namespace_token(&state, &target, &value)?;
    refuse_claimed_service_ids(&state, &target, &value).await?;
    let is_application = std::ptr::eq(target.kind, kind_of::<Application>());
    if is_application {
        let integration = &state.config.integration_namespace;
        let name = value.pointer("/metadata/name").and_then(Value::as_str);
        credentials::check_name_free(&state.store, integration, name.unwrap_or_default()).await?;
    }
    let issued = issue_token_if_access_token(&target, &mut value)?;
    quota::check_room(&state, &caller, value.to_string().len()).await?;
    let object = commit
        .create(state.store.raw().as_ref(), target.kind, decode(value)?)
        .await?;
    let mut answer = serde_json::to_value(&object).map_err(internal)?;
    if let Some(token) = issued {
        answer["status"]["token"] = Value::String(token);
    }
    if is_application {
        credential_for(&state, &object.name_any(), commit, &mut answer).await?;
    }
    Ok(warnings.attach(respond(StatusCode::CREATED, &headers, &answer)))
}

/// An Application registered (by a POST, or a PUT that creates it) gets its
/// event credential, shown once in the answer; the one it replaces stops
/// working before the answer.
async fn credential_for(
    state: &AppState,
    application: &str,
    commit: Commit,
    answer: &mut Value,
) -> Result<(), ApiError> {
    let integration = &state.config.integration_namespace;
    let (credential, replaced) =
        credentials::issue(&state.store, integration, application, commit).await?;
    if let Some(replaced) = replaced {
        state.auth.tokens().forget(|digest, _| digest == replaced);
    }
    answer["status"]["credential"] = credential;
    Ok(())
}

pub async fn replace(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): WriteQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (caller, target) = resolve(&state, &headers, &params, Intent::Write)?;
    let commit = Commit::from_query(&query)?;
    refuse_access_token_change(&target)?;
    let validation = FieldValidation::from_query(&query)?;
    let WrittenObject {
        mut value,
        duplicates,
    } = read_object(&headers, body, state.config.max_body_bytes).await?;
    let warnings = drop_unknown_fields(&state, validation, &target, &mut value, &duplicates)?;
    let write = Whole {
        upsert: Upsert::Allowed,
        commit,
    };
    let written = write_whole(&state, &headers, &caller, &target, value, write).await?;
    Ok(warnings.attach(written))
}

/// `PATCH`: the stored object with the patch applied, then written as a
/// replace is (defaults, validation, immutable fields). A patch that names no
/// `resourceVersion` is applied again to the newer object when another write
/// got in between, as the Kubernetes API server does.
pub async fn patch(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): WriteQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (caller, target) = resolve(&state, &headers, &params, Intent::Write)?;
    let commit = Commit::from_query(&query)?;
    refuse_access_token_change(&target)?;
    let validation = FieldValidation::from_query(&query)?;
    let (patch, duplicates) =
        read_patch(&headers, body, target.kind, state.config.max_body_bytes).await?;
    let mut attempts = PATCH_ATTEMPTS;
    loop {
        let stored = state
            .store
            .raw()
            .get(target.kind, target.namespace.as_deref(), target.name())
            .await?;
        let mut value = serde_json::to_value(&stored).map_err(internal)?;
        // What an older meshbroker stored unpruned is not the patch's doing.
        drop_unknown_fields(
            &state,
            FieldValidation::Ignore,
            &target,
            &mut value,
            &Duplicates::default(),
        )?;
        patch.apply(&mut value, state.config.max_body_bytes)?;
        let warnings = drop_unknown_fields(&state, validation, &target, &mut value, &duplicates)?;
        let write = Whole {
            upsert: Upsert::Refused,
            commit,
        };
        let written = write_whole(&state, &headers, &caller, &target, value, write).await;
        match written.map(|response| warnings.attach(response)) {
            Err(error)
                if error.code == StatusCode::CONFLICT && !patch.pins_version() && attempts > 1 =>
            {
                attempts -= 1;
                // Writers racing for one object: step aside a little longer
                // each time, so the next read is likely the last one.
                let lost = PATCH_ATTEMPTS - attempts;
                tokio::time::sleep(std::time::Duration::from_millis(lost as u64)).await;
            }
            other => return other,
        }
    }
}

/// How often a patch is applied again after losing a race with another write
/// (the cost of each is bounded, see `patch`).
const PATCH_ATTEMPTS: usize = 32;

fn refuse_access_token_change(target: &Target) -> Result<(), ApiError> {
    if std::ptr::eq(target.kind, kind_of::<AccessToken>()) {
        return Err(ApiError::method_not_allowed(
            "an AccessToken cannot be changed; delete it and create a new one",
        ));
    }
    Ok(())
}

/// Whether writing a whole object may create it (a PUT may; a PATCH of an
/// object deleted meanwhile may not bring it back).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upsert {
    Allowed,
    Refused,
}

/// How a whole object is written: whether it may be created, whether stored.
#[derive(Clone, Copy)]
struct Whole {
    upsert: Upsert,
    commit: Commit,
}

async fn write_whole(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    target: &Target,
    mut value: Value,
    Whole { upsert, commit }: Whole,
) -> Result<Response, ApiError> {
    place(&mut value, target, Some(target.name()))?;
    target.kind.apply_defaults(&mut value, &defaults(state));
    target.kind.validate(&value).map_err(ApiError::refused)?;
    stay_in_namespace(caller, target, &value, &state.config.integration_namespace)?;
    refuse_claimed_service_ids(state, target, &value).await?;
    let store = state.store.raw();
    let existing = match store
        .get(target.kind, target.namespace.as_deref(), target.name())
        .await
    {
        Ok(existing) => Some(existing),
        Err(error) if error.is_not_found() => None,
        Err(error) => return Err(error.into()),
    };
    if let Some(existing) = &existing {
        refuse_unconditional_update(target, &value)?;
        let stored = serde_json::to_value(existing).map_err(internal)?;
        target
            .kind
            .check_update(&stored, &value)
            .map_err(ApiError::refused)?;
    }
    let mut object = decode(value)?;
    let Some(existing) = existing else {
        if upsert == Upsert::Refused {
            return Err(ApiError::not_found(format!(
                "{} {:?} was deleted",
                target.kind.kind,
                target.name()
            )));
        }
        object.data.as_object_mut().map(|o| o.remove("status"));
        let size = serde_json::to_vec(&object).map_err(internal)?.len();
        quota::check_room(state, caller, size).await?;
        let is_application = std::ptr::eq(target.kind, kind_of::<Application>());
        if is_application {
            let integration = &state.config.integration_namespace;
            credentials::check_name_free(&state.store, integration, target.name()).await?;
        }
        let created = commit.create(store.as_ref(), target.kind, object).await?;
        let mut answer = serde_json::to_value(&created).map_err(internal)?;
        if is_application {
            credential_for(state, target.name(), commit, &mut answer).await?;
        }
        return Ok(respond(StatusCode::CREATED, headers, &answer));
    };
    // Status belongs to the controllers: a replace keeps what they wrote.
    match (object.data.as_object_mut(), existing.data.get("status")) {
        (Some(fields), Some(status)) => {
            fields.insert("status".into(), status.clone());
        }
        (Some(fields), None) => {
            fields.remove("status");
        }
        _ => {}
    }
    let replaced = commit.replace(store.as_ref(), target.kind, object).await?;
    Ok(respond(StatusCode::OK, headers, &replaced))
}

/// `DELETE`, with its `DeleteOptions` (see `delete_options`). Preconditions
/// are checked on the object as read, and the delete is pinned to that
/// object's resourceVersion, so an object replaced in between (even by one of
/// the same name with a new uid) is a 409, not deleted.
pub async fn delete(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(query): WriteQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (_, target) = resolve(&state, &headers, &params, Intent::Write)?;
    let options = DeleteOptions::read(&query, &headers, body, state.config.max_body_bytes).await?;
    let integration = &state.config.integration_namespace;
    if std::ptr::eq(target.kind, namespace_kind()) && target.name() == integration {
        // Deleting it would take every Application's Channel and credential
        // with it, and leave new registrations half made.
        return Err(ApiError::forbidden(format!(
            "namespace {integration:?} is meshbroker's integration namespace (the Applications' Channels and credentials); it may not be deleted"
        )));
    }
    let store = state.store.raw();
    let namespace = target.namespace.as_deref();
    let pinned = if options.preconditions.is_empty() {
        None
    } else {
        let stored = store.get(target.kind, namespace, target.name()).await?;
        options.preconditions.check(target.kind, &stored)?;
        stored.metadata.resource_version
    };
    let deleted = options
        .commit
        .delete(
            store.as_ref(),
            target.kind,
            namespace,
            target.name(),
            pinned.as_deref(),
        )
        .await?;
    if !options.commit.is_dry_run() {
        super::revoke::after_delete(&state, target.kind, &deleted).await?;
    }
    Ok(respond(StatusCode::OK, &headers, &deleted))
}

/// The integration namespace holds the Applications' Channels: a namespace token
/// for it would let its holder subscribe to every Application's events and hand
/// forged ones into their Channels. Only Application credentials
/// (`spec.application`) are issued there; the administrator's token writes the rest.
fn refuse_integration_namespace_token(
    state: &AppState,
    target: &Target,
    value: &Value,
) -> Result<(), ApiError> {
    let integration = &state.config.integration_namespace;
    let application = value["spec"]["application"].as_str().unwrap_or_default();
    if std::ptr::eq(target.kind, kind_of::<AccessToken>())
        && target.namespace.as_deref() == Some(integration.as_str())
        && application.is_empty()
    {
        return Err(ApiError::forbidden(format!(
            "no namespace token is issued for {integration:?}, meshbroker's integration namespace (its holder could read and forge every Application's events); an AccessToken here names spec.application, and the administrator's token writes the rest"
        )));
    }
    Ok(())
}

/// Fields the kind does not declare (see `unknown_fields`), and those the
/// body gave twice. On a Kubernetes API server Knative's kinds are pruned by
/// the CRDs it serves, which may be Knative's own (with `--dataplane
/// knative`), wider than meshbroker's: only the kinds that are meshbroker's
/// alone are pruned here. A duplicate is gone once the body is read, so only
/// here can it be named.
fn drop_unknown_fields(
    state: &AppState,
    validation: FieldValidation,
    target: &Target,
    value: &mut Value,
    duplicates: &Duplicates,
) -> Result<Warnings, ApiError> {
    let knative = target.kind.group.ends_with(".knative.dev");
    if state.config.store == StoreKind::Kube && knative {
        return validation.report(target.kind, &[], duplicates);
    }
    validation.prune(target.kind, value, duplicates)
}

/// A custom resource is replaced only at the `resourceVersion` its writer
/// read, as on a Kubernetes API server (a Namespace, built in, may be
/// replaced blind): a writer that names none would undo what others wrote.
fn refuse_unconditional_update(target: &Target, value: &Value) -> Result<(), ApiError> {
    let named = value["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|version| !version.is_empty());
    if named || std::ptr::eq(target.kind, namespace_kind()) {
        return Ok(());
    }
    Err(ApiError::refused(Refusal::Invalid(Invalid::new(
        "metadata.resourceVersion",
        "must be specified for an update (read the object, change it, write it back)",
    ))))
}

/// Fills the namespace (and name) from the path, refusing a body that names others;
/// a custom resource without `spec` gets an empty one, as `kubectl apply` allows.
fn place(value: &mut Value, target: &Target, path_name: Option<&str>) -> Result<(), ApiError> {
    let fields = value
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body must be an object"))?;
    if !target.kind.group.is_empty() {
        fields.entry("spec").or_insert_with(|| json!({}));
    }
    let metadata = fields.entry("metadata").or_insert_with(|| json!({}));
    let Some(metadata) = metadata.as_object_mut() else {
        return Err(ApiError::bad_request("metadata must be an object"));
    };
    if let Some(namespace) = &target.namespace {
        match metadata.get("namespace").and_then(Value::as_str) {
            Some(given) if given != namespace => {
                return Err(ApiError::bad_request(format!(
                    "metadata.namespace {given:?} does not match the namespace {namespace:?} in the path"
                )));
            }
            _ => {
                metadata.insert("namespace".into(), Value::String(namespace.clone()));
            }
        }
    }
    // Only a delete starts a deletion (a Kubernetes API server refuses
    // changes to these on update too).
    for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        metadata.remove(field);
    }
    if let Some(name) = path_name {
        match metadata.get("name").and_then(Value::as_str) {
            Some(given) if given != name => {
                return Err(ApiError::bad_request(format!(
                    "metadata.name {given:?} does not match the name {name:?} in the path"
                )));
            }
            _ => {
                metadata.insert("name".into(), Value::String(name.to_string()));
            }
        }
    } else {
        // Set by the store; a client cannot choose them on create.
        for field in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
            metadata.remove(field);
        }
        name_if_generated(metadata);
    }
    Ok(())
}

/// An AccessToken gets a fresh token: its digest is stored, the token returned
/// once. Its prefix says what it opens: an Application's ingress (`mbapp_`, as
/// the credential issued at registration) or a namespace (`mbns_`).
fn issue_token_if_access_token(
    target: &Target,
    value: &mut Value,
) -> Result<Option<String>, ApiError> {
    if !std::ptr::eq(target.kind, kind_of::<AccessToken>()) {
        return Ok(None);
    }
    let for_application = value
        .pointer("/spec/application")
        .and_then(Value::as_str)
        .is_some_and(|a| !a.is_empty());
    let prefix = if for_application { "mbapp_" } else { "mbns_" };
    let token = generate_token(prefix).map_err(internal)?;
    value["status"] = json!({ "tokenSha256": sha256_hex(&token) });
    Ok(Some(token))
}

fn decode(value: Value) -> Result<DynamicObject, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("metadata: {e}")))
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "resource API failure");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "internal error; see the server log",
    )
}
