//! Runs an instance's operation to its end: the steps of its kind, each retried
//! with backoff while it waits on something, each recorded in the operation's
//! description, all within the operation timeout; then the outcome is recorded.
//!
//! Guarantees: one runner per instance record at a time; an operation recorded
//! while its record's runner is finishing is run by that runner (it looks again
//! before it stops), never left waiting for a restart; a runner stopped by
//! shutdown leaves the operation `in progress`, and `Provisioner::resume` picks it
//! up on the next start (the steps are idempotent, so they simply run again).
//! The timeout counts from the (re)start, so a resumed operation gets a full window;
//! an operation with a deadline (started for a synchronous request) never waits past
//! it — a step still waiting then fails it, also after a restart, so the request's
//! answer is its outcome and nothing runs on behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::service::Inner;
use super::steps::{self, Steps};
use crate::resources::{OperationKind, OperationState, ServiceInstance, condition::now_rfc3339};
use crate::store::StoreError;

pub(super) const FIRST_DELAY: Duration = Duration::from_millis(100);
pub(super) const LONGEST_DELAY: Duration = Duration::from_secs(5);

/// What a step says about itself.
pub enum Progress {
    Done,
    /// Not yet: something it needs is not ready. Retried with backoff.
    Wait(String),
    /// Cannot succeed: the operation fails with this reason.
    Fail(String),
}

/// Why an operation stopped before its end.
pub enum Stop {
    Failed(String),
    ShuttingDown,
}

/// The instance records that have a runner, each with whether work arrived for it
/// since its runner last read the record.
///
/// A runner that read its record, found nothing to run and is about to stop would
/// otherwise miss an operation recorded in between: `spawn` sees a runner and
/// starts none. So `claim` marks the running one woken, and `release` — under the
/// same lock — lets a woken runner stop only after it has looked again.
#[derive(Default)]
pub struct Runners(Mutex<HashMap<String, bool>>);

impl Runners {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, bool>> {
        // The map stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when the caller must start a runner for `name`; false when one runs,
    /// which is then told to read its record again before it stops.
    fn claim(&self, name: &str) -> bool {
        let mut runners = self.lock();
        match runners.get_mut(name) {
            Some(woken) => {
                *woken = true;
                false
            }
            None => {
                runners.insert(name.to_string(), false);
                true
            }
        }
    }

    /// A runner that found nothing more to run asks to stop: true when it may (it
    /// is forgotten, so the next `claim` starts a new one), false when work arrived
    /// since it last read the record.
    fn release(&self, name: &str) -> bool {
        let mut runners = self.lock();
        match runners.get_mut(name) {
            Some(woken) if *woken => {
                *woken = false;
                false
            }
            _ => {
                runners.remove(name);
                true
            }
        }
    }
}

pub fn spawn(inner: Arc<Inner>, name: String) {
    if !inner.runners.claim(&name) {
        return;
    }
    tokio::spawn(async move {
        loop {
            run(&inner, &name).await;
            if inner.runners.release(&name) {
                break;
            }
        }
    });
}

async fn run(inner: &Arc<Inner>, name: &str) {
    loop {
        let instance: Option<ServiceInstance> = match inner.store.get(None, name).await {
            Ok(instance) => instance,
            Err(error) => {
                tracing::error!(instance = name, %error, "cannot read the instance record; the operation resumes at next start");
                return;
            }
        };
        let Some(instance) = instance else { return };
        let Some(operation) = instance.running_operation().cloned() else {
            return;
        };
        let kind = kind_label(operation.kind);
        inner.metrics.operation_started(kind);
        let steps = Steps::new(inner.clone(), &instance, &operation);
        tracing::info!(instance_id = %instance.spec.instance_id, operation = %operation.id, kind, "operation running");
        let outcome = match operation.kind {
            OperationKind::Provision => steps::provision(&steps).await,
            OperationKind::Update => steps::update(&steps, operation.request.as_ref()).await,
            OperationKind::Deprovision => steps::deprovision(&steps).await,
        };
        let (state, description) = match outcome {
            Ok(()) => (OperationState::Succeeded, format!("{kind} succeeded")),
            Err(Stop::Failed(reason)) => (OperationState::Failed, reason),
            Err(Stop::ShuttingDown) => {
                inner.metrics.operation_finished(kind, "interrupted");
                return;
            }
        };
        match finish(inner, name, &operation.id, state, &description).await {
            Ok(()) => {
                inner.metrics.operation_finished(kind, state.as_str());
                tracing::info!(instance_id = %instance.spec.instance_id, operation = %operation.id, state = state.as_str(), %description, "operation ended");
                // No listeners is fine: nobody is waiting synchronously.
                let _ = inner.finished.send((operation.id.clone(), state));
            }
            Err(error) => {
                tracing::error!(instance = name, %error, "cannot record the end of an operation; it resumes at next start");
                inner.metrics.operation_finished(kind, "interrupted");
                return;
            }
        }
    }
}

fn kind_label(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Provision => "provision",
        OperationKind::Update => "update",
        OperationKind::Deprovision => "deprovision",
    }
}

