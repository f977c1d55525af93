//! `ServiceBroker`: the OSB operations meshbroker serves, one method each, named
//! with its verb and path (as brokerapi's `ServiceBroker` interface), free of
//! HTTP. Every check a request passes against the catalog, the namespace's
//! ApplicationMapping and the instance's record is made here, once, before the
//! provisioner is asked to change anything (OSB: a 4xx changes nothing). Handlers
//! decode the request before and encode the answer after; whether an operation
//! may run on after the answer is the `asynchronous` argument (the platform's
//! `accepts_incomplete`).

use std::time::Duration;

use axum::extract::FromRef;
use serde_json::{Map, Value};

use super::OsbError;
use super::catalog::Catalog;
use super::details::{
    BindDetails, Binding, LastOperation, Outcome, ProvisionDetails, ServicePlan, UpdateDetails,
};
use super::namespace::{
    check_context_namespace, check_instance_namespace, check_platform, target_namespace,
};
use super::paths::{BindingPath, InstancePath};
use super::plan::{check_maintenance_info, check_parameters};
use super::requests::NamedIds;
use crate::provisioner::{
    Accepted, Completion, DeprovisionRequest, ProvisionError, ProvisionRequest, Provisioner,
    UpdateRequest, is_deprovision_of, is_in_operation_id_form,
};
use crate::resources::{
    ApplicationMapping, OperationKind, OperationState, ServiceInstance, check_name,
};
use crate::state::AppState;
use crate::store::{LabelSelector, TypedStore};

/// How long past its deadline a synchronous operation may take to stop: it checks
/// the deadline after every attempt of a step and never sleeps past it, so one
/// attempt's store calls at most.
const STOPPING_GRACE: Duration = Duration::from_secs(5);

/// The broker behind the OSB routes; cheap to clone (handles and two settings).
#[derive(Clone)]
pub struct ServiceBroker {
    store: TypedStore,
    provisioner: Provisioner,
    /// `--sync-wait`: how long a synchronous request waits for its operation.
    sync_wait: Duration,
    /// `--deprovisioned-retention`: how long a poll by its operation id still sees
    /// a deprovision succeed.
    deprovisioned_retention: Duration,
}

impl FromRef<AppState> for ServiceBroker {
    fn from_ref(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            provisioner: state.provisioner.clone(),
            sync_wait: state.config.sync_wait,
            deprovisioned_retention: state.config.deprovisioned_retention,
        }
    }
}

impl ServiceBroker {
    /// `GET /v2/catalog`: every class. `GET /{namespace}/v2/catalog`: the classes
    /// the namespace's ApplicationMappings enable.
    pub async fn catalog(&self, namespace: Option<&str>) -> Result<Value, OsbError> {
        let catalog = Catalog::load(&self.store).await?;
        let Some(namespace) = namespace else {
            return Ok(catalog.to_osb(None));
        };
        // An empty catalog would say the namespace enables nothing yet, as if
        // it could: a name no namespace can have is the caller's mistake.
        check_name(namespace, true).map_err(|invalid| {
            OsbError::BadRequest(format!(
                "{namespace:?} cannot be a namespace: {}",
                invalid.message
            ))
        })?;
        let mappings: Vec<ApplicationMapping> = self
            .store
            .list(Some(namespace), &LabelSelector::everything())
            .await?;
        Ok(catalog.to_osb(Some(&mappings)))
    }

