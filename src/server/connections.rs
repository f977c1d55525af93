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
//! closed.

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
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use super::stall::SendDeadline;
use crate::bodies::Deadline;
use crate::shutdown::Shutdown;

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

/// Serves `app` on `listener`'s connections until `shutdown`.
pub async fn serve_connections<L>(
    mut listener: L,
    app: Router,
    peer_info: Peer,
    limits: Limits,
    shutdown: Shutdown,
) where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    // Every connection's task holds a receiver: all gone, all closed.
    let (open_tx, open_rx) = watch::channel(());
    let places = Arc::new(Semaphore::new(limits.connections));
    let mut warned: Option<Instant> = None;
    loop {
        let place = match places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= FULL_WARNING_EVERY) {
                    tracing::warn!(
                        max_connections = limits.connections,
                        "a listener holds all the connections it may; new ones wait"
                    );
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    place = places.clone().acquire_owned() => match place {
                        Ok(place) => place,
                        Err(_) => break,
                    },
                    () = shutdown.clone().wait() => break,
                }
            }
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.clone().wait() => break,
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
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
                .serve_connection(TokioIo::new(SendDeadline::new(io, limits.send)), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.wait() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop((open, place));
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}