/// Records the outcome and what it means for the instance.
async fn finish(
    inner: &Inner,
    name: &str,
    operation: &str,
    state: OperationState,
    description: &str,
) -> Result<(), StoreError> {
    inner
        .store
        .modify::<ServiceInstance, _>(None, name, |instance| {
            let spec_update = instance
                .operation(operation)
                .and_then(|o| o.request.clone());
            let status = instance.status.get_or_insert_with(Default::default);
            let Some(op) = status.operations.iter_mut().find(|o| o.id == operation) else {
                return false;
            };
            op.state = state;
            op.description = description.to_string();
            op.finished_at = Some(now_rfc3339());
            let kind = op.kind;
            if state == OperationState::Succeeded {
                match kind {
                    OperationKind::Provision => status.provisioned = true,
                    OperationKind::Deprovision => {
                        status.provisioned = false;
                        status.deleted = true;
                    }
                    OperationKind::Update => {
                        if let Some(update) = spec_update {
                            instance.spec.parameters =
                                update.get("parameters").cloned().filter(|p| !p.is_null());
                            if let Some(context) = update.get("context").filter(|c| !c.is_null()) {
                                instance.spec.context = Some(context.clone());
                            }
                        }
                    }
                }
            }
            true
        })
        .await
        .map(|_| ())
}

/// Runs one step until it is done, fails, or time runs out; records what it waits on.
pub async fn run_step<F, Fut>(
    steps: &Steps,
    number: usize,
    total: usize,
    name: &str,
    mut attempt: F,
) -> Result<(), Stop>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Progress, StoreError>>,
{
    let (deadline, giving_up) = steps.give_up_at();
    let mut delay = FIRST_DELAY;
    let mut attempts = 0u32;
    let mut last_reason = String::new();
    loop {
        attempts += 1;
        let progress = attempt()
            .await
            .unwrap_or_else(|error| Progress::Wait(format!("store error: {error}")));
        match progress {
            Progress::Done => {
                steps
                    .record(&format!("step {number}/{total} {name}: done"), attempts)
                    .await;
                return Ok(());
            }
            Progress::Fail(reason) => {
                return Err(Stop::Failed(format!(
                    "step {number}/{total} {name} failed: {reason}"
                )));
            }
            Progress::Wait(reason) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Stop::Failed(format!(
                        "step {number}/{total} {name} {giving_up}: {reason}"
                    )));
                }
                if reason != last_reason {
                    steps
                        .record(
                            &format!("step {number}/{total} {name}: waiting: {reason}"),
                            attempts,
                        )
                        .await;
                    last_reason = reason;
                }
                // Never past the deadline: a synchronous request waits for the end.
                tokio::select! {
                    () = tokio::time::sleep(delay.min(deadline - now)) => {}
                    () = steps.shutdown().wait() => return Err(Stop::ShuttingDown),
                }
                delay = (delay * 2).min(LONGEST_DELAY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Runners;

    #[test]
    fn work_recorded_while_a_runner_finishes_is_run_by_it() {
        let runners = Runners::default();
        assert!(runners.claim("a"), "no runner yet: start one");
        assert!(!runners.claim("a"), "one runs: it is woken instead");
        assert!(!runners.release("a"), "woken: it reads the record again");
        assert!(runners.release("a"), "nothing new since: it stops");
        assert!(runners.claim("a"), "the next operation starts a new runner");
        assert!(runners.claim("b"), "records are independent");
    }
}
