//! What a resource path names: a kind, maybe a namespace, maybe an object.

use std::collections::HashMap;

use crate::resources::{KindSpec, kind_by_path};

use super::ApiError;

pub struct Target {
    pub kind: &'static KindSpec,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Target {
    /// From the path parameters of any resource route; core routes carry no group.
    pub fn from_path(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let group = params.get("group").map_or("", String::as_str);
        let version = params.get("version").map_or("v1", String::as_str);
        let plural = params.get("plural").map_or("namespaces", String::as_str);
        let kind = kind_by_path(group, version, plural).ok_or_else(|| {
            let api = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            ApiError::not_found(format!("the server does not serve {plural} in {api}"))
        })?;
        let namespace = params.get("namespace").cloned();
        if namespace.is_some() && !kind.namespaced {
            return Err(ApiError::not_found(format!(
                "{} is cluster-scoped: use its path without /namespaces/{{namespace}}",
                kind.kind
            )));
        }
        let name = params.get("name").cloned();
        if name.is_some() && namespace.is_none() && kind.namespaced {
            return Err(ApiError::not_found(format!(
                "{} lives in a namespace: use /apis/{}/namespaces/{{namespace}}/{}/{{name}}",
                kind.kind,
                kind.api_version(),
                kind.plural
            )));
        }
        Ok(Self {
            kind,
            namespace,
            name,
        })
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}
