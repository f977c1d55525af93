//! `serve`: open the store, load credentials, start the controllers and the
//! provisioner, bind both listeners, and shut down gracefully on SIGINT/SIGTERM.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use super::answers::{self, json_error};
use super::authority::{self, AuthorityError};
use super::connections::{Limits, Peer, Served, serve_connections};
use super::endpoints::EndpointsFile;
use super::ingress_runtime::ingress_runtime;
use super::leading::LeaderWork;
use super::tls::{
    TlsListener, TlsSetupError, control_server_config, server_config, with_certificate,
};
use crate::auth::{Authenticator, Credentials, follow_revocations, follow_tokens};
use crate::config::{Config, DataplaneKind, StoreKind};
use crate::controllers::MeshSettings;
use crate::leader::run_elected;
use crate::mesh::dataplane::Dataplane;
use crate::mesh::dispatch::client_config;
use crate::provisioner::{Provisioner, ProvisionerSettings};
use crate::shutdown::Shutdown;
use crate::state::{AppState, Connector, Handles};
use crate::store::{EmbeddedStore, KubeStore, Store, TypedStore, WatchSlots};
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up TLS for https:// subscribers: {0}")]
    SubscriberTls(#[from] rustls::Error),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Dataplane(#[from] crate::mesh::dataplane::StartError),
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    #[error("the events listener's TLS: {0}")]
    Tls(#[from] TlsSetupError),
}

/// The data directory holds credentials and the store: 0700, also when an older
/// version created it more open.
fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(path)
}

