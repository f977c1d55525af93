//! The transport a delivery uses: a `Session` is one HTTP/1.1 keep-alive
//! connection owned by one delivery worker, opened on first use and reopened when
//! it closes or the subscriber's address changes. The worker drives the
//! connection itself, so a delivery costs no hand-off to another task. Plain HTTP,
//! or HTTPS with the trust of `tls::client_config`. Requests carry an origin-form
//! target (`POST /path?query`) and a `Host` header, as any HTTP client sends them.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{CONTENT_LENGTH, HOST};
use axum::http::{HeaderMap, HeaderValue, Request, Uri};
use bytes::Bytes;
use futures::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{Connection, SendRequest, handshake};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// Answers are read up to this much: a larger reply is not taken as an event,
/// and a larger error body is cut (its start is what `knativeerrordata` keeps).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Bounds the TCP connect and, for https, the TLS handshake, each.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// False when the body went past `MAX_RESPONSE_BYTES` and was cut there.
    pub whole: bool,
}

impl Response {
    /// An answer made here rather than received: what a local hand-over or a
    /// failed reply counts as, classified like any other.
    pub fn synthetic(status: u16, message: &str) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(message.as_bytes()),
            whole: true,
        }
    }
}

/// Why a delivery got no answer, in words for logs and `knativeerrordata`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl TransportError {
    /// `doing` and the error with its causes: hyper's messages name only the step
    /// that failed ("error reading a body from connection"); the cause says why.
    fn during(doing: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut text = format!("{doing}: {error}");
        let mut cause = error.source();
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        Self(text)
    }
}

type Body = Full<Bytes>;
type Stream = Either<TcpStream, TlsStream<TcpStream>>;

struct Open {
    origin: String,
    sender: SendRequest<Body>,
    connection: Pin<Box<Connection<TokioIo<Stream>, Body>>>,
}

/// A subscriber's address, parsed once rather than for every delivery.
struct Address {
    url: String,
    /// `scheme://host:port`: a connection serves every URL of the same origin.
    origin: String,
    /// `host:port` as dialled (an IPv6 host in brackets).
    peer: String,
    /// The host to dial, IPv6 brackets removed.
    host: String,
    port: u16,
    /// The TLS server name (sent as SNI, checked against the certificate); https only.
    server_name: Option<ServerName<'static>>,
    /// The origin-form request target: path and query.
    target: Uri,
    host_header: HeaderValue,
}

impl Address {
    fn parse(url: &str) -> Result<Self, TransportError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| TransportError(format!("{url:?} is not a URI: {e}")))?;
        let (scheme, default_port) = match uri.scheme_str() {
            Some("http") => ("http", 80),
            Some("https") => ("https", 443),
            _ => {
                return Err(TransportError(format!(
                    "{url}: only http:// and https:// subscribers are served"
                )));
            }
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| TransportError(format!("{url} names no host")))?;
        let host = authority.host();
        let port = crate::resources::port_of(authority.as_str())
            .map_err(|why| TransportError(format!("{url}: {why}")))?
            .unwrap_or(default_port);
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = (scheme == "https")
            .then(|| ServerName::try_from(bare_host.to_string()))
            .transpose()
            .map_err(|e| TransportError(format!("{url}: {host} is not a TLS server name: {e}")))?;
        // Host names the authority as written, userinfo left out.
        let host_header = match authority.port() {
            Some(given) => format!("{host}:{given}"),
            None => host.to_string(),
        };
        let target = match uri.query() {
            Some(query) => format!("{}?{query}", uri.path()),
            None => uri.path().to_string(),
        };
        Ok(Self {
            url: url.to_string(),
            origin: format!("{scheme}://{host}:{port}"),
            peer: format!("{host}:{port}"),
            host: bare_host.to_string(),
            port,
            server_name,
            target: Uri::try_from(target)
                .map_err(|e| TransportError(format!("{url}: no request target: {e}")))?,
            host_header: HeaderValue::from_str(&host_header)
                .map_err(|e| TransportError(format!("{url}: {e}")))?,
        })
    }
}

pub struct Session {
    /// Shared by every session: built once at start-up.
    tls: Arc<ClientConfig>,
    open: Option<Open>,
    address: Option<Arc<Address>>,
}

impl Session {
    pub fn new(tls: Arc<ClientConfig>) -> Self {
        Self {
            tls,
            open: None,
            address: None,
        }
    }

