//! The election loop, as client-go's leaderelection runs it: a candidate
//! tries every `RETRY` (with jitter) to take the Lease, which it may once the
//! record has not changed for a lease duration *as this candidate observed
//! it* (its own clock, so clocks need not agree); the leader renews every
//! `RETRY` and, if it could not renew for `RENEW_DEADLINE`, stops leading —
//! its term's work is told to stop — before the Lease can expire for anyone
//! else (`LEASE_DURATION`): no two replicas act as leader at once.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tokio::time::Instant;

use super::lease::{LeaseLock, LockError, Record};
use crate::config::ElectionSettings;
use crate::shutdown::{Shutdown, TermClock};

const LEASE_DURATION: Duration = Duration::from_secs(15);
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_secs(2);
/// A candidate waits `RETRY` × (1 + up to this) between tries.
const JITTER: f64 = 1.2;

/// Runs `lead` with a term's shutdown each time this replica becomes the
/// leader, and stops that term when leadership is lost or the process stops
/// (then the Lease is given up). Returns when the process stops.
pub async fn run_elected<F, Fut>(
    client: Client,
    settings: ElectionSettings,
    shutdown: Shutdown,
    lead: F,
) where
    F: Fn(Shutdown) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let lock = LeaseLock::new(
        api,
        &settings.lease,
        &settings.identity,
        LEASE_DURATION.as_secs() as i32,
    );
    let mut observed = Observed::default();
    loop {
        let Some(held_since) = acquire(&lock, &mut observed, &shutdown).await else {
            return;
        };
        tracing::info!(identity = %lock.identity(), lease = %settings.lease, "leading: controllers and operations start here");
        let (end_term, clock, term) = Shutdown::term_until(held_since + RENEW_DEADLINE);
        tokio::spawn(lead(term));
        let stopping = renew(&lock, &shutdown, &clock, held_since).await;
        let _ = end_term.send(true);
        if stopping {
            if let Err(error) = lock.release().await {
                tracing::warn!(%error, "cannot give the Lease up; another replica takes it when it expires");
            }
            return;
        }
        tracing::warn!(identity = %lock.identity(), "leadership lost: controllers and operations stopped here");
    }
}

/// The record as last seen, and when this candidate saw it change.
#[derive(Default)]
struct Observed {
    record: Option<Record>,
    at: Option<Instant>,
}

/// Tries until this candidate holds the Lease or the process stops (None).
/// The Lease is held since the successful try was sent: others count their
/// wait from when they see it written, which is no sooner.
async fn acquire(
    lock: &LeaseLock,
    observed: &mut Observed,
    shutdown: &Shutdown,
) -> Option<Instant> {
    loop {
        let sent = Instant::now();
        match try_acquire(lock, observed).await {
            Ok(true) => return Some(sent),
            Ok(false) => {}
            Err(error) => tracing::debug!(%error, "cannot take the Lease yet"),
        }
        let wait = RETRY.mul_f64(1.0 + JITTER * jitter());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.clone().wait() => return None,
        }
    }
}

async fn try_acquire(lock: &LeaseLock, observed: &mut Observed) -> Result<bool, LockError> {
    let current = lock.read().await?;
    let Some((record, lease)) = current else {
        lock.hold(None).await?;
        return Ok(true);
    };
    let now = Instant::now();
    if observed.record.as_ref() != Some(&record) {
        observed.record = Some(record.clone());
        observed.at = Some(now);
    }
    let held_by_another = record
        .holder
        .as_deref()
        .is_some_and(|holder| holder != lock.identity());
    let expired = observed.at.is_none_or(|at| now >= at + LEASE_DURATION);
    if held_by_another && !expired {
        return Ok(false);
    }
    lock.hold(Some(lease)).await?;
    Ok(true)
}

/// Renews until a renewal has failed for `RENEW_DEADLINE` (false) or the
/// process stops (true). Each renewal moves the term's clock on: the term is
/// over `RENEW_DEADLINE` after the last one even before this loop says so.
async fn renew(
    lock: &LeaseLock,
    shutdown: &Shutdown,
    clock: &TermClock,
    held_since: Instant,
) -> bool {
    let mut renewed = held_since;
    loop {
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            () = shutdown.clone().wait() => return true,
        }
        let deadline = renewed + RENEW_DEADLINE;
        // Counted from when the renewal was sent, as the Lease's others count
        // from when they see it.
        let sent = Instant::now();
        let attempt = tokio::time::timeout_at(deadline, renew_once(lock)).await;
        match attempt {
            Ok(Ok(())) => {
                renewed = sent;
                clock.extend_to(sent + RENEW_DEADLINE);
            }
            // Another replica holds it: stop at once.
            Ok(Err(LockError::Lost)) => return false,
            Ok(Err(error)) => tracing::warn!(%error, "cannot renew the Lease"),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

async fn renew_once(lock: &LeaseLock) -> Result<(), LockError> {
    match lock.read().await? {
        Some((record, lease)) if record.holder.as_deref() == Some(lock.identity()) => {
            lock.hold(Some(lease)).await
        }
        // Someone else holds it now: renewing would steal it back.
        _ => Err(LockError::Lost),
    }
}

/// A number in [0, 1) for jitter.
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}
