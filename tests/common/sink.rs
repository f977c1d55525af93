//! A recording subscriber: a small HTTP server on an ephemeral loopback port that
//! keeps every request it gets and answers as a test tells it to (statuses in
//! turn, a delay, a reply event).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Headers and body of a reply event.
type ReplyEvent = (Vec<(String, String)>, Vec<u8>);

#[derive(Default)]
struct Behaviour {
    /// Statuses to answer in turn; the last one repeats. Empty: 200.
    statuses: VecDeque<u16>,
    delay: Option<Duration>,
    /// Headers and body of a reply event sent with 200.
    reply: Option<ReplyEvent>,
    error_body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

pub struct Sink {
    pub url: String,
    shared: Shared,
}

impl Sink {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new().fallback(record).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("sink binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().expect("lock"));
    }

    /// Answers these statuses in turn (the last one repeats), with `body`.
    pub fn answer(&self, statuses: &[u16], body: &str) {
        self.behave(|b| {
            b.statuses = statuses.iter().copied().collect();
            b.error_body = body.as_bytes().to_vec();
        });
    }

    pub fn delay(&self, delay: Duration) {
        self.behave(|b| b.delay = Some(delay));
    }

    /// Replies to every request with this binary-mode event.
    pub fn reply_with(&self, headers: &[(&str, &str)], body: &str) {
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self.behave(|b| b.reply = Some((headers, body.as_bytes().to_vec())));
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.shared.received.lock().expect("lock").len()
    }

    /// Waits (with the harness deadline) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        super::eventually(&format!("{n} request(s) at {}", self.url), async || {
            let received = self.received();
            (received.len() >= n).then_some(received)
        })
        .await
    }
}

async fn record(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.received.lock().expect("lock").push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        at: Instant::now(),
    });
    let (status, delay, reply, error_body) = {
        let mut behaviour = shared.behaviour.lock().expect("lock");
        let status = if behaviour.statuses.len() > 1 {
            behaviour.statuses.pop_front()
        } else {
            behaviour.statuses.front().copied()
        };
        (
            status.unwrap_or(200),
            behaviour.delay,
            behaviour.reply.clone(),
            behaviour.error_body.clone(),
        )
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    match reply {
        Some((headers, body)) if status.is_success() => {
            let mut response = (status, body).into_response();
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    value.parse(),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        _ => (status, error_body).into_response(),
    }
}