    /// `PUT /v2/service_instances/{instance_id}`: provision a class into the
    /// namespace the path prefix or `context.namespace` names. Checked in this
    /// order: the originating identity's platform is the context's; the
    /// namespace is named; unless the instance stands (`standing_application`),
    /// the service is in the catalog, the plan is its plan and the namespace's
    /// mapping of the Application enables the class; `maintenance_info` and
    /// `parameters` fit the plan.
    pub async fn provision(
        &self,
        at: &InstancePath,
        details: ProvisionDetails,
        asynchronous: bool,
    ) -> Result<Outcome, OsbError> {
        check_platform(
            details.originating_platform.as_deref(),
            details.context.as_ref(),
        )?;
        let namespace = target_namespace(at.namespace.as_deref(), details.context.as_ref())?;
        let standing = self.standing_application(at).await?;
        let unchecked = standing.is_some();
        let application = match standing {
            Some(application) => application,
            None => {
                self.enabled_application(&details.service_id, &details.plan_id, &namespace)
                    .await?
            }
        };
        let maintenance_info = check_maintenance_info(details.maintenance_info.as_ref())?;
        check_parameters(details.parameters.as_ref())?;

        let completion = self.completion(asynchronous);
        let request = ProvisionRequest {
            instance_id: at.instance_id.clone(),
            service_id: details.service_id,
            plan_id: details.plan_id,
            namespace,
            application,
            organization_guid: Some(details.organization_guid),
            space_guid: Some(details.space_guid),
            context: details.context,
            parameters: details.parameters,
            maintenance_info,
            unchecked,
        };
        let accepted = match self
            .provisioner
            .provision(request.clone(), completion)
            .await
        {
            // The instance changed since it was read (its operation failed,
            // or it was deprovisioned): this request starts one, so it is
            // checked as a new one is.
            Err(ProvisionError::Unchecked) => {
                let application = self
                    .enabled_application(&request.service_id, &request.plan_id, &request.namespace)
                    .await?;
                let checked = ProvisionRequest {
                    application,
                    unchecked: false,
                    ..request
                };
                self.provisioner.provision(checked, completion).await?
            }
            answered => answered?,
        };
        self.outcome(&at.instance_id, accepted, completion, "provisioning")
            .await
    }

    /// `PATCH /v2/service_instances/{instance_id}`: change an instance's
    /// parameters. The service must be in the catalog; the instance cannot move
    /// to another namespace (422); a plan other than the instance's is refused by
    /// the provisioner (422: the plan is not updateable, whichever is asked for).
    pub async fn update(
        &self,
        at: &InstancePath,
        details: UpdateDetails,
        asynchronous: bool,
    ) -> Result<Outcome, OsbError> {
        check_platform(
            details.originating_platform.as_deref(),
            details.context.as_ref(),
        )?;
        let catalog = Catalog::load(&self.store).await?;
        let class = catalog.class(&details.service_id)?;
        // A plan the service does not have is malformed (400); the provisioner
        // refuses a change of plan (422), should a service ever have two.
        if let Some(plan_id) = &details.plan_id {
            class.check_plan(plan_id)?;
        }
        if let Some(instance) = self.live_instance(at).await? {
            check_stays(&at.instance_id, &instance, details.context.as_ref())?;
        }
        check_maintenance_info(details.maintenance_info.as_ref())?;
        check_parameters(details.parameters.as_ref())?;

        let completion = self.completion(asynchronous);
        let request = UpdateRequest {
            instance_id: at.instance_id.clone(),
            service_id: details.service_id,
            plan_id: details.plan_id,
            parameters: details.parameters,
            context: details.context,
        };
        let accepted = self.provisioner.update(request, completion).await?;
        self.outcome(&at.instance_id, accepted, completion, "the update")
            .await
    }

    /// `DELETE /v2/service_instances/{instance_id}?service_id&plan_id`: unwind an
    /// instance. No such instance is Gone (also for a repeated DELETE, so orphan
    /// mitigation is idempotent); the ids must be the instance's.
    pub async fn deprovision(
        &self,
        at: &InstancePath,
        ids: ServicePlan,
        asynchronous: bool,
    ) -> Result<Outcome, OsbError> {
        self.live_instance(at).await?;
        let completion = self.completion(asynchronous);
        let request = DeprovisionRequest {
            instance_id: at.instance_id.clone(),
            service_id: ids.service_id,
            plan_id: ids.plan_id,
        };
        let accepted = self.provisioner.deprovision(request, completion).await?;
        self.outcome(&at.instance_id, accepted, completion, "deprovisioning")
            .await
    }

    /// `GET /v2/service_instances/{instance_id}`: a provisioned instance. NotFound
    /// while it does not exist, is still being provisioned or was not provisioned;
    /// ConcurrencyError while it is being updated.
    pub async fn fetch_instance(
        &self,
        at: &InstancePath,
        named: &NamedIds,
    ) -> Result<ServiceInstance, OsbError> {
        let instance = self
            .live_instance(at)
            .await?
            .ok_or_else(|| no_such_instance(&at.instance_id))?;
        named.check(&instance)?;
        if let Some(op) = instance.running_operation()
            && op.kind == OperationKind::Update
        {
            return Err(OsbError::Concurrency(format!(
                "instance {} is being updated (operation {})",
                at.instance_id, op.id
            )));
        }
        if !instance.status_or_default().provisioned {
            let why = match instance.last_operation() {
                Some(op) if op.state == OperationState::InProgress => "is still being provisioned",
                _ => "was not provisioned successfully",
            };
            return Err(OsbError::NotFound(format!(
                "instance {} {why}",
                at.instance_id
            )));
        }
        Ok(instance)
    }

