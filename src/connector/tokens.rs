//! The one-time tokens of a TokenRequest: the configuration token (in its
//! status, as Kyma shows it) and the CSR token minted when the configuration
//! is fetched (only its digest kept). Each is spent by a write that holds only
//! if nobody changed the request since it was read, so of two callers racing
//! with one token exactly one gets through, on any replica.

use jiff::Timestamp;

use super::error::ConnectorError;
use crate::auth::{generate_token, sha256_hex};
use crate::resources::{Application, TokenRequest, TokenRequestStatus, token_state};
use crate::state::AppState;
use crate::store::{LabelSelector, StoreError};

const SPENT: &str = "the token is not valid: unknown, already used or expired";

/// Finds the request whose status `matches` and whose token has not expired.
async fn find(
    state: &AppState,
    matches: impl Fn(&TokenRequestStatus) -> bool,
) -> Result<TokenRequest, ConnectorError> {
    let requests = state
        .store
        .list::<TokenRequest>(None, &LabelSelector::everything())
        .await?;
    let request = requests
        .into_iter()
        .find(|r| r.status.as_ref().is_some_and(&matches))
        .ok_or_else(|| ConnectorError::Forbidden(SPENT.into()))?;
    let unexpired = request
        .status
        .as_ref()
        .and_then(|s| s.expire_after.parse::<Timestamp>().ok())
        .is_some_and(|at| at > Timestamp::now());
    if !unexpired {
        return Err(ConnectorError::Forbidden(SPENT.into()));
    }
    Ok(request)
}

/// The request's Application must be the one its token was minted for:
/// deleted, or deleted and registered again, it is not. Answers its uid.
pub async fn check_application(
    state: &AppState,
    request: &TokenRequest,
) -> Result<String, ConnectorError> {
    let minted_for = request
        .status
        .as_ref()
        .map(|s| (s.application.as_str(), s.application_uid.as_str()))
        .unwrap_or_default();
    let current = state
        .store
        .get::<Application>(None, minted_for.0)
        .await?
        .and_then(|found| found.metadata.uid);
    if minted_for.1.is_empty() || current.as_deref() != Some(minted_for.1) {
        return Err(ConnectorError::Forbidden(format!(
            "the token was issued for an Application {:?} that was deleted since",
            minted_for.0
        )));
    }
    Ok(minted_for.1.to_string())
}

/// Writes the spent request; a lost race means the token was used meanwhile.
async fn spend(state: &AppState, request: TokenRequest) -> Result<TokenRequest, ConnectorError> {
    match state.store.replace(&request).await {
        Ok(spent) => Ok(spent),
        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {
            Err(ConnectorError::Forbidden(SPENT.into()))
        }
        Err(other) => Err(other.into()),
    }
}

/// Spends a configuration token; answers the Application and the CSR token.
pub async fn spend_configuration_token(
    state: &AppState,
    token: &str,
) -> Result<(String, String), ConnectorError> {
    let mut request = find(state, |s| {
        s.state == token_state::OK && !s.token.is_empty() && s.token == token
    })
    .await?;
    check_application(state, &request).await?;
    let csr_token = generate_token("").map_err(|e| ConnectorError::Internal(e.to_string()))?;
    let ttl = jiff::SignedDuration::try_from(state.config.connector.token_ttl)
        .map_err(|e| ConnectorError::Internal(e.to_string()))?;
    let expire_after = Timestamp::now()
        .checked_add(ttl)
        .map_err(|e| ConnectorError::Internal(e.to_string()))?;
    let status = request.status.get_or_insert_default();
    status.state = token_state::CONFIGURED.into();
    status.token.clear();
    status.url.clear();
    status.csr_token_sha256 = sha256_hex(&csr_token);
    status.expire_after = expire_after.to_string();
    let application = status.application.clone();
    spend(state, request).await?;
    Ok((application, csr_token))
}

/// The request a CSR token belongs to, not yet spent.
pub async fn csr_request(state: &AppState, token: &str) -> Result<TokenRequest, ConnectorError> {
    let digest = sha256_hex(token);
    find(state, |s| {
        s.state == token_state::CONFIGURED && s.csr_token_sha256 == digest
    })
    .await
}

/// Spends the CSR token of `request` (as `csr_request` read it).
pub async fn spend_csr_token(
    state: &AppState,
    mut request: TokenRequest,
) -> Result<(), ConnectorError> {
    let status = request.status.get_or_insert_default();
    status.state = token_state::ISSUED.into();
    status.csr_token_sha256.clear();
    spend(state, request).await.map(|_| ())
}
