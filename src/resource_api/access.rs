//! Who may touch what: the admin everything; a namespace token the namespace
//! kinds inside its own namespace (grants such as ApplicationMappings only to
//! read); an Application's credential nothing.

use crate::auth::Caller;
use crate::resources::Access;

use super::ApiError;
use super::target::Target;

/// What a request does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Read,
    Write,
}

pub fn authorize(caller: &Caller, target: &Target, intent: Intent) -> Result<(), ApiError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Namespace(own) => {
            let plural = &target.kind.plural;
            let refusal = match (target.kind.access, intent) {
                (Access::Admin, _) => Some(format!(
                    "a token of namespace {own:?} may not access {plural}"
                )),
                (_, _) if !target.kind.namespaced => Some(format!(
                    "a token of namespace {own:?} may not access {plural}"
                )),
                (Access::NamespaceReads, Intent::Write) => Some(format!(
                    "a token of namespace {own:?} may read {plural} but not write them: only an administrator does"
                )),
                (Access::Namespace | Access::NamespaceReads, _) => None,
            };
            if let Some(refusal) = refusal {
                return Err(ApiError::forbidden(refusal));
            }
            match &target.namespace {
                Some(namespace) if namespace == own => Ok(()),
                Some(namespace) => Err(ApiError::forbidden(format!(
                    "a token of namespace {own:?} may not access namespace {namespace:?}"
                ))),
                None if intent == Intent::Write => Err(ApiError::forbidden(format!(
                    "a token of namespace {own:?} writes {plural} under its namespace's path (…/namespaces/{own}/{plural})"
                ))),
                None => Err(ApiError::forbidden(format!(
                    "a token of namespace {own:?} may not list {plural} across namespaces"
                ))),
            }
        }
        Caller::Application(application) => Err(ApiError::forbidden(format!(
            "the credential of Application {application:?} only opens its event ingress"
        ))),
    }
}
