//! The transport a delivery uses: a `Session` is one HTTP/1.1 keep-alive
//! connection owned by one delivery worker, opened on first use and reopened when
//! it closes or the subscriber's address changes. The worker drives the
//! connection itself, so a delivery costs no hand-off to another task. Plain HTTP
//! (subscribers inside the cluster or on this machine).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::HOST;
use axum::http::{HeaderMap, HeaderValue, Request, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{Connection, SendRequest, handshake};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Replies larger than this are refused (and then not valid as a reply event).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// An answer made here rather than received: what a local hand-over or a
    /// failed reply counts as, classified like any other.
    pub fn synthetic(status: u16, message: &str) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(message.as_bytes()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

type Body = Full<Bytes>;

struct Open {
    authority: String,
    sender: SendRequest<Body>,
    connection: Pin<Box<Connection<TokioIo<TcpStream>, Body>>>,
}

/// A subscriber's address, parsed once rather than for every delivery.
struct Address {
    url: String,
    uri: Uri,
    authority: String,
    host: HeaderValue,
}

impl Address {
    fn parse(url: &str) -> Result<Self, TransportError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| TransportError(format!("{url:?} is not a URI: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(TransportError(format!(
                "{url}: only http:// subscribers are served"
            )));
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| TransportError(format!("{url} names no host")))?;
        let host = HeaderValue::from_str(&authority).map_err(|e| TransportError(e.to_string()))?;
        Ok(Self {
            url: url.to_string(),
            uri,
            authority,
            host,
        })
    }
}

#[derive(Default)]
pub struct Session {
    open: Option<Open>,
    address: Option<Arc<Address>>,
}

impl Session {
    /// POSTs and reads the answer, all within `timeout`.
    pub async fn post(
        &mut self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
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
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, TransportError> {
        let address = self.address_of(url)?;
        let reusable = self
            .open
            .as_ref()
            .is_some_and(|open| open.authority == address.authority && !open.sender.is_closed());
        if !reusable {
            self.open = Some(connect(&address.authority).await?);
        }
        let Some(open) = self.open.as_mut() else {
            return Err(TransportError("no connection".into()));
        };
        let mut request = Request::post(address.uri.clone())
            .body(Full::new(body))
            .map_err(|e| TransportError(e.to_string()))?;
        *request.headers_mut() = headers;
        request.headers_mut().insert(HOST, address.host.clone());
        let (result, closed) = {
            let Open {
                sender, connection, ..
            } = open;
            let exchange = async {
                sender
                    .ready()
                    .await
                    .map_err(|e| TransportError(e.to_string()))?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| TransportError(e.to_string()))?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| TransportError(format!("reading the answer: {e}")))?
                    .to_bytes();
                Ok(Response {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body,
                })
            };
            tokio::pin!(exchange);
            tokio::select! {
                biased;
                result = &mut exchange => (result, false),
                // The subscriber closed the connection: what it answered before
                // is still in the exchange.
                _ = connection.as_mut() => (exchange.await, true),
            }
        };
        if closed {
            self.open = None;
        }
        result
    }
}

async fn connect(authority: &str) -> Result<Open, TransportError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| TransportError(format!("connecting to {authority} timed out")))?
        .map_err(|e| TransportError(format!("connecting to {authority}: {e}")))?;
    stream
        .set_nodelay(true)
        .map_err(|e| TransportError(e.to_string()))?;
    let (sender, connection) = handshake(TokioIo::new(stream))
        .await
        .map_err(|e| TransportError(e.to_string()))?;
    Ok(Open {
        authority: authority.to_string(),
        sender,
        connection: Box::pin(connection),
    })
}
