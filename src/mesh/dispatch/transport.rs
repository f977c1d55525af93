//! The transport a delivery uses: one POST, with a timeout, answering status,
//! headers and (a bounded prefix of) the body. `HttpTransport` is reqwest with a
//! pooled keep-alive client shared by every dispatcher.

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};

/// Replies larger than this are cut (and then not valid as a reply event).
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
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new() -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| TransportError(e.to_string()))?;
        Ok(Self { client })
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
        let exchange = async {
            let mut response = self
                .client
                .post(url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| TransportError(e.to_string()))?;
            let status = response.status().as_u16();
            let headers = std::mem::take(response.headers_mut());
            let mut body = BytesMut::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| TransportError(e.to_string()))?
            {
                let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok(Response {
                status,
                headers,
                body: body.freeze(),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError(format!("no answer within {}ms", timeout.as_millis())))?
    }
}