    /// `GET /v2/service_instances/{instance_id}/last_operation?operation`: the
    /// state of the instance's latest (or the named) operation.
    ///
    /// A succeeded deprovision: `succeeded` for `--deprovisioned-retention` (the
    /// spec's 410 is legal there, but clients such as eden and the OSB checkers
    /// treat it as an error; the osb-checker polls without the operation id too),
    /// Gone after. Once the tombstone is forgotten, a poll naming a deprovision's
    /// operation is still Gone; any other poll of an unknown instance is NotFound.
    ///
    /// An `operation` not in the form of this broker's ids (the osb-checker sends
    /// `provision`, OpenShift's broker SDK `provisioning`) asks for the latest
    /// operation; one in that form that is not the instance's is a 400.
    pub async fn last_operation(
        &self,
        at: &InstancePath,
        wanted: Option<&str>,
        named: &NamedIds,
    ) -> Result<LastOperation, OsbError> {
        let Some(instance) = self.provisioner.instance(&at.instance_id).await? else {
            // Only a succeeded deprovision's record is ever forgotten.
            if wanted.is_some_and(|id| is_deprovision_of(id, &at.instance_id)) {
                return Err(deprovisioned(&at.instance_id));
            }
            return Err(no_such_instance(&at.instance_id));
        };
        check_instance_namespace(
            at.namespace.as_deref(),
            &instance.spec.namespace,
            &at.instance_id,
        )?;
        named.check(&instance)?;
        let operation = match wanted.filter(|id| is_in_operation_id_form(id)) {
            Some(id) => instance.operation(id).ok_or_else(|| {
                OsbError::BadRequest(format!(
                    "operation {id} is not an operation of instance {}",
                    at.instance_id
                ))
            })?,
            None => instance.last_operation().ok_or_else(|| {
                OsbError::NotFound(format!("instance {} has no operations", at.instance_id))
            })?,
        };
        if operation.kind == OperationKind::Deprovision
            && operation.state == OperationState::Succeeded
            && !operation.ended_within(self.deprovisioned_retention)
        {
            return Err(deprovisioned(&at.instance_id));
        }
        let failed = operation.state == OperationState::Failed;
        let instance_usable = match operation.kind {
            OperationKind::Update if failed => Some(true),
            OperationKind::Deprovision if failed => Some(instance.status_or_default().provisioned),
            _ => None,
        };
        Ok(LastOperation {
            state: operation.state,
            description: operation.description.clone(),
            instance_usable,
            update_repeatable: (failed && operation.kind == OperationKind::Update).then_some(true),
        })
    }

    /// `PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}`:
    /// only a class whose service has an `API` entry is bindable, and its
    /// credentials are that entry's gateway (and target) URL. The service and
    /// plan are checked against the catalog before the instance is looked up.
    pub async fn bind(&self, at: &BindingPath, details: BindDetails) -> Result<Binding, OsbError> {
        check_platform(
            details.originating_platform.as_deref(),
            details.context.as_ref(),
        )?;
        let instance_id = &at.instance.instance_id;
        let catalog = Catalog::load(&self.store).await?;
        let class = catalog.class(&details.service_id)?;
        class.check_plan(&details.plan_id)?;
        let api = class.api_to_bind()?;
        let instance = self
            .live_instance(&at.instance)
            .await?
            .ok_or_else(|| no_such_instance(instance_id))?;
        if instance.spec.service_id != details.service_id {
            return Err(OsbError::BadRequest(format!(
                "instance {instance_id} is of service {}, not {}",
                instance.spec.service_id, details.service_id
            )));
        }
        check_context_namespace(details.context.as_ref(), &instance)?;
        let bound = self
            .provisioner
            .bind(
                instance_id,
                &at.binding_id,
                details.parameters,
                details.bind_resource,
            )
            .await?;
        let mut credentials = Map::new();
        for (key, url) in [
            ("gatewayUrl", &api.gateway_url),
            ("targetUrl", &api.target_url),
        ] {
            if let Some(url) = url {
                credentials.insert(key.into(), Value::String(url.clone()));
            }
        }
        Ok(Binding { bound, credentials })
    }

