//! `Provisioner`: the requests the OSB layer makes, each decided against the
//! instance's durable record and answered with an operation to follow.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use tokio::sync::broadcast;

use super::context::Context;
use super::names::{instance_object_name, new_operation_id};
use super::requests::{
    Accepted, Bound, Completion, DeprovisionRequest, ProvisionError, ProvisionRequest,
    UpdateRequest,
};
use super::settings::ProvisionerSettings;
use super::{runner, steps};
use crate::resources::{
    Binding, Operation, OperationKind, OperationState, ServiceInstance, ServiceInstanceSpec,
    ServiceInstanceStatus, condition::now_rfc3339, labels,
};
use crate::shutdown::Shutdown;
use crate::store::{LabelSelector, StoreError, TypedStore};
use crate::telemetry::Metrics;

/// How many finished operations a record keeps for last_operation to find.
const OPERATIONS_KEPT: usize = 10;
/// How often a request re-decides after losing a write race on the same record.
const DECISION_RETRIES: usize = 5;
/// How often a waiting request reads the record of an operation run elsewhere.
const REREAD: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Provisioner {
    context: Arc<Context>,
}

impl Provisioner {
    pub fn new(
        store: TypedStore,
        settings: ProvisionerSettings,
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            context: Arc::new(Context::new(store, settings, metrics, shutdown)),
        }
    }

    /// What the provisioner's operations share (for the tombstone sweep).
    pub(super) fn context(&self) -> &Context {
        &self.context
    }

    /// Runs operations from now until `term` ends (this replica leads, or
    /// is the only one): every operation recorded as running — interrupted by
    /// a stop, or recorded by another replica — and each one recorded from
    /// now on (`run`, which the leader's watch calls too); and forgets expired
    /// deprovisioned records meanwhile.
    pub async fn lead(&self, term: Shutdown) -> Result<usize, StoreError> {
        self.context.set_term(term.clone());
        let instances: Vec<ServiceInstance> = self
            .context
            .store()
            .list(None, &LabelSelector::everything())
            .await?;
        let mut resumed = 0;
        for instance in instances.iter().filter(|i| i.running_operation().is_some()) {
            tracing::info!(instance_id = %instance.spec.instance_id, "resuming an interrupted operation");
            runner::spawn(self.context.clone(), instance.name_any());
            resumed += 1;
        }
        tokio::spawn(self.clone().forget_deprovisioned_until(term));
        Ok(resumed)
    }

    /// Runs the operation recorded on instance record `record`, if this
    /// replica leads and none runs it yet.
    pub fn run(&self, record: &str) {
        runner::spawn(self.context.clone(), record.to_string());
    }

    pub async fn instance(&self, instance_id: &str) -> Result<Option<ServiceInstance>, StoreError> {
        self.context
            .store()
            .get(None, &instance_object_name(instance_id))
            .await
    }

    /// Waits up to `timeout` for an operation to end; its final state, or None.
    /// Operations ending here are announced; one run by another replica (the
    /// leader) is seen by reading the record again every `REREAD`.
    pub async fn wait(
        &self,
        instance_id: &str,
        operation: &str,
        timeout: Duration,
    ) -> Result<Option<OperationState>, StoreError> {
        let mut finished = self.context.subscribe_finished();
        let current = self.instance(instance_id).await?;
        match current
            .as_ref()
            .and_then(|i| i.operation(operation))
            .map(|o| o.state)
        {
            Some(OperationState::InProgress) => {}
            other => return Ok(other),
        }
        let waiting = async {
            loop {
                let heard = tokio::select! {
                    heard = finished.recv() => heard,
                    () = tokio::time::sleep(REREAD) => Err(broadcast::error::RecvError::Lagged(0)),
                };
                match heard {
                    Ok((id, state)) if id == operation => return Ok(Some(state)),
                    Ok(_) => {}
                    // Missed announcements, or none heard for a while: read
                    // the record instead.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let state = self
                            .instance(instance_id)
                            .await?
                            .and_then(|i| i.operation(operation).map(|o| o.state));
                        if state != Some(OperationState::InProgress) {
                            return Ok(state);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(None),
                }
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .unwrap_or(Ok(None))
    }

    pub async fn provision(
        &self,
        request: ProvisionRequest,
        completion: Completion,
    ) -> Result<Accepted, ProvisionError> {
        let name = instance_object_name(&request.instance_id);
        for _ in 0..DECISION_RETRIES {
            let existing: Option<ServiceInstance> = self.context.store().get(None, &name).await?;
            let record = match existing {
                Some(instance) if instance.is_live() => {
                    if !same_attributes(&instance.spec, &request) {
                        return Err(ProvisionError::Conflict(format!(
                            "instance {} already exists with other attributes (service, plan, namespace, organization, space or parameters)",
                            request.instance_id
                        )));
                    }
                    match instance.running_operation() {
                        Some(op) if op.kind == OperationKind::Provision => {
                            return Ok(Accepted::Started {
                                operation: op.id.clone(),
                                fresh: false,
                            });
                        }
                        Some(op) => return Err(concurrency(&request.instance_id, op)),
                        None if instance.status_or_default().provisioned => {
                            return Ok(Accepted::AlreadyDone);
                        }
                        // The last provisioning failed: this request tries again.
                        None => instance,
                    }
                }
                Some(tombstone) => {
                    let mut reused = tombstone;
                    reused.spec = spec_of(&request);
                    reused.status = Some(ServiceInstanceStatus {
                        operations: reused
                            .status
                            .take()
                            .map(|s| s.operations)
                            .unwrap_or_default(),
                        ..Default::default()
                    });
                    reused
                }
                None => new_record(&name, &request),
            };
            if request.unchecked {
                return Err(ProvisionError::Unchecked);
            }
            if let Some(accepted) = self
                .start(record, OperationKind::Provision, None, completion)
                .await?
            {
                return Ok(accepted);
            }
        }
        Err(ProvisionError::Concurrency(format!(
            "instance {} is being changed by other requests; retry",
            request.instance_id
        )))
    }

    pub async fn update(
        &self,
        request: UpdateRequest,
        completion: Completion,
    ) -> Result<Accepted, ProvisionError> {
        let name = instance_object_name(&request.instance_id);
        for _ in 0..DECISION_RETRIES {
            let instance: Option<ServiceInstance> = self.context.store().get(None, &name).await?;
            let Some(mut instance) = instance.filter(|i| i.is_live()) else {
                return Err(ProvisionError::NotFound(format!(
                    "instance {} does not exist",
                    request.instance_id
                )));
            };
            if instance.spec.service_id != request.service_id {
                return Err(ProvisionError::BadRequest(format!(
                    "instance {} is of service {}, not {}",
                    request.instance_id, instance.spec.service_id, request.service_id
                )));
            }
            if let Some(plan) = request
                .plan_id
                .as_ref()
                .filter(|p| **p != instance.spec.plan_id)
            {
                return Err(ProvisionError::Unprocessable(format!(
                    "the plan of instance {} cannot change to {plan}: the plan is not updateable",
                    request.instance_id
                )));
            }
            let parameters = request
                .parameters
                .clone()
                .or_else(|| instance.spec.parameters.clone());
            let wanted =
                serde_json::json!({ "parameters": parameters, "context": request.context });
            match instance.running_operation() {
                Some(op)
                    if op.kind == OperationKind::Update && op.request.as_ref() == Some(&wanted) =>
                {
                    return Ok(Accepted::Started {
                        operation: op.id.clone(),
                        fresh: false,
                    });
                }
                Some(op) => return Err(concurrency(&request.instance_id, op)),
                None => {}
            }
            if !instance.status_or_default().provisioned {
                return Err(ProvisionError::Unprocessable(format!(
                    "instance {} was not provisioned successfully; deprovision it and provision again",
                    request.instance_id
                )));
            }
            if same_parameters(parameters.as_ref(), instance.spec.parameters.as_ref()) {
                if let Some(context) = request
                    .context
                    .clone()
                    .filter(|c| Some(c) != instance.spec.context.as_ref())
                {
                    instance.spec.context = Some(context);
                    match self.write(instance).await {
                        Err(error) if error.is_conflict() => continue,
                        other => other?,
                    }
                }
                return Ok(Accepted::AlreadyDone);
            }
            if let Some(accepted) = self
                .start(instance, OperationKind::Update, Some(wanted), completion)
                .await?
            {
                return Ok(accepted);
            }
        }
        Err(ProvisionError::Concurrency(format!(
            "instance {} is being changed by other requests; retry",
            request.instance_id
        )))
    }

    pub async fn deprovision(
        &self,
        request: DeprovisionRequest,
        completion: Completion,
    ) -> Result<Accepted, ProvisionError> {
        let name = instance_object_name(&request.instance_id);
        for _ in 0..DECISION_RETRIES {
            let instance: Option<ServiceInstance> = self.context.store().get(None, &name).await?;
            let Some(instance) = instance.filter(|i| i.is_live()) else {
                return Err(ProvisionError::Gone(format!(
                    "instance {} does not exist",
                    request.instance_id
                )));
            };
            if instance.spec.service_id != request.service_id
                || instance.spec.plan_id != request.plan_id
            {
                return Err(ProvisionError::BadRequest(format!(
                    "instance {} is of service {} plan {}, not service {} plan {}",
                    request.instance_id,
                    instance.spec.service_id,
                    instance.spec.plan_id,
                    request.service_id,
                    request.plan_id
                )));
            }
            match instance.running_operation() {
                Some(op) if op.kind == OperationKind::Deprovision => {
                    return Ok(Accepted::Started {
                        operation: op.id.clone(),
                        fresh: false,
                    });
                }
                Some(op) => return Err(concurrency(&request.instance_id, op)),
                None => {}
            }
            if let Some(accepted) = self
                .start(instance, OperationKind::Deprovision, None, completion)
                .await?
            {
                return Ok(accepted);
            }
        }
        Err(ProvisionError::Concurrency(format!(
            "instance {} is being changed by other requests; retry",
            request.instance_id
        )))
    }

    /// Records a binding of a provisioned instance; the same id with other
    /// parameters or another `bind_resource` is a conflict. While any operation runs on the instance
    /// (provisioning included) binding is a `Concurrency` refusal, as update and
    /// deprovision are: the platform retries once the operation has ended.
    pub async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        parameters: Option<serde_json::Value>,
        bind_resource: Option<serde_json::Value>,
    ) -> Result<Bound, ProvisionError> {
        let mut outcome = Err(ProvisionError::NotFound(format!(
            "instance {instance_id} does not exist or is not provisioned"
        )));
        self.context
            .store()
            .modify::<ServiceInstance, _>(None, &instance_object_name(instance_id), |instance| {
                if !instance.is_live() {
                    return false;
                }
                if let Some(op) = instance.running_operation() {
                    outcome = Err(concurrency(instance_id, op));
                    return false;
                }
                let status = instance.status.get_or_insert_with(Default::default);
                if !status.provisioned {
                    return false;
                }
                match status.bindings.iter().find(|b| b.id == binding_id) {
                    Some(existing)
                        if existing.parameters == parameters
                            && existing.bind_resource == bind_resource =>
                    {
                        outcome = Ok(Bound::AlreadyThere);
                        false
                    }
                    Some(_) => {
                        outcome = Err(ProvisionError::Conflict(format!(
                            "binding {binding_id} already exists with other parameters or bind_resource"
                        )));
                        false
                    }
                    None => {
                        status.bindings.push(Binding {
                            id: binding_id.to_string(),
                            parameters: parameters.clone(),
                            bind_resource: bind_resource.clone(),
                        });
                        outcome = Ok(Bound::Created);
                        true
                    }
                }
            })
            .await?;
        outcome
    }

    /// Forgets a binding; Gone when there is no such binding.
    pub async fn unbind(&self, instance_id: &str, binding_id: &str) -> Result<(), ProvisionError> {
        let mut removed = false;
        self.context
            .store()
            .modify::<ServiceInstance, _>(None, &instance_object_name(instance_id), |instance| {
                let status = instance.status.get_or_insert_with(Default::default);
                let before = status.bindings.len();
                status.bindings.retain(|b| b.id != binding_id);
                removed = status.bindings.len() != before;
                removed
            })
            .await?;
        if removed {
            Ok(())
        } else {
            Err(ProvisionError::Gone(format!(
                "binding {binding_id} of instance {instance_id} does not exist"
            )))
        }
    }

    /// Creates or replaces the record; a replace is conditional on its resourceVersion.
    async fn write(&self, record: ServiceInstance) -> Result<(), StoreError> {
        if record.metadata.resource_version.is_some() {
            self.context.store().replace(&record).await.map(|_| ())
        } else {
            self.context.store().create(&record).await.map(|_| ())
        }
    }

    /// Records a new operation on the record and starts running it; None when
    /// another writer changed the record first (the caller decides again). For a
    /// synchronous request, whether it may run is decided first (see `Completion`).
    async fn start(
        &self,
        mut record: ServiceInstance,
        kind: OperationKind,
        request: Option<serde_json::Value>,
        completion: Completion,
    ) -> Result<Option<Accepted>, ProvisionError> {
        let name = record.name_any();
        let mut operation = new_operation(kind, &record.spec.instance_id, request);
        if let Completion::Synchronous { within } = completion {
            // The answer is due `within` from now, whatever the check takes of it.
            operation.deadline = Some(Operation::deadline_after(within));
            self.check_synchronous(&record, &operation, within).await?;
        }
        let id = operation.id.clone();
        push_operation(&mut record, operation);
        match self.write(record).await {
            Ok(()) => {
                runner::spawn(self.context.clone(), name);
                Ok(Some(Accepted::Started {
                    operation: id,
                    fresh: true,
                }))
            }
            Err(error) if error.is_conflict() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Refuses a synchronous request with `AsyncRequired` before anything is
    /// written, unless the operation can be run for it: the wait is not zero
    /// ("asynchronous only"), and what the operation would wait on before its
    /// first write becomes ready within the wait (watched without writing). Such
    /// an operation can still outlast the wait (the Broker and Subscription it
    /// waits on become ready only after it wrote them): then it fails at its
    /// deadline, and the answer is a 500.
    async fn check_synchronous(
        &self,
        record: &ServiceInstance,
        operation: &Operation,
        within: Duration,
    ) -> Result<(), ProvisionError> {
        let what = match operation.kind {
            OperationKind::Provision => "provisioning",
            OperationKind::Update => "this update",
            OperationKind::Deprovision => "deprovisioning",
        };
        let instance_id = &record.spec.instance_id;
        if within.is_zero() {
            return Err(ProvisionError::AsyncRequired(format!(
                "{what} of instance {instance_id} is served asynchronously only (the broker's synchronous wait is 0s); nothing was changed: repeat the request with accepts_incomplete=true"
            )));
        }
        let until = std::time::Instant::now() + within;
        if let Some(reason) =
            steps::first_wait(self.context.clone(), record, operation, until).await?
        {
            return Err(ProvisionError::AsyncRequired(format!(
                "{what} of instance {instance_id} would have to wait: {reason}; nothing was changed: repeat the request with accepts_incomplete=true"
            )));
        }
        Ok(())
    }
}

fn concurrency(instance_id: &str, running: &Operation) -> ProvisionError {
    let kind = match running.kind {
        OperationKind::Provision => "provisioning",
        OperationKind::Update => "an update",
        OperationKind::Deprovision => "deprovisioning",
    };
    ProvisionError::Concurrency(format!(
        "instance {instance_id} is busy with {kind} (operation {}); retry when it has finished",
        running.id
    ))
}

fn spec_of(request: &ProvisionRequest) -> ServiceInstanceSpec {
    ServiceInstanceSpec {
        instance_id: request.instance_id.clone(),
        service_id: request.service_id.clone(),
        plan_id: request.plan_id.clone(),
        namespace: request.namespace.clone(),
        application: request.application.clone(),
        organization_guid: request.organization_guid.clone(),
        space_guid: request.space_guid.clone(),
        context: request.context.clone(),
        parameters: request.parameters.clone(),
        maintenance_info: request.maintenance_info.clone(),
    }
}

fn new_record(name: &str, request: &ProvisionRequest) -> ServiceInstance {
    let mut record = ServiceInstance::new(name, spec_of(request));
    let mut record_labels = std::collections::BTreeMap::new();
    record_labels.insert(
        labels::MANAGED_BY.to_string(),
        labels::MANAGED_BY_VALUE.to_string(),
    );
    record.metadata.labels = Some(record_labels);
    if name != request.instance_id {
        record.metadata.annotations =
            Some([(labels::INSTANCE_ID.to_string(), request.instance_id.clone())].into());
    }
    record.status = Some(ServiceInstanceStatus::default());
    record
}

fn new_operation(
    kind: OperationKind,
    instance_id: &str,
    request: Option<serde_json::Value>,
) -> Operation {
    Operation {
        id: new_operation_id(kind, instance_id),
        kind,
        state: OperationState::InProgress,
        description: "queued".into(),
        attempts: 0,
        started_at: now_rfc3339(),
        finished_at: None,
        deadline: None,
        request,
    }
}

fn push_operation(record: &mut ServiceInstance, operation: Operation) {
    let status = record.status.get_or_insert_with(Default::default);
    status.operations.push(operation);
    let excess = status.operations.len().saturating_sub(OPERATIONS_KEPT);
    status.operations.drain(..excess);
}

/// "Identical attributes" for a repeated provision: the same service, plan,
/// namespace, organization, space and parameters (absent equals `{}`).
fn same_attributes(spec: &ServiceInstanceSpec, request: &ProvisionRequest) -> bool {
    spec.service_id == request.service_id
        && spec.plan_id == request.plan_id
        && spec.namespace == request.namespace
        && spec.organization_guid == request.organization_guid
        && spec.space_guid == request.space_guid
        && same_parameters(spec.parameters.as_ref(), request.parameters.as_ref())
}

fn same_parameters(a: Option<&serde_json::Value>, b: Option<&serde_json::Value>) -> bool {
    let empty = serde_json::json!({});
    a.unwrap_or(&empty) == b.unwrap_or(&empty)
}
