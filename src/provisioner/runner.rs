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
//! answer is its outcome and nothing runs on behind it. A leader whose term is
//! over (its Lease lost, or its clock run out while the process was paused)
//! runs no further step, no undo, and records no end: the next leader does. A failed update puts the
//! delivery options it changed back before its end is recorded.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use tokio::sync::OwnedMutexGuard;

use super::backoff::Backoff;
use super::context::Context;
use super::job::Job;
use super::plan::{Plan, Progress, Step};
use super::steps;
use crate::resources::{OperationKind, OperationState, ServiceInstance, condition::now_rfc3339};
use crate::shutdown::Shutdown;
use crate::store::StoreError;

/// Why an operation stopped before its end.
enum Stop {
    Failed(String),
    ShuttingDown,
}

/// Runs the operations recorded on `record` until none is left, unless a runner
/// already works on it (that one then looks again before it stops). Only the
/// leader runs operations; one recorded on a follower is run by the leader,
/// which watches the records.
pub fn spawn(context: Arc<Context>, record: String) {
    let Some(term) = context.term() else {
        return;
    };
    if !context.runners().claim(&record) {
        return;
    }
    tokio::spawn(async move {
        loop {
            run(&context, &record, &term).await;
            if context.runners().release(&record) {
                break;
            }
        }
    });
}

