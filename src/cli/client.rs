//! The server, as the commands see it: JSON requests with the bearer token,
//! and the server's own words when it refuses.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::args::Connection;
use super::contexts::{Context, Contexts, config_path};
use super::failure::Failure;

pub struct Client {
    http: reqwest::Client,
    /// The control listener.
    pub base: String,
    /// The events listener.
    pub events: String,
    pub token: Option<String>,
}

/// How long one request may take (a tail has no end).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A listener's address: given (flag, environment or context), or where a
/// local server says it listens, or the server's default.
fn address_of(given: Option<&str>, connection: &Connection, which: &str, default: &str) -> String {
    if let Some(given) = given {
        return given.trim_end_matches('/').to_string();
    }
    std::fs::read_to_string(connection.data_dir.join("endpoints.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|endpoints| endpoints[which].as_str().map(str::to_string))
        .unwrap_or_else(|| default.into())
}

fn token_of(connection: &Connection, context: Option<&Context>) -> Option<String> {
    connection
        .token
        .clone()
        .or_else(|| context.and_then(|c| c.token.clone()))
        .or_else(|| read_trimmed(&connection.data_dir.join("admin-token")))
}

/// The saved context named, or the current one (flags and environment win
/// over what it says).
fn context_of(connection: &Connection) -> Result<Option<Context>, Failure> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let contexts = Contexts::load(&path)?;
    Ok(contexts.chosen(connection.context.as_deref())?.cloned())
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
            .build()
            .map_err(|e| Failure::Refused(format!("cannot make an HTTP client: {e}")))?;
        let context = context_of(connection)?;
        let server = connection
            .server
            .as_deref()
            .or(context.as_ref().map(|c| c.server.as_str()));
        let events = connection
            .events
            .as_deref()
            .or(context.as_ref().and_then(|c| c.events.as_deref()));
        Ok(Self {
            http,
            base: address_of(server, connection, "control", "http://127.0.0.1:8080"),
            events: address_of(events, connection, "events", "http://127.0.0.1:8081"),
            token: token_of(connection, context.as_ref()),
        })
    }

    /// A request to the control listener with the bearer token and the OSB
    /// API's version header (which the other APIs there ignore).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.http.request(method, format!("{}{path}", self.base)))
            .header("X-Broker-API-Version", "2.17")
    }

    /// Follows a stream of JSON lines at `path`, handing each line to `each`
    /// until the server ends it or `each` answers false.
    pub async fn follow_lines(
        &self,
        path: &str,
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), Failure> {
        let mut response = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(|e| Failure::unreachable(&self.base, &e))?;
        if !response.status().is_success() {
            let (status, answer) = read(response).await?;
            return refused(status, &answer);
        }
        let mut buffered = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Refused(format!("the stream broke off: {e}")))?
        {
            buffered.extend_from_slice(&chunk);
            while let Some(end) = buffered.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffered.drain(..=end).collect();
                if !each(&line) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A request to the events listener with the bearer token.
    pub fn events_request(&self, path: &str) -> reqwest::RequestBuilder {
        self.authorized(self.http.post(format!("{}{path}", self.events)))
            .timeout(REQUEST_TIMEOUT)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
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
        let mut request = self.request(method, path).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::unreachable(&self.base, &e))?;
        let (status, value) = read(response).await?;
        if missing_ok && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        refused(status, &value)?;
        Ok(Some(value))
    }
}

/// The status and the JSON body (a body that is not JSON as a string).
pub async fn read(response: reqwest::Response) -> Result<(reqwest::StatusCode, Value), Failure> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Failure::Refused(format!("reading the answer: {e}")))?;
    let value = match text.trim() {
        "" => Value::Null,
        trimmed => serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(trimmed.into())),
    };
    Ok((status, value))
}

/// A refusal in the server's words: the resource API's `message`, the
/// ingress's and OSB's `description`, Kyma's `error`.
pub fn refused(status: reqwest::StatusCode, value: &Value) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    let said = ["message", "description", "error"]
        .iter()
        .find_map(|field| value[field].as_str())
        .map(str::to_string)
        .or_else(|| value.as_str().map(str::to_string))
        .unwrap_or_else(|| value.to_string());
    Err(Failure::Refused(format!("{} {said}", status.as_u16())))
}
