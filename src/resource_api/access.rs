//! Who may touch what: the admin everything; a namespace token only the
//! non-admin kinds inside its own namespace; an Application's credential nothing.

use crate::auth::Caller;

use super::ApiError;
use super::target::Target;

pub fn authorize(caller: &Caller, target: &Target) -> Result<(), ApiError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Namespace(own) => {
            if target.kind.admin_only || !target.kind.namespaced {
                return Err(ApiError::forbidden(format!(
                    "a token of namespace {own:?} may not access {}",
                    target.kind.plural
                )));
            }
            match &target.namespace {
                Some(namespace) if namespace == own => Ok(()),
                Some(namespace) => Err(ApiError::forbidden(format!(
                    "a token of namespace {own:?} may not access namespace {namespace:?}"
                ))),
                None => Err(ApiError::forbidden(format!(
                    "a token of namespace {own:?} may not list {} across namespaces",
                    target.kind.plural
                ))),
            }
        }
        Caller::Application(application) => Err(ApiError::forbidden(format!(
            "the credential of Application {application:?} only opens its event ingress"
        ))),
    }
}
