//! The certificate-authorised steps: what the holder may reach, renewing the
//! certificate (a new CSR; the old one stays valid until it expires) and
//! revoking it.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::error::ConnectorError;
use super::signing::{certificate_info, certificates, read_csr, subject_of};
use super::urls;
use crate::auth::ClientCertificate;
use crate::pki::PeerIdentity;
use crate::resources::{Application, CertificateRevocation, CertificateRevocationSpec};
use crate::state::AppState;
use crate::store::StoreError;

/// The holder of an unrevoked certificate whose Application still exists.
async fn holder(
    state: &AppState,
    certificate: Option<&ClientCertificate>,
) -> Result<PeerIdentity, ConnectorError> {
    let identity = state.auth.certificate_holder(certificate)?.clone();
    let application = &identity.common_name;
    if state
        .store
        .get::<Application>(None, application)
        .await?
        .is_none()
    {
        return Err(ConnectorError::Forbidden(format!(
            "the certificate's Application {application:?} does not exist"
        )));
    }
    Ok(identity)
}

/// `GET …/management/info`.
pub async fn info(
    State(state): State<AppState>,
    certificate: Option<Extension<ClientCertificate>>,
) -> Result<Response, ConnectorError> {
    let connector = urls::enabled(&state)?;
    let identity = holder(&state, certificate.as_deref()).await?;
    let application = &identity.common_name;
    Ok(Json(json!({
        "clientIdentity": {"application": application},
        "urls": {
            "eventsUrl": urls::events(connector, application),
            "renewCertUrl": urls::absolute(connector, urls::RENEWALS),
            "revokeCertUrl": urls::absolute(connector, urls::REVOCATIONS),
        },
        "certificate": certificate_info(&state, application),
    }))
    .into_response())
}

/// `POST …/certificates/renewals` with `{"csr": base64(PEM)}`.
pub async fn renew(
    State(state): State<AppState>,
    certificate: Option<Extension<ClientCertificate>>,
    body: Body,
) -> Result<Response, ConnectorError> {
    let connector = urls::enabled(&state)?;
    let identity = holder(&state, certificate.as_deref()).await?;
    let csr = read_csr(body).await?;
    let application = &identity.common_name;
    let issued = connector.authority.sign_client(
        &csr,
        &subject_of(&state, application),
        state.config.connector.certificate_validity,
    )?;
    tracing::info!(%application, sha256 = %issued.sha256, renewed = %identity.sha256, "renewed a client certificate");
    Ok(certificates(connector, &issued, StatusCode::CREATED))
}

/// `POST …/certificates/revocations`: the caller's own certificate, at once
/// on this replica and, through the store, on every other.
pub async fn revoke(
    State(state): State<AppState>,
    certificate: Option<Extension<ClientCertificate>>,
) -> Result<Response, ConnectorError> {
    urls::enabled(&state)?;
    let identity = state
        .auth
        .certificate_holder(certificate.as_deref())?
        .clone();
    let mut revocation = CertificateRevocation::new(
        &revocation_name(&identity.sha256),
        CertificateRevocationSpec {
            sha256: identity.sha256.clone(),
            application: Some(identity.common_name.clone()),
            reason: "revoked by its holder".into(),
        },
    );
    revocation.metadata.namespace = None;
    match state.store.create(&revocation).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
        Err(other) => return Err(other.into()),
    }
    state
        .auth
        .revocations()
        .remember(identity.sha256.clone(), ());
    tracing::info!(application = %identity.common_name, sha256 = %identity.sha256, "a client certificate was revoked by its holder");
    Ok(StatusCode::CREATED.into_response())
}

/// One revocation per certificate: named after its fingerprint (128 bits of
/// it; a name has at most 63 characters).
fn revocation_name(sha256: &str) -> String {
    format!("sha256-{}", &sha256[..32.min(sha256.len())])
}