async fn run(context: &Arc<Context>, name: &str, term: &Shutdown) {
    let metrics = context.metrics();
    loop {
        let instance: Option<ServiceInstance> = match context.store().get(None, name).await {
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
        metrics.operation_started(kind);
        let job = Job::new(context.clone(), &instance, &operation).during(term.clone());
        tracing::info!(instance_id = %instance.spec.instance_id, operation = %operation.id, kind, "operation running");
        // A failed update takes its delivery claim back and records its end
        // under the namespace's lock: until the end is recorded, other
        // operations read the update's claim from the record.
        let mut undo_lock = None;
        let outcome = match run_plan(&job, &steps::plan(operation.kind)).await {
            Err(Stop::Failed(_)) if term.is_a_term_over() => Err(Stop::ShuttingDown),
            Err(Stop::Failed(reason)) if operation.kind == OperationKind::Update => {
                match lock_for_undo(&job).await {
                    Ok(guard) => {
                        undo_lock = guard;
                        Err(Stop::Failed(undo_update(&job, reason).await))
                    }
                    Err(stop) => Err(stop),
                }
            }
            outcome => outcome,
        };
        let (state, description) = match outcome {
            Ok(()) => (OperationState::Succeeded, format!("{kind} succeeded")),
            Err(Stop::Failed(reason)) => (OperationState::Failed, reason),
            Err(Stop::ShuttingDown) => {
                metrics.operation_finished(kind, "interrupted");
                return;
            }
        };
        if term.is_a_term_over() {
            // The end is the next leader's to record.
            metrics.operation_finished(kind, "interrupted");
            return;
        }
        match finish(context, name, &operation.id, state, &description).await {
            Ok(()) => {
                metrics.operation_finished(kind, state.as_str());
                tracing::info!(instance_id = %instance.spec.instance_id, operation = %operation.id, state = state.as_str(), %description, "operation ended");
                context.announce_finished(&operation.id, state);
            }
            Err(error) => {
                tracing::error!(instance = name, %error, "cannot record the end of an operation; it resumes at next start");
                metrics.operation_finished(kind, "interrupted");
                return;
            }
        }
        drop(undo_lock);
    }
}

/// Runs the plan's steps in order, holding the namespace's lock across each run
/// of consecutive steps that ask for it.
async fn run_plan(job: &Job, plan: &Plan) -> Result<(), Stop> {
    let mut namespace_lock = None;
    for (label, step) in plan.numbered() {
        if !step.namespace_lock {
            namespace_lock = None;
        } else if namespace_lock.is_none() {
            namespace_lock = Some(lock_namespace(job, &label).await?);
        }
        run_step(job, &label, step).await?;
    }
    Ok(())
}

/// The namespace's lock, waited for no longer than a step may wait: another
/// operation in the namespace holds it while its own steps wait, and a
/// synchronous request must be answered with this one's outcome, not run on.
async fn lock_namespace(job: &Job, label: &str) -> Result<OwnedMutexGuard<()>, Stop> {
    let (deadline, giving_up) = job.give_up_at();
    let mut lock = std::pin::pin!(job.lock_namespace());
    if let Some(guard) = (&mut lock).now_or_never() {
        return Ok(guard);
    }
    let waiting = "another operation in the namespace is running";
    job.record(&format!("{label}: waiting: {waiting}"), 0).await;
    tokio::select! {
        guard = lock => Ok(guard),
        () = tokio::time::sleep_until(deadline.into()) => {
            Err(Stop::Failed(format!("{label} {giving_up}: {waiting}")))
        }
        () = job.shutdown().wait() => Err(Stop::ShuttingDown),
    }
}

/// The namespace's lock for a failed update's undo, waited for as long as it
/// takes — unless a request waits for the answer: its wait is over or nearly
/// (the failure may be its deadline), so the lock is taken only if free and
/// otherwise the undo goes without it, as before updates took it.
async fn lock_for_undo(job: &Job) -> Result<Option<OwnedMutexGuard<()>>, Stop> {
    let mut lock = std::pin::pin!(job.lock_namespace());
    if let Some(guard) = (&mut lock).now_or_never() {
        return Ok(Some(guard));
    }
    if job.is_answered_at_the_end() {
        return Ok(None);
    }
    tokio::select! {
        guard = lock => Ok(Some(guard)),
        () = job.shutdown().wait() => Err(Stop::ShuttingDown),
    }
}

/// A failed update puts back what it changed before its end is recorded (and a
/// synchronous request answered): see `steps::restore_parameters`.
async fn undo_update(job: &Job, reason: String) -> String {
    let why = match steps::restore_parameters(job).await {
        Ok(Progress::Done) => {
            return format!("{reason}; the previous delivery options are back in place");
        }
        Ok(Progress::Fail(why) | Progress::Wait(why)) => why,
        Err(error) => error.to_string(),
    };
    tracing::error!(instance_id = %job.spec().instance_id, %why, "a failed update could not put the previous delivery options back");
    format!("{reason}; putting the previous delivery options back failed: {why}")
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
    context: &Context,
    name: &str,
    operation: &str,
    state: OperationState,
    description: &str,
) -> Result<(), StoreError> {
    context
        .store()
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

/// Runs one step until it is done, fails, or time runs out; records what it waits
/// on. `label` is its place in the plan (`step 2/5 label-namespace`).
async fn run_step(job: &Job, label: &str, step: &Step) -> Result<(), Stop> {
    let (deadline, giving_up) = job.give_up_at();
    let mut backoff = Backoff::default();
    let mut attempts = 0u32;
    let mut last_reason = String::new();
    loop {
        // A term that ended (or whose clock ran out while the process was
        // paused) acts no more: another leader may be running this operation.
        if job.shutdown().is_a_term_over() {
            return Err(Stop::ShuttingDown);
        }
        attempts += 1;
        let progress = (step.run)(job)
            .await
            .unwrap_or_else(|error| Progress::Wait(format!("store error: {error}")));
        match progress {
            Progress::Done => {
                job.record(&format!("{label}: done"), attempts).await;
                return Ok(());
            }
            Progress::Fail(reason) => {
                return Err(Stop::Failed(format!("{label} failed: {reason}")));
            }
            Progress::Wait(reason) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Stop::Failed(format!("{label} {giving_up}: {reason}")));
                }
                if reason != last_reason {
                    job.record(&format!("{label}: waiting: {reason}"), attempts)
                        .await;
                    last_reason = reason;
                }
                // Never past the deadline: a synchronous request waits for the end.
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay().min(deadline - now)) => {}
                    () = job.shutdown().wait() => return Err(Stop::ShuttingDown),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::future::BoxFuture;

    use super::*;
    use crate::resources::{Operation, ServiceInstanceSpec};
    use crate::store::{EmbeddedStore, Store, TypedStore};

    static RUNS: AtomicUsize = AtomicUsize::new(0);

    fn counted(_: &Job) -> BoxFuture<'_, Result<Progress, StoreError>> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Progress::Done) })
    }

    static COUNTED: Step = Step {
        name: "counted",
        doc: "counts its runs",
        run: counted,
        namespace_lock: false,
        undo: None,
    };

    /// A leader paused past its renew deadline (SIGSTOP, a frozen VM) runs
    /// no step once it runs again, even before it hears it lost the Lease:
    /// another replica may be running the operation by then.
    #[tokio::test(start_paused = true)]
    async fn a_term_whose_clock_ran_out_runs_no_further_step() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(&dir.path().join("store.db")).expect("store");
        let store = TypedStore::new(Arc::new(store) as Arc<dyn Store>);
        let (_stop, process) = Shutdown::new();
        let (_end, _clock, term) =
            Shutdown::term_until(tokio::time::Instant::now() + Duration::from_secs(10));
        let instance = ServiceInstance::new("a", ServiceInstanceSpec::default());
        let job = Job::new(
            Context::for_tests(store, process),
            &instance,
            &Operation::default(),
        )
        .during(term);

        assert!(run_step(&job, "step 1/2 counted", &COUNTED).await.is_ok());
        assert_eq!(RUNS.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(matches!(
            run_step(&job, "step 2/2 counted", &COUNTED).await,
            Err(Stop::ShuttingDown)
        ));
        assert_eq!(RUNS.load(Ordering::SeqCst), 1, "the step did not run");
    }
}
