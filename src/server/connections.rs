//! Serving a listener's connections with hyper and a timer. `axum::serve`
//! gives hyper no timer, and without one hyper times nothing out: a client
//! sending its headers a byte at a time (slowloris), or keeping a connection
//! open without a next request, would hold a connection and a task for
//! ever. Here a request's headers must be whole within `--header-read-timeout`
//! of the connection being ready for them (so an idle kept-alive connection
//! closes after as long), its body within `--body-read-timeout` of them
//! (`bodies::Deadline`), and a client must take its answers
//! (`--send-timeout`, `stall`). A listener holds at most `--max-connections`
//! open; more wait in the kernel's backlog until one closes (as nginx does
//! at `worker_connections`), so a flood on one listener cannot take the file
//! descriptors the other and the stores need. Shutting down stops accepting,
//! lets the requests in flight finish, and returns once every connection has
//! closed. A connection ends without a reset (`linger`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::connect_info::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use super::linger::Linger;
use super::stall::SendDeadline;
use crate::bodies::Deadline;
use crate::shutdown::Shutdown;
use crate::telemetry::Metrics;

/// What clients may cost a listener.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub connections: usize,
    /// A request's headers, from when the connection is ready for them;
    /// also how long a kept-alive connection may idle.
    pub headers: Duration,
    /// A request's body, from its headers.
    pub body: Duration,
    /// An answer, waiting for the client to take any of it (`stall`).
    pub send: Duration,
}

/// How long between two warnings that a listener is full.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Whether each request carries its connection's peer (`ConnectInfo`):
/// the TLS listener's peer is the client's certificate; the address alone
/// is not worth an allocation per request.
#[derive(Clone, Copy)]
pub enum Peer {
    Attached,
    Omitted,
}

/// How a listener serves.
#[derive(Clone)]
pub struct Served {
    /// `control` or `events`, as the metrics label it.
    pub name: &'static str,
    pub peer: Peer,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

/// Serves `app` on `listener`'s connections until `shutdown`.
pub async fn serve_connections<L>(mut listener: L, app: Router, served: Served, shutdown: Shutdown)
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    // Every connection's task holds a receiver: all gone, all closed.
    let (open_tx, open_rx) = watch::channel(());
    let places = Arc::new(Semaphore::new(served.limits.connections));
    let mut warned: Option<Instant> = None;
    loop {
        let place = tokio::select! {
            place = take_place(&places, &served, &mut warned) => place,
            () = shutdown.clone().wait() => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.clone().wait() => break,
        };
        let connection = serve_one(io, peer, app.clone(), served.clone(), shutdown.clone());
        let open = open_rx.clone();
        tokio::spawn(async move {
            connection.await;
            drop((open, place));
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

/// A place for one more connection, once one is free; warns (now and then)
/// while none is.
async fn take_place(
    places: &Arc<Semaphore>,
    served: &Served,
    warned: &mut Option<Instant>,
) -> OwnedSemaphorePermit {
    if let Ok(place) = places.clone().try_acquire_owned() {
        return place;
    }
    if warned.is_none_or(|at| at.elapsed() >= FULL_WARNING_EVERY) {
        tracing::warn!(
            listener = served.name,
            max_connections = served.limits.connections,
            "the listener holds all the connections it may; new ones wait"
        );
        *warned = Some(Instant::now());
    }
    match places.clone().acquire_owned().await {
        Ok(place) => place,
        // The semaphore is never closed.
        Err(_) => std::future::pending().await,
    }
}

/// One connection, until it closes (on shutdown, once its request in flight
/// is answered).
async fn serve_one<I, A>(io: I, peer: A, app: Router, served: Served, shutdown: Shutdown)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Clone + Send + Sync + 'static,
{
    let Served {
        name,
        peer: peer_info,
        limits,
        metrics,
    } = served;
    let open = metrics.connections(name);
    open.inc();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        if let Peer::Attached = peer_info {
            request.extensions_mut().insert(ConnectInfo(peer.clone()));
        }
        app.clone()
            .oneshot(request.map(|body| Body::new(Deadline::new(body, limits.body))))
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.headers)
        .serve_connection(
            TokioIo::new(Linger::new(SendDeadline::new(io, limits.send))),
            service,
        );
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = shutdown.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended
        && let Some(reason) = cut_for(&error)
    {
        metrics.connection_cut(name, reason);
    }
    open.dec();
}

/// Which limit closed the connection, if one did.
fn cut_for(error: &hyper::Error) -> Option<&'static str> {
    if error.is_timeout() {
        return Some("header_timeout");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Some("send_timeout");
        }
        source = cause.source();
    }
    None
}
