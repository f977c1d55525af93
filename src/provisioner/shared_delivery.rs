//! The delivery options of the Subscription an Application's instances in one
//! namespace share. One (Application, namespace) has one Subscription however
//! many instances of the Application's services the namespace holds (so no
//! event arrives twice), and each instance's `parameters.delivery` is a claim
//! on it. The Subscription carries the most patient of its owners' claims: the
//! most retries, the longest backoff delay and timeout, exponential backoff if
//! any asks for it. So no instance gets less than it asked for, one
//! instance's update cannot take away what another asked for, and a
//! deprovisioned instance's claim leaves with it. (Last writer wins, as
//! before, let one instance's update change what another's events got, and
//! kept a deprovisioned instance's options: an outside OSB probe's finding.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::job::Job;
use crate::resources::{
    BackoffPolicy, DeliverySpec, OperationKind, ServiceInstance, parse_iso8601_duration,
};
use crate::store::{LabelSelector, StoreError};

/// Delivery options from instance parameters (validated against the plan schema
/// when they were sent; a record edited since may not parse).
pub fn delivery_from(
    parameters: Option<&serde_json::Value>,
) -> Result<Option<DeliverySpec>, serde_json::Error> {
    parameters
        .and_then(|p| p.get("delivery"))
        .filter(|d| !d.is_null())
        .map(|d| serde_json::from_value(d.clone()))
        .transpose()
}

/// What an instance asks of the Subscription now: a running update asks for
/// the parameters it applies (if it fails, it puts its claim back before its
/// end is recorded, under the namespace's lock), anything else for its own.
fn claim_of(instance: &ServiceInstance) -> Option<DeliverySpec> {
    let updating = instance
        .running_operation()
        .filter(|o| o.kind == OperationKind::Update)
        .and_then(|o| o.request.as_ref());
    let parameters = match updating {
        Some(request) => request.get("parameters").filter(|p| !p.is_null()),
        None => instance.spec.parameters.as_ref(),
    };
    delivery_from(parameters).unwrap_or_else(|error| {
        tracing::warn!(instance_id = %instance.spec.instance_id, %error, "an instance's delivery parameters cannot be read; it asks nothing of its Subscription");
        None
    })
}

/// The claims of the job's instance (`own`) and of every other live instance of
/// its Application in its namespace; `for_owners` picks those a Subscription
/// serves and merges them.
pub struct Claims {
    own_id: String,
    own: Option<DeliverySpec>,
    others: BTreeMap<String, Option<DeliverySpec>>,
}

impl Claims {
    pub async fn read(job: &Job, own: Option<DeliverySpec>) -> Result<Self, StoreError> {
        let spec = job.spec();
        let instances: Vec<ServiceInstance> =
            job.store().list(None, &LabelSelector::everything()).await?;
        let others = instances
            .iter()
            .filter(|i| {
                i.is_live()
                    && i.spec.application == spec.application
                    && i.spec.namespace == spec.namespace
                    && i.spec.instance_id != spec.instance_id
            })
            .map(|i| (i.spec.instance_id.clone(), claim_of(i)))
            .collect();
        Ok(Self {
            own_id: spec.instance_id.clone(),
            own,
            others,
        })
    }

    /// The options a Subscription owned by `owners` carries.
    pub fn for_owners(&self, owners: &BTreeSet<String>) -> Option<DeliverySpec> {
        most_patient(owners.iter().filter_map(|owner| {
            if *owner == self.own_id {
                self.own.as_ref()
            } else {
                self.others.get(owner).and_then(Option::as_ref)
            }
        }))
    }
}

/// The most patient of `claims`, field by field; None when none asks anything.
fn most_patient<'a>(claims: impl IntoIterator<Item = &'a DeliverySpec>) -> Option<DeliverySpec> {
    let mut merged: Option<DeliverySpec> = None;
    for claim in claims {
        let Some(so_far) = merged.as_mut() else {
            merged = Some(claim.clone());
            continue;
        };
        so_far.retry = so_far.retry.max(claim.retry);
        so_far.backoff_policy = match (so_far.backoff_policy, claim.backoff_policy) {
            (Some(BackoffPolicy::Exponential), _) | (_, Some(BackoffPolicy::Exponential)) => {
                Some(BackoffPolicy::Exponential)
            }
            (mine, theirs) => mine.or(theirs),
        };
        longest(&mut so_far.backoff_delay, &claim.backoff_delay);
        longest(&mut so_far.timeout, &claim.timeout);
    }
    merged
}

/// Keeps in `so_far` the longer of two ISO 8601 durations (one that does not
/// parse counts as none: the plan's schema let no such one in).
fn longest(so_far: &mut Option<String>, other: &Option<String>) {
    let length = |d: &Option<String>| {
        d.as_deref()
            .and_then(|d| parse_iso8601_duration(d).ok())
            .unwrap_or(Duration::ZERO)
    };
    if other.is_some() && (so_far.is_none() || length(other) > length(so_far)) {
        so_far.clone_from(other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(json: serde_json::Value) -> DeliverySpec {
        serde_json::from_value(json).expect("a delivery spec")
    }

    #[test]
    fn the_most_patient_claim_wins_field_by_field() {
        let a = claim(
            serde_json::json!({"retry": 3, "backoffDelay": "PT2S", "backoffPolicy": "linear"}),
        );
        let b =
            claim(serde_json::json!({"retry": 1, "backoffDelay": "PT0.5S", "timeout": "PT10S"}));
        let c = claim(serde_json::json!({"backoffPolicy": "exponential", "timeout": "PT1S"}));
        let merged = most_patient([&a, &b, &c]).expect("merged");
        assert_eq!(merged.retry, Some(3));
        assert_eq!(merged.backoff_delay.as_deref(), Some("PT2S"));
        assert_eq!(merged.backoff_policy, Some(BackoffPolicy::Exponential));
        assert_eq!(merged.timeout.as_deref(), Some("PT10S"));
        assert_eq!(most_patient([&b]), Some(b.clone()));
        assert_eq!(most_patient([]), None);
    }

    #[test]
    fn only_the_subscriptions_owners_count() {
        let claims = Claims {
            own_id: "mine".into(),
            own: Some(claim(serde_json::json!({"retry": 2}))),
            others: BTreeMap::from([
                ("owner".into(), Some(claim(serde_json::json!({"retry": 5})))),
                ("quiet".into(), None),
                (
                    "elsewhere".into(),
                    Some(claim(serde_json::json!({"retry": 9}))),
                ),
            ]),
        };
        let owners = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let retry = |ids: &[&str]| claims.for_owners(&owners(ids)).and_then(|d| d.retry);
        assert_eq!(retry(&["mine", "owner", "quiet"]), Some(5));
        assert_eq!(retry(&["mine", "quiet"]), Some(2));
        assert_eq!(retry(&["quiet"]), None);
        assert_eq!(
            retry(&["owner", "quiet"]),
            Some(5),
            "the job's own instance gone"
        );
    }
}