    /// `DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}`:
    /// forget a binding; Gone when there is no such binding (nor instance).
    /// The ids it names must be the instance's, as a deprovision's must.
    pub async fn unbind(&self, at: &BindingPath, named: &NamedIds) -> Result<(), OsbError> {
        let Some(instance) = self.live_instance(&at.instance).await? else {
            return Err(OsbError::Gone(format!(
                "binding {} does not exist: instance {} is not provisioned",
                at.binding_id, at.instance.instance_id
            )));
        };
        named.check(&instance)?;
        self.provisioner
            .unbind(&at.instance.instance_id, &at.binding_id)
            .await?;
        Ok(())
    }

    /// The Application of an instance a provision request is answered by as
    /// it stands — provisioned, or with an operation running — whatever the
    /// catalog and mappings say now: the provisioner compares the request with
    /// it (the same: its operation, or done; another: 409) and starts nothing.
    /// A platform re-sending its PUT because the first answer was lost must
    /// not get a 400 and forget an instance the broker keeps ("a re-sent `PUT`
    /// request MUST return a `202 Accepted`" while it is in progress, OSB
    /// v2.17), also when its namespace or mapping went meanwhile. An instance
    /// of another namespace than the path's prefix does not stand here: the
    /// request goes through the checks, and the provisioner's 409.
    async fn standing_application(&self, at: &InstancePath) -> Result<Option<String>, OsbError> {
        let instance = self.provisioner.instance(&at.instance_id).await?;
        Ok(instance
            .filter(|i| i.is_live())
            .filter(|i| {
                at.namespace
                    .as_ref()
                    .is_none_or(|ns| *ns == i.spec.namespace)
            })
            .filter(|i| i.running_operation().is_some() || i.status_or_default().provisioned)
            .map(|i| i.spec.application))
    }

    /// The Application whose class `service_id` is, once the plan is its
    /// plan and `namespace`'s mapping enables the class.
    async fn enabled_application(
        &self,
        service_id: &str,
        plan_id: &str,
        namespace: &str,
    ) -> Result<String, OsbError> {
        let catalog = Catalog::load(&self.store).await?;
        let class = catalog.class(service_id)?;
        class.check_plan(plan_id)?;
        let mapping: Option<ApplicationMapping> =
            self.store.get(Some(namespace), &class.application).await?;
        class.check_enabled(mapping.as_ref(), namespace)?;
        Ok(class.application.clone())
    }

    /// The instance the path names, if it exists and is not deprovisioned; under a
    /// `/{namespace}` prefix it must live in that namespace (400 otherwise).
    async fn live_instance(&self, at: &InstancePath) -> Result<Option<ServiceInstance>, OsbError> {
        let instance = self
            .provisioner
            .instance(&at.instance_id)
            .await?
            .filter(|i| i.is_live());
        if let Some(instance) = &instance {
            check_instance_namespace(
                at.namespace.as_deref(),
                &instance.spec.namespace,
                &at.instance_id,
            )?;
        }
        Ok(instance)
    }

    /// How the platform takes the answer: asynchronously it follows the
    /// operation; otherwise it needs the outcome within `--sync-wait`.
    fn completion(&self, asynchronous: bool) -> Completion {
        if asynchronous {
            Completion::Asynchronous
        } else {
            Completion::Synchronous {
                within: self.sync_wait,
            }
        }
    }

