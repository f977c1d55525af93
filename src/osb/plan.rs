//! What every plan accepts: its parameters schema and its maintenance version,
//! and the checks a provision or update's `parameters` and `maintenance_info`
//! pass against them.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::OsbError;
use crate::resources::DeliverySpec;

/// The maintenance level of every plan; raised when provisioning changes in a way
/// existing instances should be updated for.
pub const MAINTENANCE_VERSION: &str = "1.0.0";

/// Provisioning (and update) parameters every plan accepts. Draft 4, the one
/// the OSB spec says every platform MUST support: Cloud Foundry's Cloud
/// Controller validates plan schemas against the draft-04 meta-schema and
/// refuses later drafts; nothing here needs a later one.
pub static PARAMETERS_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "delivery": {
                "description": "How the Application's Channel delivers to this namespace's Broker",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "retry": { "type": "integer", "minimum": 0, "maximum": 100 },
                    "backoffPolicy": { "enum": ["linear", "exponential"] },
                    "backoffDelay": { "type": "string", "pattern": "^P" },
                    "timeout": {
                        "description": "ISO-8601 duration greater than zero",
                        "type": "string",
                        "pattern": "^P"
                    }
                }
            }
        }
    })
});

static PARAMETERS_VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> =
    LazyLock::new(|| jsonschema::validator_for(&PARAMETERS_SCHEMA).map_err(|e| e.to_string()));

/// Checks the parameters of a provision or update, when it has any: a 400 that
/// names the field when they are not what the plan accepts.
pub fn check_parameters(parameters: Option<&Value>) -> Result<(), OsbError> {
    parameters.map_or(Ok(()), |p| {
        parameter_problem(p).map_err(OsbError::BadRequest)
    })
}

/// Checks parameters against the plan's schema, then `delivery` against the rules
/// every Subscription's `delivery` follows (it becomes one); the problem names the
/// field (`parameters.delivery.retry: ...`).
fn parameter_problem(parameters: &Value) -> Result<(), String> {
    let validator = PARAMETERS_VALIDATOR
        .as_ref()
        .map_err(|e| format!("the parameters schema is broken: {e}"))?;
    if let Some(error) = validator.iter_errors(parameters).next() {
        let pointer = error.instance_path().to_string();
        let field: String = pointer.split('/').filter(|s| !s.is_empty()).fold(
            "parameters".to_string(),
            |acc, part| {
                if part.bytes().all(|b| b.is_ascii_digit()) {
                    format!("{acc}[{part}]")
                } else {
                    format!("{acc}.{part}")
                }
            },
        );
        return Err(format!("{field}: {error}"));
    }
    if let Some(delivery) = parameters.get("delivery") {
        let delivery: DeliverySpec = serde_json::from_value(delivery.clone())
            .map_err(|e| format!("parameters.delivery: {e}"))?;
        delivery
            .validate()
            .map_err(|e| e.within("parameters.delivery").to_string())?;
    }
    Ok(())
}

/// `maintenance_info`: absent or `{}` is no conflict (None); otherwise its version
/// must be the plan's (then the value is kept). Only `version` counts, as the spec
/// says, and of it what Semantic Versioning compares: build metadata (`+…`) is
/// ignored in precedence, so `1.0.0+build` is the plan's `1.0.0`.
pub fn check_maintenance_info(value: Option<&Value>) -> Result<Option<Value>, OsbError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(fields)) if fields.is_empty() => Ok(None),
        Some(Value::Object(fields)) => match fields.get("version") {
            Some(Value::String(version))
                if version.split('+').next() == Some(MAINTENANCE_VERSION) =>
            {
                Ok(value.cloned())
            }
            Some(Value::String(version)) => Err(OsbError::MaintenanceInfoConflict(format!(
                "maintenance_info.version {version} does not match the plan's version {MAINTENANCE_VERSION}"
            ))),
            _ => Err(OsbError::BadRequest(
                "maintenance_info.version must be a string".into(),
            )),
        },
        Some(_) => Err(OsbError::BadRequest(
            "maintenance_info must be an object".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_errors_name_the_field() {
        assert!(parameter_problem(&json!({})).is_ok());
        assert!(
            parameter_problem(&json!({"delivery": {"retry": 3, "backoffPolicy": "linear"}}))
                .is_ok()
        );
        let error =
            parameter_problem(&json!({"delivery": {"retry": 500}})).expect_err("too many retries");
        assert!(error.starts_with("parameters.delivery.retry:"), "{error}");
        let error = parameter_problem(&json!({"colour": "blue"})).expect_err("unknown parameter");
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn delivery_parameters_follow_the_subscription_rules() {
        let cases = [
            (
                json!({"timeout": "PT0S"}),
                Some("parameters.delivery.timeout:"),
            ),
            (
                json!({"timeout": "-PT1S"}),
                Some("parameters.delivery.timeout:"),
            ),
            (
                json!({"backoffDelay": "P"}),
                Some("parameters.delivery.backoffDelay:"),
            ),
            (json!({"timeout": "PT0.5S", "backoffDelay": "PT0S"}), None),
        ];
        for (delivery, refused) in cases {
            let result = parameter_problem(&json!({ "delivery": delivery }));
            match refused {
                Some(field) => {
                    let error = result.expect_err("refused");
                    assert!(error.starts_with(field), "{delivery}: {error}");
                }
                None => assert!(result.is_ok(), "{delivery}: {result:?}"),
            }
        }
    }

    #[test]
    fn maintenance_info_is_absent_the_plans_version_or_refused() {
        let cases = [
            (None, Ok(None)),
            (Some(json!(null)), Ok(None)),
            (Some(json!({})), Ok(None)),
            (
                Some(json!({"version": MAINTENANCE_VERSION, "description": "x"})),
                Ok(Some(
                    json!({"version": MAINTENANCE_VERSION, "description": "x"}),
                )),
            ),
            (
                Some(json!({"version": "9.9.9"})),
                Err("MaintenanceInfoConflict"),
            ),
            (
                Some(json!({"version": format!("{MAINTENANCE_VERSION}+build.7")})),
                Ok(Some(
                    json!({"version": format!("{MAINTENANCE_VERSION}+build.7")}),
                )),
            ),
            (
                Some(json!({"version": format!("{MAINTENANCE_VERSION}-rc.1")})),
                Err("MaintenanceInfoConflict"),
            ),
            (Some(json!({"version": 1})), Err("BadRequest")),
            (
                Some(json!({"description": "no version"})),
                Err("BadRequest"),
            ),
            (Some(json!("1.0.0")), Err("BadRequest")),
        ];
        for (value, expected) in cases {
            let checked = check_maintenance_info(value.as_ref()).map_err(|e| e.key());
            assert_eq!(checked, expected, "{value:?}");
        }
    }
}
