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
use super::signing::{application_uid, certificate_info, certificates, read_csr, subject_of};
use super::urls;
use crate::auth::{ClientCertificate, application_holder};
use crate::pki::PeerIdentity;
use crate::resources::{CertificateRevocation, CertificateRevocationSpec};
use crate::state::AppState;
use crate::store::StoreError;

/// The holder of an unrevoked certificate issued to an Application that
/// still exists (the same one, not a later one of its name), and its uid.
async fn holder(
    state: &AppState,
    certificate: Option<&ClientCertificate>,
) -> Result<(PeerIdentity, String), ConnectorError> {
    let identity = state.auth.certificate_holder(certificate)?.clone();
    let uid = application_uid(state, &identity.common_name).await?;
    if certificate.is_some_and(|c| !c.issued_to(&uid)) {
        return Err(ConnectorError::Forbidden(format!(
            "the certificate was issued to an earlier Application named {:?}",
            identity.common_name
        )));
    }
    Ok((identity, uid))
}

/// `GET …/management/info`.
pub async fn info(
    State(state): State<AppState>,
    certificate: Option<Extension<ClientCertificate>>,
) -> Result<Response, ConnectorError> {
    let connector = urls::enabled(&state)?;
    let (identity, _) = holder(&state, certificate.as_deref()).await?;
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
    let (identity, uid) = holder(&state, certificate.as_deref()).await?;
    let csr = read_csr(body).await?;
    let application = &identity.common_name;
    let issued = connector.authority.sign_client(
        &csr,
        &subject_of(&state, application),
        state.config.connector.certificate_validity,
        &application_holder(&uid),
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
    let (identity, _) = holder(&state, certificate.as_deref()).await?;
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
    let name = revocation.metadata.name.as_deref().unwrap_or_default();
    state
        .auth
        .revocations()
        .remember(None, name, identity.sha256.clone(), ());
    tracing::info!(application = %identity.common_name, sha256 = %identity.sha256, "a client certificate was revoked by its holder");
    Ok(StatusCode::CREATED.into_response())
}

/// One revocation per certificate: named after its fingerprint (128 bits of
/// it; a name has at most 63 characters).
fn revocation_name(sha256: &str) -> String {
    format!("sha256-{}", &sha256[..32.min(sha256.len())])
}
