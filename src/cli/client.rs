//! The server, as the commands see it: JSON requests with the bearer token,
//! and the server's own words when it refuses.

use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use super::args::Connection;

/// What went wrong, said for a person.
#[derive(Debug)]
pub enum Failure {
    /// The server refused (its status and message) or could not be reached.
    Refused(String),
    /// The command itself is wrong (exit code 2).
    Usage(String),
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// The server's address: given, or where a local server says it listens.
fn server_of(connection: &Connection) -> String {
    if let Some(server) = &connection.server {
        return server.trim_end_matches('/').to_string();
    }
    std::fs::read_to_string(connection.data_dir.join("endpoints.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|endpoints| endpoints["control"].as_str().map(str::to_string))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into())
}

fn token_of(connection: &Connection) -> Option<String> {
    connection
        .token
        .clone()
        .or_else(|| read_trimmed(&connection.data_dir.join("admin-token")))
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

impl Client {
    pub fn new(connection: &Connection) -> Result<Self, Failure> {
        // reqwest takes its TLS crypto from rustls' process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Failure::Refused(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: server_of(connection),
            token: token_of(connection),
        })
    }

    /// Sends; answers the JSON body, or the server's message when it refused.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        self.exchange(method, path, body, false)
            .await
            .map(Option::unwrap_or_default)
    }

    /// The object at `path`, or None when there is none.
    pub async fn find(&self, path: &str) -> Result<Option<Value>, Failure> {
        self.exchange(Method::GET, path, None, true).await
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        missing_ok: bool,
    ) -> Result<Option<Value>, Failure> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Refused(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Refused(format!("reading the answer: {e}")))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if missing_ok && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let said = value["message"]
                .as_str()
                .or_else(|| value["description"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| text.trim().to_string());
            return Err(Failure::Refused(format!("{} {said}", status.as_u16())));
        }
        Ok(Some(value))
    }
}
