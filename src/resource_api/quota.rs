//! What a namespace's tokens may fill it with: a create by a namespace token
//! is refused once its namespace holds `--namespace-object-quota` objects or
//! would pass `--namespace-bytes-quota` bytes (as Kubernetes refuses a create
//! past a ResourceQuota: 403, "exceeded quota"). Every object a namespace
//! holds costs memory each time it is listed or watched, and disk; the admin
//! and meshbroker's own controllers are not refused. Stores that do not count
//! (a Kubernetes API server, which has ResourceQuotas) answer no usage.

use super::ApiError;
use crate::auth::Caller;
use crate::state::AppState;

/// Refuses a namespace token's create of an object of `size` bytes when its
/// namespace has no room for it.
pub async fn check_room(state: &AppState, caller: &Caller, size: usize) -> Result<(), ApiError> {
    let Caller::Namespace(namespace) = caller else {
        return Ok(());
    };
    let Some(held) = state.store.raw().namespace_usage(namespace).await? else {
        return Ok(());
    };
    let quota = state.config.namespace_quota;
    if held.objects < quota.objects && held.bytes + size as u64 <= quota.bytes {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "exceeded quota: namespace {namespace:?} holds {} objects of {} bytes, and its tokens create none past {} objects or {} bytes (--namespace-object-quota, --namespace-bytes-quota); delete some first",
        held.objects, held.bytes, quota.objects, quota.bytes
    )))
}
