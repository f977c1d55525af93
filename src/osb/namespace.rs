//! Which namespace a request targets: `context.namespace` (Kubernetes platform) or
//! the `/{namespace}` route prefix; when both are given they must agree.

use serde_json::Value;

use super::OsbError;
use crate::resources::ServiceInstance;

/// The namespace named by the context, if the context is a Kubernetes one.
fn context_namespace(context: Option<&Value>) -> Result<Option<String>, OsbError> {
    let Some(context) = context else {
        return Ok(None);
    };
    if context.get("platform").and_then(Value::as_str) != Some("kubernetes") {
        return Ok(None);
    }
    match context.get("namespace") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(ns)) if !ns.is_empty() => Ok(Some(ns.clone())),
        Some(_) => Err(OsbError::BadRequest(
            "context.namespace must be a non-empty string".into(),
        )),
    }
}

pub fn target_namespace(prefix: Option<&str>, context: Option<&Value>) -> Result<String, OsbError> {
    match (prefix, context_namespace(context)?) {
        (Some(prefix), Some(from_context)) if prefix != from_context => Err(OsbError::BadRequest(format!(
            "context.namespace {from_context:?} does not match the namespace {prefix:?} in the path"
        ))),
        (Some(prefix), _) => Ok(prefix.to_string()),
        (None, Some(from_context)) => Ok(from_context),
        (None, None) => Err(OsbError::BadRequest(
            "the target namespace is unknown: send context {\"platform\":\"kubernetes\",\"namespace\":...} or use /{namespace}/v2/..."
                .into(),
        )),
    }
}

/// The profile requires the originating identity's platform to equal
/// `context.platform`.
pub fn check_platform(
    originating_platform: Option<&str>,
    context: Option<&Value>,
) -> Result<(), OsbError> {
    let platform = context
        .and_then(|c| c.get("platform"))
        .and_then(Value::as_str);
    match (originating_platform, platform) {
        (Some(originating), Some(platform)) if originating != platform => {
            Err(OsbError::BadRequest(format!(
                "X-Broker-API-Originating-Identity names platform {originating:?} but context.platform is {platform:?}"
            )))
        }
        _ => Ok(()),
    }
}

/// A request about an instance (a bind) whose `context` names a namespace
/// must name the instance's own.
pub fn check_context_namespace(
    context: Option<&Value>,
    instance: &ServiceInstance,
) -> Result<(), OsbError> {
    let namespace = &instance.spec.namespace;
    match context_namespace(context)? {
        Some(named) if named != *namespace => Err(OsbError::BadRequest(format!(
            "context.namespace {named:?} is not the namespace of instance {} ({namespace})",
            instance.spec.instance_id
        ))),
        _ => Ok(()),
    }
}

/// Under a `/{namespace}` prefix, only that namespace's instances are reachable.
pub fn check_instance_namespace(
    prefix: Option<&str>,
    instance_namespace: &str,
    instance_id: &str,
) -> Result<(), OsbError> {
    match prefix {
        Some(prefix) if prefix != instance_namespace => Err(OsbError::BadRequest(format!(
            "instance {instance_id} belongs to namespace {instance_namespace}, not {prefix}"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_namespace_comes_from_context_or_prefix() {
        let context = json!({"platform": "kubernetes", "namespace": "team-a"});
        assert_eq!(
            target_namespace(None, Some(&context)).expect("from context"),
            "team-a"
        );
        assert_eq!(
            target_namespace(Some("team-a"), Some(&context)).expect("agreeing"),
            "team-a"
        );
        assert_eq!(
            target_namespace(Some("team-b"), None).expect("from prefix"),
            "team-b"
        );
        assert!(target_namespace(Some("team-b"), Some(&context)).is_err());
        assert!(target_namespace(None, None).is_err());
        let cloudfoundry = json!({"platform": "cloudfoundry", "namespace": "x"});
        assert!(target_namespace(None, Some(&cloudfoundry)).is_err());
    }
}