    /// POSTs and reads the answer, all within `timeout`.
    pub async fn post(
        &mut self,
        url: &str,
        headers: &HeaderMap,
        body: &Bytes,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        let outcome = tokio::time::timeout(timeout, self.exchange(url, headers, body)).await;
        let result = outcome.unwrap_or_else(|_| {
            Err(TransportError(format!(
                "no answer within {}ms",
                timeout.as_millis()
            )))
        });
        if result.is_err() {
            // Whatever state the connection is in, it is not fit for reuse.
            self.open = None;
        }
        result
    }

    /// Resolves once the kept connection has closed, letting go of it;
    /// pending while there is none (see `Sessions::closed_while_idle`).
    pub async fn closed_while_idle(&mut self) {
        match self.open.as_mut() {
            Some(open) => {
                let _ = open.connection.as_mut().await;
                self.open = None;
            }
            None => std::future::pending().await,
        }
    }

    fn address_of(&mut self, url: &str) -> Result<Arc<Address>, TransportError> {
        if let Some(address) = &self.address
            && address.url == url
        {
            return Ok(address.clone());
        }
        let address = Arc::new(Address::parse(url)?);
        self.address = Some(address.clone());
        Ok(address)
    }

    async fn exchange(
        &mut self,
        url: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Response, TransportError> {
        let address = self.address_of(url)?;
        let mut kept = self.open.take().and_then(|mut open| {
            (open.origin == address.origin && open.is_alive()).then_some(open)
        });
        loop {
            let reused = kept.is_some();
            let open = match kept.take() {
                Some(open) => open,
                None => connect(&address, &self.tls).await?,
            };
            match round_trip(open, request(&address, headers, body)?).await {
                Ok((response, open)) => {
                    self.open = open;
                    return Ok(response);
                }
                // A kept connection that closed before the event was written
                // (its close not seen yet): the event never left, so it goes
                // on a new connection. Once written, it is never sent again
                // here: the subscriber may have taken it.
                Err(Failure::Unsent(_)) if reused => {}
                Err(Failure::Unsent(error) | Failure::Lost(error)) => return Err(error),
            }
        }
    }
}

/// The POST of `body` with `headers` to `address`.
fn request(
    address: &Address,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Request<Body>, TransportError> {
    let mut request = Request::post(address.target.clone())
        .body(Full::new(body.clone()))
        .map_err(|e| TransportError(e.to_string()))?;
    *request.headers_mut() = headers.clone();
    request
        .headers_mut()
        .insert(HOST, address.host_header.clone());
    if body.is_empty() {
        // hyper sends an empty body's POST with no length at all; some
        // servers answer that with 411 (RFC 9110 §8.6: a POST normally
        // says 0).
        request
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    Ok(request)
}

/// Why an exchange got no answer.
enum Failure {
    /// The request was never written.
    Unsent(TransportError),
    /// The request was written (the subscriber may have taken it), and no
    /// whole answer came.
    Lost(TransportError),
}

impl Open {
    /// False once the subscriber closed the connection. It is driven only
    /// during exchanges, so an idle one learns of its end here: polling it
    /// reads the end of the stream.
    fn is_alive(&mut self) -> bool {
        !self.sender.is_closed() && self.connection.as_mut().now_or_never().is_none()
    }
}

/// Sends `request` on `open` and reads the answer, driving the connection
/// meanwhile; the connection comes back when it is fit for the next request.
async fn round_trip(
    open: Open,
    request: Request<Body>,
) -> Result<(Response, Option<Open>), Failure> {
    let Open {
        origin,
        mut sender,
        mut connection,
    } = open;
    let answered = {
        let exchange = async {
            sender.ready().await.map_err(|error| {
                Failure::Unsent(TransportError::during("the connection failed", &error))
            })?;
            let response = sender
                .try_send_request(request)
                .await
                .map_err(|mut failed| {
                    let error = TransportError::during("sending the event", failed.error());
                    // hyper gives the request back only if it never wrote it.
                    match failed.take_message() {
                        Some(_) => Failure::Unsent(error),
                        None => Failure::Lost(error),
                    }
                })?;
            let (parts, body) = response.into_parts();
            let (body, whole) = read_capped(body).await.map_err(Failure::Lost)?;
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
                whole,
            })
        };
        tokio::pin!(exchange);
        let first = tokio::select! {
            biased;
            answered = &mut exchange => Some(answered),
            _ = connection.as_mut() => None,
        };
        match first {
            Some(answered) => answered,
            None => {
                // The subscriber closed the connection: what it answered
                // before is still in the exchange, and what it did not
                // answer fails once the connection is gone rather than
                // waiting for it.
                drop(connection);
                return exchange.await.map(|response| (response, None));
            }
        }
    };
    let response = answered?;
    // A body left unread leaves the connection unusable for the next request.
    let open = response.whole.then(|| Open {
        origin,
        sender,
        connection,
    });
    Ok((response, open))
}

/// The answer's body up to `MAX_RESPONSE_BYTES`, and whether that was all of it.
/// Its status counts whatever the size: a 400 with a large page is still a 400,
/// not a transport failure to retry.
async fn read_capped(mut body: Incoming) -> Result<(Bytes, bool), TransportError> {
    let mut frames: Vec<Bytes> = Vec::new();
    let mut held = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| TransportError::during("reading the answer", &e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let room = MAX_RESPONSE_BYTES - held;
        let cut = data.len() > room;
        let taken = if cut { data.slice(..room) } else { data };
        held += taken.len();
        frames.push(taken);
        if cut {
            return Ok((joined(&frames), false));
        }
    }
    Ok((joined(&frames), true))
}

/// One frame as it came (no copy); several joined.
fn joined(frames: &[Bytes]) -> Bytes {
    match frames {
        [one] => one.clone(),
        many => Bytes::from(many.concat()),
    }
}

async fn connect(address: &Address, tls: &Arc<ClientConfig>) -> Result<Open, TransportError> {
    let peer = &address.peer;
    let dial = TcpStream::connect((address.host.as_str(), address.port));
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, dial)
        .await
        .map_err(|_| TransportError(format!("connecting to {peer} timed out")))?
        .map_err(|e| TransportError(format!("connecting to {peer} failed: {e}")))?;
    tcp.set_nodelay(true)
        .map_err(|e| TransportError(e.to_string()))?;
    let stream = match &address.server_name {
        None => Either::Left(tcp),
        Some(name) => {
            let handshake = TlsConnector::from(tls.clone()).connect(name.clone(), tcp);
            let secured = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                .await
                .map_err(|_| TransportError(format!("TLS handshake with {peer} timed out")))?
                .map_err(|e| {
                    TransportError::during(&format!("TLS handshake with {peer} failed"), &e)
                })?;
            Either::Right(secured)
        }
    };
    let (sender, connection) = handshake(TokioIo::new(stream))
        .await
        .map_err(|e| TransportError::during("starting HTTP/1.1", &e))?;
    Ok(Open {
        origin: address.origin.clone(),
        sender,
        connection: Box::pin(connection),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_dialled_by_host_and_port_and_asked_for_by_path() {
        // url, peer, target, Host, TLS server name
        let table = [
            (
                "http://127.0.0.1:8080/some/path?x=1",
                "127.0.0.1:8080",
                "/some/path?x=1",
                "127.0.0.1:8080",
                None,
            ),
            (
                "http://sink.ns.svc.cluster.local",
                "sink.ns.svc.cluster.local:80",
                "/",
                "sink.ns.svc.cluster.local",
                None,
            ),
            (
                "https://sink.example/hook",
                "sink.example:443",
                "/hook",
                "sink.example",
                Some("sink.example"),
            ),
            (
                "https://user:secret@[::1]:4443/?a=b",
                "[::1]:4443",
                "/?a=b",
                "[::1]:4443",
                Some("::1"),
            ),
        ];
        for (url, peer, target, host, server_name) in table {
            let address = Address::parse(url).expect(url);
            assert_eq!(address.peer, peer, "{url}");
            assert_eq!(address.target.to_string(), target, "{url}");
            assert_eq!(address.host_header, host, "{url}");
            let name = address.server_name.as_ref().map(|n| n.to_str());
            assert_eq!(name.as_deref(), server_name, "{url}");
        }
    }

    #[test]
    fn an_address_that_cannot_be_served_says_why() {
        for (url, why) in [
            (
                "ftp://sink/x",
                "only http:// and https:// subscribers are served",
            ),
            (
                "/relative",
                "only http:// and https:// subscribers are served",
            ),
            ("http:///path", "is not a URI"),
            ("http://127.0.0.1:99999/", "not a TCP port"),
        ] {
            let error = Address::parse(url).err().expect(url);
            assert!(error.0.contains(why), "{url}: {error}");
        }
    }
}
