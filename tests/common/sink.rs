//! A recording subscriber: a small HTTP server on an ephemeral loopback port that
//! keeps every request it gets and answers as a test tells it to (statuses in
//! turn, a delay, a reply event). It serves plain HTTP, or HTTPS with a
//! certificate from a `TestCa` made at test time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// What the sink answered.
    pub status: u16,
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
    /// Connections accepted (for HTTPS, handshakes completed).
    connections: Arc<AtomicUsize>,
}

pub struct Sink {
    pub url: String,
    shared: Shared,
}

impl Sink {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("sink binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let connections = shared.connections.clone();
        let listener = listener.tap_io(move |_| {
            connections.fetch_add(1, Ordering::Relaxed);
        });
        Self::serve(listener, url, shared)
    }

    /// An HTTPS sink at `https://127.0.0.1:{port}` presenting a certificate `ca` signed.
    pub async fn start_tls(ca: &TestCa) -> Self {
        let shared = Shared::default();
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("sink binds");
        let url = format!("https://{}", tcp.local_addr().expect("address"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![ca.server_certificate.clone()],
                ca.server_key.clone_key(),
            )
            .expect("server certificate");
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            connections: shared.connections.clone(),
        };
        Self::serve(listener, url, shared)
    }

    fn serve<L: axum::serve::Listener>(listener: L, url: String, shared: Shared) -> Self
    where
        L::Addr: std::fmt::Debug,
    {
        let app = Router::new().fallback(record).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// How many connections the sink accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
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

    /// Replies to every request with an event of these attributes and no data.
    pub fn reply_with_event(&self, id: &str, source: &str, ty: &str) {
        self.reply_with(
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", id),
                ("ce-source", source),
                ("ce-type", ty),
            ],
            "",
        );
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
    let at = Instant::now();
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
    shared.received.lock().expect("lock").push(Received {
        path: uri.path().to_string(),
        headers,
        body,
        at,
        status,
    });
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

/// A CA made at test time and a server certificate it signed for 127.0.0.1 and
/// localhost.
pub struct TestCa {
    /// The CA's certificate, PEM.
    pub pem: String,
    server_certificate: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "meshbroker test CA");
        let pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        Self {
            pem,
            server_certificate: server.der().clone(),
            server_key: server_key.into(),
        }
    }

    /// Writes the CA's certificate into `dir`; returns the file's path.
    pub fn write_bundle(&self, dir: &std::path::Path) -> String {
        let path = dir.join("subscriber-ca.pem");
        std::fs::write(&path, &self.pem).expect("CA bundle written");
        path.display().to_string()
    }
}

/// Accepts TCP connections and completes the TLS handshake before handing them
/// to the HTTP server.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    connections: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            // A client refusing the certificate is what some tests are about.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                self.connections.fetch_add(1, Ordering::Relaxed);
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
