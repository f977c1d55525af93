//! Knative-style status conditions (`type`, `status`, `reason`, `message`,
//! `lastTransitionTime`) and the helpers controllers use to set them.

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
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
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
                reason,
                message,
                last_transition_time: Some(now_rfc3339()),
            }),
        }
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
}
