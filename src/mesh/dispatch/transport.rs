//! The transport a delivery uses: one POST, with a timeout, answering status,
//! headers and (a bounded prefix of) the body. `HttpTransport` is hyper's pooled
//! keep-alive client, shared by every dispatcher; plain HTTP (subscribers inside
//! the cluster or on this machine).

use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderMap, Request, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Replies larger than this are refused (and then not valid as a reply event).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response, TransportError>;
}

pub struct HttpTransport {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpTransport {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Self { client }
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| TransportError(format!("{url:?} is not a URI: {e}")))?;
        let mut request = Request::post(uri)
            .body(Full::new(body))
            .map_err(|e| TransportError(e.to_string()))?;
        *request.headers_mut() = headers;
        let exchange = async {
            let response = self
                .client
                .request(request)
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
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError(format!("no answer within {}ms", timeout.as_millis())))?
    }
}