    /// How a mutating request stands when answered: in progress when the
    /// platform follows the operation; otherwise the operation's outcome. An
    /// operation started for this request ends by its deadline (the end of the
    /// synchronous wait), so the answer waits for that end: done, or
    /// `OperationFailed` — never a 4xx after something was written. An operation
    /// an earlier request started may run longer: this request changed nothing, so
    /// when it is still running at the end of the wait the answer is
    /// `AsyncRequired`.
    async fn outcome(
        &self,
        instance_id: &str,
        accepted: Accepted,
        completion: Completion,
        what: &str,
    ) -> Result<Outcome, OsbError> {
        let (operation, fresh) = match accepted {
            Accepted::AlreadyDone => {
                return Ok(Outcome::Done {
                    by_this_request: false,
                });
            }
            Accepted::Started { operation, fresh } => (operation, fresh),
        };
        let Completion::Synchronous { within } = completion else {
            return Ok(Outcome::InProgress { operation });
        };
        let patience = if fresh {
            within + STOPPING_GRACE
        } else {
            within
        };
        match self
            .provisioner
            .wait(instance_id, &operation, patience)
            .await?
        {
            Some(OperationState::Succeeded) => Ok(Outcome::Done {
                by_this_request: fresh,
            }),
            Some(OperationState::Failed) => {
                let why = self.failure(instance_id, &operation).await?;
                Err(OsbError::OperationFailed(format!("{what} failed: {why}")))
            }
            _ if fresh => Err(OsbError::Internal(format!(
                "operation {operation} of instance {instance_id} did not stop at the end of the synchronous wait"
            ))),
            _ => Err(OsbError::AsyncRequired(format!(
                "{what} by an earlier request (operation {operation}) is still running; this request changed nothing: repeat it with accepts_incomplete=true to follow that operation"
            ))),
        }
    }

    /// Why an operation failed, as its record says.
    async fn failure(&self, instance_id: &str, operation: &str) -> Result<String, OsbError> {
        let instance = self.provisioner.instance(instance_id).await?;
        match instance.as_ref().and_then(|i| i.operation(operation)) {
            Some(failed) => Ok(failed.description.clone()),
            None => {
                tracing::warn!(
                    instance_id,
                    operation,
                    "a failed operation's record is gone before its failure was answered"
                );
                Ok("its record is gone".into())
            }
        }
    }
}

/// An update's `context.namespace`, when it names one, must be where the
/// instance lives: an instance cannot move (422).
fn check_stays(
    instance_id: &str,
    instance: &ServiceInstance,
    context: Option<&Value>,
) -> Result<(), OsbError> {
    if context.and_then(|c| c.get("namespace")).is_none() {
        return Ok(());
    }
    let namespace = &instance.spec.namespace;
    if target_namespace(None, context)? == *namespace {
        return Ok(());
    }
    Err(OsbError::Unprocessable(format!(
        "instance {instance_id} lives in namespace {namespace}; it cannot move"
    )))
}

fn no_such_instance(instance_id: &str) -> OsbError {
    OsbError::NotFound(format!("instance {instance_id} does not exist"))
}

