//! The paths of the OSB routes, one type a shape, decoded from the route's
//! parameters by `OsbPath`. A path that does not decode (a parameter that is not
//! UTF-8) or that names a blank id is a 400 with OSB's error body, before anything
//! else of the request is read.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::OsbError;

/// `/v2/catalog`, and `/{namespace}/v2/catalog`.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogPath {
    pub namespace: Option<String>,
}

/// `/v2/service_instances/{instance_id}` and its `/last_operation`, also under
/// `/{namespace}`.
#[derive(Debug, Clone, Deserialize)]
pub struct InstancePath {
    pub namespace: Option<String>,
    pub instance_id: String,
}

/// `/v2/service_instances/{instance_id}/service_bindings/{binding_id}`, also
/// under `/{namespace}`.
#[derive(Debug, Clone, Deserialize)]
pub struct BindingPath {
    #[serde(flatten)]
    pub instance: InstancePath,
    pub binding_id: String,
}

/// The ids a path names, in path order; none may be blank.
pub trait PathIds {
    fn ids(&self) -> Vec<(&'static str, &str)>;
}

impl PathIds for CatalogPath {
    fn ids(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }
}

impl PathIds for InstancePath {
    fn ids(&self) -> Vec<(&'static str, &str)> {
        vec![("instance_id", &self.instance_id)]
    }
}

impl PathIds for BindingPath {
    fn ids(&self) -> Vec<(&'static str, &str)> {
        let mut ids = self.instance.ids();
        ids.push(("binding_id", &self.binding_id));
        ids
    }
}

/// The route's parameters as `T`, every id in it present and not blank.
pub struct OsbPath<T>(pub T);

impl<S, T> FromRequestParts<S> for OsbPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + PathIds + Send,
{
    type Rejection = OsbError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, OsbError> {
        let Path(path) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(refused)?;
        check_ids(&path)?;
        Ok(Self(path))
    }
}

/// An id is not blank and holds no control characters (a newline in an id
/// would end the log line that names it, and begin one of the caller's).
fn check_ids(path: &impl PathIds) -> Result<(), OsbError> {
    for (name, id) in path.ids() {
        if id.trim().is_empty() {
            return Err(OsbError::BadRequest(format!("{name} must not be empty")));
        }
        if let Some(c) = id.chars().find(|c| c.is_control()) {
            return Err(OsbError::BadRequest(format!(
                "{name} holds the control character U+{:04X}",
                u32::from(c)
            )));
        }
    }
    Ok(())
}

/// axum's own words for the refusal (`Invalid URL: Invalid UTF-8 in
/// `instance_id``), in OSB's error body. Only a route whose pattern lacks a field
/// of its path type fails on the server's side.
fn refused(rejection: PathRejection) -> OsbError {
    if rejection.status().is_client_error() {
        OsbError::BadRequest(rejection.body_text())
    } else {
        OsbError::Internal(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(instance_id: &str, binding_id: &str) -> BindingPath {
        BindingPath {
            instance: InstancePath {
                namespace: None,
                instance_id: instance_id.into(),
            },
            binding_id: binding_id.into(),
        }
    }

    #[test]
    fn a_blank_id_or_one_with_control_characters_is_refused_by_its_name_in_path_order() {
        let cases = [
            (binding("i", "b"), None),
            (binding(" ", "b"), Some("instance_id must not be empty")),
            (binding("i", "\t"), Some("binding_id must not be empty")),
            (binding("", ""), Some("instance_id must not be empty")),
            (
                binding("a\nb", "b"),
                Some("instance_id holds the control character U+000A"),
            ),
            (
                binding("i", "b\u{0}"),
                Some("binding_id holds the control character U+0000"),
            ),
        ];
        for (path, refusal) in cases {
            let checked = check_ids(&path).map_err(|e| e.to_string());
            assert_eq!(checked.err().as_deref(), refusal, "{path:?}");
        }
        assert!(check_ids(&CatalogPath { namespace: None }).is_ok());
    }
}
