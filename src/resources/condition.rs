//! Knative-style status conditions (`type`, `status`, `reason`, `message`,
//! `lastTransitionTime`) and the helpers controllers use to set them, including
//! Knative's "living condition set": `Ready` summarises a kind's other conditions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Type of condition, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Status of the condition: `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// How to read a condition that is not `True`: `Error` (the default when
    /// empty), `Warning` or `Info`. Knative's schema describes it; meshbroker
    /// never sets it, so every condition is of the default severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// One-word CamelCase reason for the condition's last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message with details about the transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the condition last changed from one status to another (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    /// A condition as a controller computes it; `lastTransitionTime` is filled in
    /// when it is stored (see `Conditions::set_living_conditions`).
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        Self {
            type_: type_.to_string(),
            status,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            message: (!message.is_empty()).then_some(message),
            severity: None,
            last_transition_time: None,
        }
    }

    /// True without a reason: what Knative's `MarkTrue` writes.
    pub fn met(type_: &str) -> Self {
        Self::new(type_, ConditionStatus::True, "", "")
    }
}

/// The condition list of a status, with the operations controllers need.
pub trait Conditions {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;

    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions().iter().find(|c| c.type_ == type_)
    }

    fn is_true(&self, type_: &str) -> bool {
        self.condition(type_)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }

    fn is_ready(&self) -> bool {
        self.is_true("Ready")
    }

    /// Sets a condition; `lastTransitionTime` moves only when `status` changes, as
    /// Kubernetes tools expect.
    fn set_condition(
        &mut self,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) {
        let message = message.into();
        let conditions = self.conditions_mut();
        let reason = (!reason.is_empty()).then(|| reason.to_string());
        let message = (!message.is_empty()).then_some(message);
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => {
                if existing.status != status {
                    existing.last_transition_time = Some(now_rfc3339());
                }
                existing.status = status;
                existing.reason = reason;
                existing.message = message;
            }
            None => conditions.push(Condition {
                type_: type_.to_string(),
                status,
                severity: None,
                reason,
                message,
                last_transition_time: Some(now_rfc3339()),
            }),
        }
    }

    /// Replaces every condition with `dependents` plus `Ready` summarising them, as
    /// Knative's living condition sets do: Ready is True when all are True, else
    /// it carries the status, reason and message of the first False one, else of
    /// the first Unknown one. Conditions of types no longer computed are dropped;
    /// each keeps its `lastTransitionTime` while its status does not change. Sorted
    /// by type, as Knative stores them.
    fn set_living_conditions(&mut self, dependents: Vec<Condition>) {
        let unhappy = |status| dependents.iter().find(|c| c.status == status);
        let ready = match unhappy(ConditionStatus::False).or(unhappy(ConditionStatus::Unknown)) {
            Some(cause) => Condition {
                type_: "Ready".to_string(),
                ..cause.clone()
            },
            None => Condition::met("Ready"),
        };
        let mut desired = dependents;
        desired.push(ready);
        desired.sort_by(|a, b| a.type_.cmp(&b.type_));
        let now = now_rfc3339();
        let previous = self.conditions();
        for condition in &mut desired {
            condition.last_transition_time = previous
                .iter()
                .find(|p| p.type_ == condition.type_ && p.status == condition.status)
                .and_then(|p| p.last_transition_time.clone())
                .or_else(|| Some(now.clone()));
        }
        *self.conditions_mut() = desired;
    }
}

/// The current time as Kubernetes writes timestamps (`2026-11-28T10:00:00Z`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Status(Vec<Condition>);
    impl Conditions for Status {
        fn conditions(&self) -> &[Condition] {
            &self.0
        }
        fn conditions_mut(&mut self) -> &mut Vec<Condition> {
            &mut self.0
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut status = Status::default();
        status.set_condition("Ready", ConditionStatus::False, "Waiting", "not yet");
        status.0[0].last_transition_time = Some("earlier".into());
        status.set_condition("Ready", ConditionStatus::False, "Waiting", "still not");
        assert_eq!(status.0[0].last_transition_time.as_deref(), Some("earlier"));
        assert_eq!(status.0[0].message.as_deref(), Some("still not"));
        status.set_condition("Ready", ConditionStatus::True, "", "");
        assert_ne!(status.0[0].last_transition_time.as_deref(), Some("earlier"));
        assert!(status.is_ready());
    }

    fn ready_of(dependents: Vec<Condition>) -> Condition {
        let mut status = Status::default();
        status.set_living_conditions(dependents);
        status.condition("Ready").expect("Ready").clone()
    }

    #[test]
    fn ready_summarises_the_first_false_then_the_first_unknown_dependent() {
        use ConditionStatus::{False, True, Unknown};
        let waiting = Condition::new("B", Unknown, "Routing", "not yet");
        let broken = Condition::new("C", False, "Missing", "gone");
        let cases = [
            (vec![Condition::met("A")], (True, None)),
            (
                vec![Condition::met("A"), waiting.clone()],
                (Unknown, Some("Routing")),
            ),
            (vec![waiting, broken], (False, Some("Missing"))),
        ];
        for (dependents, (status, reason)) in cases {
            let ready = ready_of(dependents);
            assert_eq!((ready.status, ready.reason.as_deref()), (status, reason));
        }
    }

    #[test]
    fn living_conditions_drop_stale_types_and_keep_unchanged_transition_times() {
        let mut status = Status::default();
        status.set_condition("Stale", ConditionStatus::True, "", "");
        status.set_condition("Kept", ConditionStatus::True, "", "");
        for condition in &mut status.0 {
            condition.last_transition_time = Some("earlier".into());
        }
        status.set_living_conditions(vec![
            Condition::met("Kept"),
            Condition::new("New", ConditionStatus::False, "Why", "because"),
        ]);
        let types: Vec<&str> = status.0.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Kept", "New", "Ready"], "sorted, without Stale");
        let kept = status.condition("Kept").expect("Kept");
        assert_eq!(kept.last_transition_time.as_deref(), Some("earlier"));
        let ready = status.condition("Ready").expect("Ready");
        assert_ne!(ready.last_transition_time.as_deref(), Some("earlier"));
        assert_eq!(ready.message.as_deref(), Some("because"));
    }
}