fn deprovisioned(instance_id: &str) -> OsbError {
    OsbError::Gone(format!("instance {instance_id} has been deprovisioned"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Namespace;
    use serde_json::json;
    use tokio::sync::watch;

    use super::*;
    use crate::osb::catalog::tests::{BINDABLE, EVENTS_ONLY, mapping, shop};
    use crate::provisioner::ProvisionerSettings;
    use crate::store::{EmbeddedStore, Store};

    /// A broker over a store holding the Application `shop`, mapped whole into
    /// team-a and with only its bindable service into team-b; team-c has none.
    struct Shop {
        broker: ServiceBroker,
        _store_dir: tempfile::TempDir,
        _running: watch::Sender<bool>,
    }

    impl Shop {
        async fn open() -> Self {
            let store_dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedStore::open(&store_dir.path().join("store.db")).expect("store");
            let store = TypedStore::new(Arc::new(store) as Arc<dyn Store>);
            for name in ["team-a", "team-b", "team-c"] {
                let mut namespace = Namespace::default();
                namespace.metadata.name = Some(name.into());
                store.create(&namespace).await.expect("namespace");
            }
            store.create(&shop()).await.expect("application");
            store
                .create(&mapping("team-a", &[]))
                .await
                .expect("mapping");
            store
                .create(&mapping("team-b", &[BINDABLE]))
                .await
                .expect("mapping");
            let (running, shutdown) = crate::shutdown::Shutdown::new();
            let provisioner = Provisioner::new(
                store.clone(),
                ProvisionerSettings {
                    integration_namespace: "kyma-integration".into(),
                    operation_timeout: Duration::from_secs(60),
                    deprovisioned_retention: Duration::from_secs(60),
                    mesh_served_by: "meshbroker",
                },
                crate::telemetry::Metrics::new(),
                shutdown,
            );
            let broker = ServiceBroker {
                store,
                provisioner,
                sync_wait: Duration::ZERO,
                deprovisioned_retention: Duration::from_secs(60),
            };
            Self {
                broker,
                _store_dir: store_dir,
                _running: running,
            }
        }
    }

    fn at(namespace: Option<&str>, instance_id: &str) -> InstancePath {
        InstancePath {
            namespace: namespace.map(String::from),
            instance_id: instance_id.into(),
        }
    }

    fn binding_at(instance_id: &str) -> BindingPath {
        BindingPath {
            instance: at(None, instance_id),
            binding_id: "b".into(),
        }
    }

    fn provision_into(namespace: &str, service_id: &str) -> ProvisionDetails {
        ProvisionDetails {
            service_id: service_id.into(),
            plan_id: format!("{service_id}-plan-default"),
            organization_guid: "cluster".into(),
            space_guid: namespace.into(),
            context: Some(json!({"platform": "kubernetes", "namespace": namespace})),
            ..Default::default()
        }
    }

    fn bind_to(service_id: &str) -> BindDetails {
        BindDetails {
            service_id: service_id.into(),
            plan_id: format!("{service_id}-plan-default"),
            parameters: None,
            bind_resource: None,
            context: None,
            originating_platform: None,
        }
    }

    /// The error key and the start of the description.
    fn refusal<T: std::fmt::Debug>(result: Result<T, OsbError>) -> (&'static str, String) {
        let error = result.expect_err("refused");
        (error.key(), error.to_string())
    }

    /// A request not checked against the catalog (the instance stood when it
    /// was read) never starts an operation: if the record asks for one — the
    /// instance is new, failed or gone meanwhile — the provisioner asks for
    /// the checks, and nothing is written.
    #[tokio::test]
    async fn an_unchecked_provision_starts_nothing() {
        let shop = Shop::open().await;
        let request = ProvisionRequest {
            instance_id: "unchecked".into(),
            service_id: EVENTS_ONLY.into(),
            plan_id: format!("{EVENTS_ONLY}-plan-default"),
            namespace: "team-c".into(),
            application: "shop".into(),
            organization_guid: Some("cluster".into()),
            space_guid: Some("team-c".into()),
            context: None,
            parameters: None,
            maintenance_info: None,
            unchecked: true,
        };
        let answer = shop
            .broker
            .provisioner
            .provision(request, Completion::Asynchronous)
            .await;
        assert!(
            matches!(answer, Err(ProvisionError::Unchecked)),
            "{answer:?}"
        );
        let found = shop.broker.provisioner.instance("unchecked").await;
        assert!(found.expect("read").is_none(), "nothing written");
    }

    #[tokio::test]
    async fn a_provision_is_checked_in_order_and_refused_before_anything_is_written() {
        let shop = Shop::open().await;
        let unknown = provision_into("team-a", "unknown");
        let cases = [
            (
                ProvisionDetails {
                    originating_platform: Some("cloudfoundry".into()),
                    ..unknown.clone()
                },
                None,
                "X-Broker-API-Originating-Identity names platform \"cloudfoundry\"",
            ),
            (unknown, None, "service_id unknown is not in the catalog"),
            (
                ProvisionDetails {
                    plan_id: "gold".into(),
                    ..provision_into("team-a", EVENTS_ONLY)
                },
                None,
                "plan_id gold is not a plan of service events-only",
            ),
            (
                ProvisionDetails {
                    context: None,
                    ..provision_into("team-a", EVENTS_ONLY)
                },
                None,
                "the target namespace is unknown",
            ),
            (
                provision_into("team-a", EVENTS_ONLY),
                Some("team-b"),
                "context.namespace \"team-a\" does not match the namespace \"team-b\"",
            ),
            (
                provision_into("team-b", EVENTS_ONLY),
                None,
                "service orders of Application shop is not enabled in namespace team-b",
            ),
            (
                provision_into("team-c", BINDABLE),
                None,
                "service shipping of Application shop is not enabled in namespace team-c",
            ),
            (
                ProvisionDetails {
                    maintenance_info: Some(json!({"version": "0.1"})),
                    parameters: Some(json!({"colour": "blue"})),
                    ..provision_into("team-a", EVENTS_ONLY)
                },
                None,
                "maintenance_info.version 0.1 does not match",
            ),
            (
                ProvisionDetails {
                    parameters: Some(json!({"colour": "blue"})),
                    ..provision_into("team-a", EVENTS_ONLY)
                },
                None,
                "parameters: ",
            ),
        ];
        for (details, prefix, expected) in cases {
            let result = shop.broker.provision(&at(prefix, "i"), details, true).await;
            let (_, description) = refusal(result);
            assert!(description.starts_with(expected), "{description}");
        }
        let written = shop.broker.provisioner.instance("i").await.expect("store");
        assert!(written.is_none(), "{written:?}");
    }

    #[tokio::test]
    async fn an_accepted_provision_is_followed_by_its_operation() {
        let shop = Shop::open().await;
        let instance = at(Some("team-a"), "i");
        let outcome = shop
            .broker
            .provision(&instance, provision_into("team-a", EVENTS_ONLY), true)
            .await
            .expect("accepted");
        let Outcome::InProgress { operation } = outcome else {
            panic!("{outcome:?}");
        };
        let polled = shop
            .broker
            .last_operation(&instance, Some(&operation), &NamedIds::default())
            .await
            .expect("polled");
        assert_eq!(polled.state, OperationState::InProgress);
        assert_eq!(
            refusal(
                shop.broker
                    .fetch_instance(&instance, &NamedIds::default())
                    .await
            ),
            ("NotFound", "instance i is still being provisioned".into())
        );
        assert_eq!(
            refusal(
                shop.broker
                    .fetch_instance(&at(Some("team-b"), "i"), &NamedIds::default())
                    .await
            ),
            (
                "BadRequest",
                "instance i belongs to namespace team-a, not team-b".into()
            )
        );
    }

    #[tokio::test]
    async fn a_bind_checks_the_catalog_before_the_instance() {
        let shop = Shop::open().await;
        let nowhere = binding_at("no-such-instance");
        let cases = [
            (
                bind_to(EVENTS_ONLY),
                "BadRequest",
                "service orders is not bindable",
            ),
            (
                BindDetails {
                    plan_id: "gold".into(),
                    ..bind_to(BINDABLE)
                },
                "BadRequest",
                "plan_id gold is not a plan",
            ),
            (
                bind_to("unknown"),
                "BadRequest",
                "service_id unknown is not in the catalog",
            ),
            (
                bind_to(BINDABLE),
                "NotFound",
                "instance no-such-instance does not exist",
            ),
        ];
        for (details, key, expected) in cases {
            let (refused_as, description) = refusal(shop.broker.bind(&nowhere, details).await);
            assert_eq!(refused_as, key, "{description}");
            assert!(description.starts_with(expected), "{description}");
        }
    }

    #[tokio::test]
    async fn an_update_checks_the_service_before_the_instance() {
        let shop = Shop::open().await;
        let nowhere = at(None, "no-such-instance");
        let update = |service_id: &str| UpdateDetails {
            service_id: service_id.into(),
            ..Default::default()
        };
        assert_eq!(
            refusal(shop.broker.update(&nowhere, update("unknown"), true).await),
            (
                "BadRequest",
                "service_id unknown is not in the catalog".into()
            )
        );
        assert_eq!(
            refusal(
                shop.broker
                    .update(&nowhere, update(EVENTS_ONLY), true)
                    .await
            ),
            (
                "NotFound",
                "instance no-such-instance does not exist".into()
            )
        );
    }

    #[tokio::test]
    async fn a_namespaces_catalog_lists_what_its_mapping_enables() {
        let shop = Shop::open().await;
        let listed = async |namespace: Option<&str>| -> Vec<String> {
            let document = shop.broker.catalog(namespace).await.expect("catalog");
            document["services"]
                .as_array()
                .expect("services")
                .iter()
                .map(|s| s["id"].as_str().expect("id").to_string())
                .collect()
        };
        assert_eq!(listed(None).await, [EVENTS_ONLY, BINDABLE]);
        assert_eq!(listed(Some("team-a")).await, [EVENTS_ONLY, BINDABLE]);
        assert_eq!(listed(Some("team-b")).await, [BINDABLE]);
        assert!(listed(Some("team-c")).await.is_empty());
    }
}
