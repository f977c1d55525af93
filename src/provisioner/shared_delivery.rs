//! The delivery options of the Subscription an Application's instances in one
//! namespace share. One (Application, namespace) has one Subscription however
//! many instances of the Application's services the namespace holds (so no
//! event arrives twice), and each instance's `parameters.delivery` is a claim
//! on it. The Subscription carries the most patient of its owners' claims: the
//! most retries, the longest backoff delay and timeout, exponential backoff if
//! any asks for it — an option an instance leaves out (or an instance that
//! sets none) asking for its default (3 retries, exponential from 200 ms,
//! 30 s a try). So no instance gets less than it asked for, one
//! instance's update cannot take away what another asked for, and a
//! deprovisioned instance's claim leaves with it. (Last writer wins, as
//! before, let one instance's update change what another's events got, and
//! kept a deprovisioned instance's options: an outside OSB probe's finding.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::job::Job;
use crate::resources::{
    BackoffPolicy, DEFAULT_BACKOFF_DELAY, DEFAULT_RETRY, DEFAULT_TIMEOUT, DeliverySpec,
    OperationKind, ServiceInstance, parse_iso8601_duration,
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
    let parameters = match instance
        .running_operation()
        .filter(|o| o.kind == OperationKind::Update)
    {
        Some(update) => update.requested_parameters(),
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

    /// The options a Subscription owned by `owners` carries (an owner this
    /// job does not know of asks for nothing).
    pub fn for_owners(&self, owners: &BTreeSet<String>) -> Option<DeliverySpec> {
        let claims: Vec<Option<&DeliverySpec>> = owners
            .iter()
            .map(|owner| {
                if *owner == self.own_id {
                    self.own.as_ref()
                } else {
                    self.others.get(owner).and_then(Option::as_ref)
                }
            })
            .collect();
        most_patient(&claims)
    }
}

/// The most patient of `claims`, option by option, where a claim (or an
/// option) that is not there asks for the default; None when no claim asks
/// for anything.
fn most_patient(claims: &[Option<&DeliverySpec>]) -> Option<DeliverySpec> {
    let set = || claims.iter().flatten();
    let retry = set().any(|c| c.retry.is_some()).then(|| {
        claims
            .iter()
            .map(|c| c.and_then(|c| c.retry).unwrap_or(DEFAULT_RETRY as i32))
            .max()
            .unwrap_or(DEFAULT_RETRY as i32)
    });
    let linear = Some(BackoffPolicy::Linear);
    let asks_linear = |c: &Option<&DeliverySpec>| c.is_some_and(|c| c.backoff_policy == linear);
    let backoff_policy = if !claims.is_empty() && claims.iter().all(asks_linear) {
        linear
    } else if set().any(|c| c.backoff_policy.is_some()) {
        Some(BackoffPolicy::Exponential)
    } else {
        None
    };
    let merged = DeliverySpec {
        retry,
        backoff_policy,
        backoff_delay: longest(claims, |d| &d.backoff_delay, DEFAULT_BACKOFF_DELAY),
        timeout: longest(claims, |d| &d.timeout, DEFAULT_TIMEOUT),
        ..DeliverySpec::default()
    };
    (merged != DeliverySpec::default()).then_some(merged)
}

/// The longest of the claims' durations for one option, a claim without it
/// asking for `default`: None when the default is the longest (one that does
/// not parse counts as none: the plan's schema lets no such one in).
fn longest(
    claims: &[Option<&DeliverySpec>],
    option: fn(&DeliverySpec) -> &Option<String>,
    default: Duration,
) -> Option<String> {
    let mut longest: Option<(&String, Duration)> = None;
    let mut anyone_defaults = false;
    for claim in claims {
        let Some(text) = claim.and_then(|c| option(c).as_ref()) else {
            anyone_defaults = true;
            continue;
        };
        let Ok(length) = parse_iso8601_duration(text) else {
            continue;
        };
        if longest.is_none_or(|(_, so_far)| length > so_far) {
            longest = Some((text, length));
        }
    }
    let (text, length) = longest?;
    (!anyone_defaults || length > default).then(|| text.clone())
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
        let merged = most_patient(&[Some(&a), Some(&b), Some(&c)]).expect("merged");
        assert_eq!(merged.retry, Some(3));
        assert_eq!(merged.backoff_delay.as_deref(), Some("PT2S"));
        assert_eq!(merged.backoff_policy, Some(BackoffPolicy::Exponential));
        assert_eq!(
            merged.timeout, None,
            "a claim without a timeout asks for the default 30 s, longer than 10 s"
        );
        assert_eq!(most_patient(&[Some(&b)]), Some(b.clone()));
        let linear = claim(serde_json::json!({"backoffPolicy": "linear", "retry": 1}));
        let merged = most_patient(&[Some(&linear), None]).expect("merged");
        assert_eq!(
            merged.retry,
            Some(3),
            "an instance asking nothing asks for 3"
        );
        assert_eq!(
            merged.backoff_policy,
            Some(BackoffPolicy::Exponential),
            "and for exponential backoff"
        );
        assert_eq!(
            most_patient(&[Some(&linear), Some(&linear)]).and_then(|d| d.backoff_policy),
            Some(BackoffPolicy::Linear)
        );
        assert_eq!(most_patient(&[None, None]), None);
        assert_eq!(most_patient(&[]), None);
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
        assert_eq!(retry(&["mine", "quiet"]), Some(3), "quiet asks for 3");
        assert_eq!(retry(&["quiet"]), None);
        assert_eq!(
            retry(&["owner", "quiet"]),
            Some(5),
            "the job's own instance gone"
        );
    }
}
