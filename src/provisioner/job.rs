//! `Job`: one operation being run on one instance — what its steps work on, when
//! its answer is due, and where its progress is recorded.

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use tokio::sync::OwnedMutexGuard;

use super::context::Context;
use super::names::subscription_name;
use crate::resources::{
    Conditions, Operation, ServiceInstance, ServiceInstanceSpec, parameters_requested,
};
use crate::shutdown::Shutdown;
use crate::store::TypedStore;

pub struct Job {
    context: Arc<Context>,
    /// The name of the instance's record.
    record: String,
    operation: String,
    spec: ServiceInstanceSpec,
    /// What an update asked for: `{"parameters": …, "context": …}`.
    request: Option<serde_json::Value>,
    /// When a synchronous request's answer is due (the operation's deadline).
    answer_due: Option<Instant>,
    /// The leadership term the job runs in; it stops when the term ends.
    term: Option<Shutdown>,
}

impl Job {
    pub fn new(context: Arc<Context>, instance: &ServiceInstance, operation: &Operation) -> Self {
        Self {
            context,
            record: instance.name_any(),
            operation: operation.id.clone(),
            spec: instance.spec.clone(),
            request: operation.request.clone(),
            answer_due: operation.time_left().map(|left| Instant::now() + left),
            term: None,
        }
    }

    /// Runs within a leadership term: `shutdown` is then the term's.
    pub fn during(mut self, term: Shutdown) -> Self {
        self.term = Some(term);
        self
    }

    pub fn store(&self) -> &TypedStore {
        self.context.store()
    }

    /// The instance as it was when the operation (re)started.
    pub fn spec(&self) -> &ServiceInstanceSpec {
        &self.spec
    }

    /// The parameters an update asked for; None when it asked for none (or for
    /// `null`) and for other operations.
    pub fn requested_parameters(&self) -> Option<&serde_json::Value> {
        parameters_requested(self.request.as_ref())
    }

    pub fn integration_namespace(&self) -> &str {
        &self.context.settings().integration_namespace
    }

    /// The Subscription carrying the instance's Application to its namespace.
    pub fn subscription_name(&self) -> String {
        subscription_name(&self.spec.application, &self.spec.namespace)
    }

    /// Holds the instance's namespace for namespace-wide steps.
    pub async fn lock_namespace(&self) -> OwnedMutexGuard<()> {
        self.context.lock_namespace(&self.spec.namespace).await
    }

    pub fn shutdown(&self) -> Shutdown {
        self.term
            .clone()
            .unwrap_or_else(|| self.context.shutdown().clone())
    }

    /// When a step that has waited since now gives up, and the words for why: the
    /// operation timeout, or the end of a synchronous request's wait if sooner.
    /// Whether a request without `accepts_incomplete` waits for this
    /// operation's outcome (it has a deadline).
    pub fn is_answered_at_the_end(&self) -> bool {
        self.answer_due.is_some()
    }

    pub fn give_up_at(&self) -> (Instant, String) {
        let timeout = self.context.settings().operation_timeout;
        let timed_out = Instant::now() + timeout;
        match self.answer_due {
            Some(due) if due < timed_out => (
                due,
                "did not finish within the synchronous wait (provision, update or deprovision with accepts_incomplete=true to let it take longer)".into(),
            ),
            _ => (timed_out, format!("gave up after {}s", timeout.as_secs())),
        }
    }

    /// What an operation waiting for `object` says: who has to report it Ready,
    /// and what its Ready condition says so far.
    pub fn not_ready(&self, object: &str, status: &impl Conditions) -> String {
        let why = status
            .condition("Ready")
            .map(|c| {
                let detail = c.message.as_deref().or(c.reason.as_deref());
                format!(
                    "Ready is {:?}: {}",
                    c.status,
                    detail.unwrap_or("no reason given")
                )
            })
            .unwrap_or_else(|| "no Ready condition yet".into());
        format!(
            "waiting for {} to report {object} Ready ({why})",
            self.context.settings().mesh_served_by
        )
    }

    /// Writes progress into the operation's description; a failure to record is
    /// logged, not fatal: the step itself went fine.
    pub async fn record(&self, description: &str, attempts: u32) {
        let operation = self.operation.clone();
        let result = self
            .store()
            .modify::<ServiceInstance, _>(None, &self.record, |instance| {
                let status = instance.status.get_or_insert_with(Default::default);
                match status.operations.iter_mut().find(|o| o.id == operation) {
                    Some(op) if op.description != description || op.attempts != attempts => {
                        op.description = description.to_string();
                        op.attempts = attempts;
                        true
                    }
                    _ => false,
                }
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(instance_id = %self.spec.instance_id, %error, "cannot record operation progress");
        }
        tracing::info!(instance_id = %self.spec.instance_id, operation = %self.operation, "{description}");
    }
}