/// How long a stopping leader waits to give its Lease up.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn serve(config: Config) -> Result<(), ServeError> {
    let subscriber_tls = client_config(config.subscriber_ca_bundle.as_ref())?;
    let data_dir = config.data_dir.clone();
    let data_dir_error = |source| ServeError::DataDir {
        path: data_dir.display().to_string(),
        source,
    };
    private_dir(&data_dir).map_err(data_dir_error)?;
    EndpointsFile::clear_stale(&data_dir).map_err(data_dir_error)?;
    let (store, kube_client): (Arc<dyn Store>, _) = match config.store {
        StoreKind::Embedded => (
            Arc::new(EmbeddedStore::open(&data_dir.join("store.db"))?),
            None,
        ),
        StoreKind::Kube => {
            let kube = KubeStore::connect().await?;
            let client = kube.client();
            (Arc::new(kube), Some(client))
        }
    };
    let (credentials, files) = Credentials::load(
        &data_dir,
        config.admin_token.as_deref(),
        &config.osb_username,
        config.osb_password.as_deref(),
    )
    .map_err(data_dir_error)?;
    let tokens = follow_tokens(store.clone());
    let revocations = follow_revocations(store.clone());
    // The Connector hands out tokens and certificates only over TLS, so its
    // CA is needed (and loaded) only when the events listener serves TLS.
    let authority = match &config.events_tls {
        Some(_) => Some(authority::load(&config.connector, &data_dir, kube_client.clone()).await?),
        None => None,
    };
    let (shutdown_sender, shutdown) = Shutdown::new();
    let store = TypedStore::new(store);
    let metrics = Metrics::new();
    let provisioner = Provisioner::new(
        store.clone(),
        ProvisionerSettings {
            integration_namespace: config.integration_namespace.clone(),
            operation_timeout: config.operation_timeout,
            deprovisioned_retention: config.deprovisioned_retention,
            mesh_served_by: match config.dataplane {
                DataplaneKind::Embedded => "meshbroker",
                DataplaneKind::Knative => "Knative",
            },
        },
        metrics.clone(),
        shutdown.clone(),
    );
    let dataplane = Dataplane::start(
        store.clone(),
        &config,
        subscriber_tls,
        metrics.clone(),
        shutdown.clone(),
    )
    .await?;
    let control = bind(config.control_addr).await?;
    let events = bind(config.events_addr).await?;
    let (control_addr, events_addr) = (control.local_addr()?, events.local_addr()?);
    let scheme = scheme_of(config.events_tls.is_some());
    let control_scheme = scheme_of(config.control_tls.is_some());
    let events_url = config
        .events_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{events_addr}"));
    let control_tls = match &config.control_tls {
        Some(tls) => Some(control_server_config(tls)?),
        None => None,
    };
    let events_tls = match (&config.events_tls, &authority) {
        (Some(tls), Some(authority)) => Some(server_config(tls, authority)?),
        _ => None,
    };
    let require_certificates = config
        .events_tls
        .as_ref()
        .is_some_and(|tls| tls.require_client_certificate);
    let state = AppState::new(Handles {
        config: Arc::new(config.clone()),
        store: store.clone(),
        auth: Arc::new(Authenticator::new(
            credentials,
            tokens,
            revocations,
            require_certificates,
        )),
        metrics,
        provisioner: provisioner.clone(),
        router: dataplane.router.clone(),
        jetstream: dataplane.jetstream.clone(),
        event_log: dataplane.event_log.clone(),
        connector: authority.map(|authority| {
            Arc::new(Connector {
                authority,
                events_url: events_url.clone(),
            })
        }),
        watch_slots: WatchSlots::default(),
        list_slots: WatchSlots::for_lists(),
        shutdown: shutdown.clone(),
    });
    let mesh = MeshSettings {
        integration_namespace: config.integration_namespace.clone(),
        events_url,
        dataplane: (config.dataplane == DataplaneKind::Embedded).then(|| dataplane.router.clone()),
        connector_token_ttl: config
            .events_tls
            .as_ref()
            .map(|_| config.connector.token_ttl),
    };
    let work = LeaderWork {
        store,
        mesh,
        provisioner: provisioner.clone(),
    };
    let election = match (&config.leader_election, kube_client) {
        (Some(election), Some(client)) => {
            let lead = move |term: Shutdown| work.clone().start_term(term);
            Some(tokio::spawn(run_elected(
                client,
                election.clone(),
                shutdown.clone(),
                lead,
            )))
        }
        _ => {
            work.start(shutdown.clone()).await?;
            None
        }
    };
    let _endpoints = EndpointsFile::write(
        &data_dir,
        (control_scheme, control_addr),
        (scheme, events_addr),
    )
    .map_err(data_dir_error)?;
    announce(&config, control_addr, events_addr, &files);

    let limits = Limits {
        connections: config.max_connections,
        headers: config.header_read_timeout,
        body: config.body_read_timeout,
        send: config.send_timeout,
    };
    let served = |name, peer| Served {
        name,
        peer,
        limits,
        metrics: state.metrics.clone(),
    };
    let control_task = match control_tls {
        Some(tls) => tokio::spawn(serve_connections(
            TlsListener::start(control, tls, shutdown.clone()),
            control_app(state.clone()),
            served("control", Peer::Omitted),
            shutdown.clone(),
        )),
        None => tokio::spawn(serve_connections(
            control.tap_io(nodelay),
            control_app(state.clone()),
            served("control", Peer::Omitted),
            shutdown.clone(),
        )),
    };
    let ingress = ingress_runtime(config.delivery)?;
    let events_task = ingress.spawn(serve_events(
        events,
        events_tls,
        state.clone(),
        served("events", Peer::Omitted),
        shutdown.clone(),
    ));

    wait_for_signal().await;
    tracing::info!("shutting down: no new requests, finishing the ones in flight");
    shutdown_sender.send_replace(true);
    for task in [control_task, events_task] {
        task.await.map_err(std::io::Error::other)?;
    }
    ingress.shutdown_background();
    if let Some(election) = election {
        // The Lease given up, so another replica leads at once.
        let _ = tokio::time::timeout(RELEASE_WAIT, election).await;
    }
    let pending = dataplane.in_flight.count();
    if pending > 0 {
        tracing::info!(pending, "draining accepted events");
    }
    let left = dataplane.in_flight.drained(config.drain_timeout).await;
    if left > 0 {
        tracing::warn!(
            left,
            "drain timed out; these accepted events were not delivered"
        );
    }
    if let Some(event_log) = &dataplane.event_log {
        // What was not delivered stays in the log, for the next start.
        event_log.close();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The events listener, plain or TLS (the Connector's client certificates
/// then reach its handlers).
async fn serve_events(
    events: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
    served: Served,
    shutdown: Shutdown,
) {
    match tls {
        Some(tls) => {
            let listener = TlsListener::start(events, tls, shutdown.clone());
            let app = events_app(state).layer(axum::middleware::from_fn(with_certificate));
            let served = Served {
                peer: Peer::Attached,
                ..served
            };
            serve_connections(listener, app, served, shutdown).await;
        }
        None => {
            serve_connections(events.tap_io(nodelay), events_app(state), served, shutdown).await;
        }
    }
}

/// Small request/response exchanges: never hold a response back for Nagle.
fn nodelay(io: &mut tokio::net::TcpStream) {
    let _ = io.set_nodelay(true);
}

fn scheme_of(tls: bool) -> &'static str {
    if tls { "https" } else { "http" }
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn announce(
    config: &Config,
    control: std::net::SocketAddr,
    events: std::net::SocketAddr,
    files: &crate::auth::CredentialFiles,
) {
    let scheme = scheme_of(config.events_tls.is_some());
    let control_scheme = scheme_of(config.control_tls.is_some());
    tracing::info!(control = %format!("{control_scheme}://{control}"), events = %format!("{scheme}://{events}"), data_dir = %config.data_dir.display(), "meshbroker listening");
    match &files.admin_token {
        Some(path) => tracing::info!(
            "resource API: Authorization: Bearer $(cat {})",
            path.display()
        ),
        None => tracing::info!("resource API: Authorization: Bearer <the configured admin token>"),
    }
    match &files.osb_password {
        Some(path) => tracing::info!(
            "OSB API: basic auth as {} with the password in {}",
            config.osb_username,
            path.display()
        ),
        None => tracing::info!(
            "OSB API: basic auth as {} with the configured password",
            config.osb_username
        ),
    }
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// The control listener: OSB API, resource API, health and metrics.
pub fn control_app(state: AppState) -> Router {
    Router::new()
        .merge(crate::resource_api::routes())
        .merge(crate::osb::routes(state.clone()))
        .merge(crate::console::routes())
        .merge(crate::ingress::console_routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            (state.metrics.clone(), "control"),
            answers::uniform,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    let message = format!("nothing is served at {}", uri.path());
    json_error(&uri, StatusCode::NOT_FOUND, "NotFound", message)
}

async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let message = format!("{method} is not allowed on {}", uri.path());
    json_error(
        &uri,
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        message,
    )
}

/// The events listener; the dataplane's ingress routes join it. Its requests are
/// counted like the control listener's, every refusal included: counting one
/// allocates nothing, so the hot path can afford it.
pub fn events_app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::ingress::routes())
        .merge(crate::connector::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            (state.metrics.clone(), "events"),
            answers::uniform,
        ))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let unavailable = |status: &str, reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": status, "reason": reason})),
        )
    };
    if state.shutdown.is_down() {
        return unavailable("stopping", "the server is shutting down");
    }
    let credentials_loaded =
        state.auth.tokens().is_filled() && state.auth.revocations().is_filled();
    if !credentials_loaded || !state.router.is_ready() {
        return unavailable("starting", "credentials or routes are not loaded yet");
    }
    if let Some(why) = state.jetstream.as_ref().and_then(|js| js.unusable()) {
        return unavailable(
            "unavailable",
            &format!("{why}; ingress answers 503 meanwhile"),
        );
    }
    if let Some(why) = state.event_log.as_ref().and_then(|log| log.failing()) {
        return unavailable(
            "unavailable",
            &format!("the event log cannot commit ({why}): ingress answers 503 until it can"),
        );
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ready"})),
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
