//! The token-authorised steps: fetching the configuration (what the CSR must
//! say, where to send it) and trading a CSR for a client certificate.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::error::ConnectorError;
use super::{tokens, urls};
use crate::auth::application_holder;
use crate::bodies::read_limited;
use crate::pki::{Issued, Subject};
use crate::resources::Application;
use crate::state::{AppState, Connector};

/// A CSR request is a few kilobytes; nothing bigger is read.
const MAX_CSR_BODY: usize = 64 * 1024;

fn token_of(query: &HashMap<String, String>) -> Result<&str, ConnectorError> {
    query
        .get("token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ConnectorError::Forbidden("the URL carries no token".into()))
}

/// The subject an Application's certificates carry.
pub fn subject_of(state: &AppState, application: &str) -> Subject {
    state.config.connector.subject.for_application(application)
}

/// What Kyma says of the certificate to request.
pub fn certificate_info(state: &AppState, application: &str) -> Value {
    json!({
        "subject": subject_of(state, application).to_string(),
        "extensions": "",
        "key-algorithm": "rsa2048",
    })
}

/// `GET …/signingRequests/info?token=`: spends the token, answers the CSR
/// URL with a token of its own.
pub async fn configuration(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ConnectorError> {
    let connector = urls::enabled(&state)?;
    let (application, csr_token) =
        tokens::spend_configuration_token(&state, token_of(&query)?).await?;
    let csr_url = format!(
        "{}?token={csr_token}",
        urls::absolute(connector, urls::CERTIFICATES)
    );
    Ok(Json(json!({
        "csrUrl": csr_url,
        "api": {
            "eventsUrl": urls::events(connector, &application),
            "infoUrl": urls::absolute(connector, urls::MANAGEMENT_INFO),
            "certificatesUrl": urls::absolute(connector, urls::CERTIFICATES),
            "renewCertUrl": urls::absolute(connector, urls::RENEWALS),
            "revokeCertUrl": urls::absolute(connector, urls::REVOCATIONS),
        },
        "certificate": certificate_info(&state, &application),
    }))
    .into_response())
}

/// `POST …/certificates?token=` with `{"csr": base64(PEM)}`: the CSR is
/// checked before the token is spent, so a refused CSR costs no token; the
/// certificate is handed out only once the token is spent.
pub async fn sign(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ConnectorError> {
    let connector = urls::enabled(&state)?;
    let request = tokens::csr_request(&state, token_of(&query)?).await?;
    let application = request
        .status
        .as_ref()
        .map(|s| s.application.clone())
        .unwrap_or_default();
    let csr = read_csr(body).await?;
    let uid = tokens::check_application(&state, &request).await?;
    let issued = connector.authority.sign_client(
        &csr,
        &subject_of(&state, &application),
        state.config.connector.certificate_validity,
        &application_holder(&uid),
    )?;
    tokens::spend_csr_token(&state, request).await?;
    tracing::info!(%application, sha256 = %issued.sha256, "issued a client certificate");
    Ok(certificates(connector, &issued, StatusCode::CREATED))
}

/// The uid of the Application a certificate is for; it must still exist.
pub async fn application_uid(
    state: &AppState,
    application: &str,
) -> Result<String, ConnectorError> {
    state
        .store
        .get::<Application>(None, application)
        .await?
        .and_then(|found| found.metadata.uid)
        .ok_or_else(|| {
            ConnectorError::Forbidden(format!("there is no Application {application:?}"))
        })
}

/// The CSR of a `{"csr": base64}` body, as bytes. The base64 may be
/// wrapped in lines, as `base64` writes it and Go's decoder (Kyma's) reads it.
pub async fn read_csr(body: Body) -> Result<Vec<u8>, ConnectorError> {
    let bytes = read_limited(body, MAX_CSR_BODY).await?;
    let request: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ConnectorError::BadRequest(format!("the body is not JSON: {e}")))?;
    let encoded = request.get("csr").and_then(Value::as_str).ok_or_else(|| {
        ConnectorError::BadRequest("the body needs \"csr\": base64 of the PEM CSR".into())
    })?;
    let unwrapped: String = encoded
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    STANDARD
        .decode(unwrapped)
        .map_err(|e| ConnectorError::BadRequest(format!("\"csr\" is not base64: {e}")))
}

/// Kyma's answer: the chain, the client certificate and the CA, each base64 PEM.
pub fn certificates(connector: &Connector, issued: &Issued, status: StatusCode) -> Response {
    let ca = connector.authority.cert_pem();
    let chain = format!("{}{ca}", issued.cert_pem);
    let body = json!({
        "crt": STANDARD.encode(chain),
        "clientCrt": STANDARD.encode(&issued.cert_pem),
        "caCrt": STANDARD.encode(ca),
    });
    (status, Json(body)).into_response()
}
