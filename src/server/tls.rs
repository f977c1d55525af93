//! The listeners over TLS. The events listener's: handshakes run on tasks of their own (a
//! slow or silent client holds up nobody's accept), bounded in number and
//! time; a client certificate, when one is shown, must chain to the
//! Connector's CA and be within its validity (rustls' WebPKI verifier), and
//! reaches the handlers as a `ClientCertificate` extension. The control
//! listener's takes no client certificates.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::extract::connect_info::ConnectInfo;
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::auth::ClientCertificate;
use crate::config::{ControlTls, EventsTls, ServerCertificate};
use crate::pki::{Authority, identity_of};
use crate::shutdown::Shutdown;

/// A handshake not done by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the backlog.
const MAX_HANDSHAKES: usize = 256;
/// How long the certificate meshbroker issues itself for `--events-tls-hosts` lasts.
const ISSUED_SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("cannot issue the events listener's certificate: {0}")]
    Issue(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The events listener's TLS configuration.
pub fn server_config(
    tls: &EventsTls,
    authority: &Authority,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let (chain, key) = match &tls.certificate {
        ServerCertificate::Files { cert, key } => (read_chain(cert)?, read_key(key)?),
        ServerCertificate::Issued { hosts } => {
            let issued = authority
                .server_certificate(hosts, ISSUED_SERVER_VALIDITY)
                .map_err(|e| TlsSetupError::Issue(e.to_string()))?;
            let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsSetupError::Issue(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
                .map_err(|e| TlsSetupError::Issue(e.to_string()))?;
            (chain, key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(authority.cert_der().clone())?;
    // Without a certificate a caller may still come with a token: whether
    // one is required is the route's decision.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The control listener's TLS configuration: its certificate, no client
/// certificates (callers there authenticate with bearer tokens or basic auth).
pub fn control_server_config(tls: &ControlTls) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(read_chain(&tls.cert)?, read_key(&tls.key)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let file_error = |message: String| TlsSetupError::File {
        path: path.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error("holds no PEM certificate".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsSetupError::File {
        path: path.display().to_string(),
        message: format!("no PEM private key: {e}"),
    })
}

/// What the other end of a TLS connection showed.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub certificate: Option<ClientCertificate>,
}

/// Connections whose handshake is done, for `serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
}

impl TlsListener {
    pub fn start(tcp: TcpListener, config: Arc<ServerConfig>, shutdown: Shutdown) -> Self {
        let (done, ready) = mpsc::channel(MAX_HANDSHAKES);
        tokio::spawn(accept(tcp, TlsAcceptor::from(config), done, shutdown));
        Self { ready }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // Shutting down: no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer { certificate: None })
    }
}

async fn accept(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    done: mpsc::Sender<(TlsStream<TcpStream>, TlsPeer)>,
    shutdown: Shutdown,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            () = shutdown.clone().wait() => return,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause, do not spin.
                tracing::warn!(%error, "accepting a TLS connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, done) = (acceptor.clone(), done.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                let mut stream = stream;
                refuse_plain_http(&mut stream).await?;
                acceptor.accept(stream).await
            })
            .await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%addr, %error, "a TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|der| identity_of(der).ok())
                .map(|identity| ClientCertificate(Arc::new(identity)));
            let _ = done.send((stream, TlsPeer { certificate })).await;
        });
    }
}

/// A TLS connection starts with a handshake record (content type 22); a
/// client that sent plain HTTP instead gets a 400 that says so (as Go's
/// servers answer), rather than a TLS alert it cannot read.
async fn refuse_plain_http(stream: &mut TcpStream) -> std::io::Result<()> {
    const HANDSHAKE_RECORD: u8 = 22;
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 || first[0] == HANDSHAKE_RECORD {
        return Ok(());
    }
    // What the client sent (a request head, a small body: a few reads at
    // most) is read first, so that closing sends our answer and a FIN, not
    // a reset that could overtake the answer.
    {
        let mut sent = [0u8; 4096];
        for _ in 0..4 {
            if !matches!(stream.try_read(&mut sent), Ok(read) if read > 0) {
                break;
            }
        }
    }
    let body = r#"{"error":"PlainHttpToTls","description":"this port speaks HTTPS (TLS): the client sent plain HTTP; use an https:// URL"}"#;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Best effort: the connection is closed either way.
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "plain HTTP on a TLS listener",
    ))
}

/// Hands the connection's certificate to the handlers as an extension.
pub async fn with_certificate(mut request: Request, next: Next) -> Response {
    let certificate = request
        .extensions()
        .get::<ConnectInfo<TlsPeer>>()
        .and_then(|peer| peer.0.certificate.clone());
    if let Some(certificate) = certificate {
        request.extensions_mut().insert(certificate);
    }
    next.run(request).await
}
