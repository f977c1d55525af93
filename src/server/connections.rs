//! Serving a listener's connections with hyper and a timer. `axum::serve`
//! gives hyper no timer, and without one hyper times nothing out: a client
//! sending its headers a byte at a time (slowloris), or keeping a connection
//! open without a next request, would hold a connection and a task for
//! ever. Here a request's headers must be whole within `--header-read-timeout`
//! of the connection being ready for them (so an idle kept-alive connection
//! closes after as long), its body within `--body-read-timeout` of them
//! (`bodies::Deadline`), and a client must take its answers
//! (`--send-timeout`, `stall`). Shutting down stops accepting, lets the requests in
//! flight finish, and returns once every connection has closed.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::connect_info::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tower::ServiceExt;

use super::stall::SendDeadline;
use crate::bodies::Deadline;
use crate::shutdown::Shutdown;

/// How long a request may take to arrive.
#[derive(Clone, Copy)]
pub struct Timeouts {
    /// Its headers, from when the connection is ready for them; also how
    /// long a kept-alive connection may idle.
    pub headers: Duration,
    /// Its body, from its headers.
    pub body: Duration,
    /// An answer, waiting for the client to take any of it (`stall`).
    pub send: Duration,
}

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
    timeouts: Timeouts,
    shutdown: Shutdown,
) where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    // Every connection's task holds a receiver: all gone, all closed.
    let (open_tx, open_rx) = watch::channel(());
    loop {
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
                    .oneshot(request.map(|body| Body::new(Deadline::new(body, timeouts.body))))
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeouts.headers)
                .serve_connection(TokioIo::new(SendDeadline::new(io, timeouts.send)), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.wait() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}
