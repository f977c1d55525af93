//! How long a stream may run on the credential that opened it: a watch or tail
//! ends once that bearer token no longer opens what it opened (deleted, or its
//! namespace deleted), as a new request with it would get a 401 — it does not
//! stream on for a credential that is gone.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;

use super::{Authenticator, Caller};
use crate::shutdown::Shutdown;

/// How often an open stream checks its credential: a token lookup in memory.
const RECHECK: Duration = Duration::from_secs(1);

/// Resolves at shutdown, or once the bearer credential in `headers` no longer
/// resolves to `caller`.
pub async fn until_revoked(
    auth: Arc<Authenticator>,
    headers: HeaderMap,
    caller: Caller,
    shutdown: Shutdown,
) {
    let revoked = async {
        let mut every = tokio::time::interval(RECHECK);
        loop {
            every.tick().await;
            if auth.bearer(&headers).ok().as_ref() != Some(&caller) {
                return;
            }
        }
    };
    tokio::select! {
        () = revoked => {}
        () = shutdown.wait() => {}
    }
}
