//! `--dataplane knative`: Application ingress hands events to the Application's
//! Knative Channel over HTTP (binary mode, pooled keep-alive connections). The
//! sender gets 202 only once the Channel has accepted every event of the request;
//! otherwise a 502 names the Channel's answer and the sender retries — nothing is
//! acknowledged that Knative did not take.

use std::time::Duration;

use axum::http::{Method, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::mesh::event::PreparedEvent;

/// How long a Channel may take to accept one event.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's body is quoted back to the sender.
const QUOTED_BYTES: usize = 512;

#[derive(Debug, thiserror::Error)]
#[error("the Knative Channel at {url} {problem}")]
pub struct ForwardError {
    url: String,
    problem: String,
}

pub struct Forwarder {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Forwarder {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl Forwarder {
    /// Sends each event in turn; stops at the first the Channel does not accept.
    pub async fn forward(&self, url: &str, events: &[PreparedEvent]) -> Result<(), ForwardError> {
        let failed = |problem: String| ForwardError {
            url: url.to_string(),
            problem,
        };
        for event in events {
            let wire = event.wire(false);
            let mut request = Request::builder().method(Method::POST).uri(url);
            if let Some(headers) = request.headers_mut() {
                headers.clone_from(&wire.headers);
            }
            let request = request
                .body(Full::new(wire.body.clone()))
                .map_err(|e| failed(format!("is not a usable URL: {e}")))?;
            let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
                .await
                .map_err(|_| failed(format!("did not answer within {}s", TIMEOUT.as_secs())))?
                .map_err(|e| failed(format!("cannot be reached: {e}")))?;
            let status = response.status();
            if !status.is_success() {
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BYTES)]);
                return Err(failed(format!("refused the event with {status}: {quoted}")));
            }
            // Drain the (normally empty) body so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
        }
        Ok(())
    }
}
