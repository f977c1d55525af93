//! `dryRun=All` on POST, PUT, PATCH and DELETE: the request runs every check
//! the real one runs, the store's included (`Store::dry_run`), and answers what
//! the real one would, but nothing is stored, so no watch and no controller
//! sees it. `All` is the only value Kubernetes defines; any other is refused
//! rather than taken as a real write.

use kube::core::DynamicObject;

use super::ApiError;
use crate::resources::KindSpec;
use crate::store::{Store, StoreError, Write};

/// Whether a write is stored or only rehearsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Commit {
    #[default]
    Store,
    DryRun,
}

impl Commit {
    /// From a request's query: every `dryRun` parameter (they may repeat).
    pub fn from_query(query: &[(String, String)]) -> Result<Self, ApiError> {
        Self::from_values(
            query
                .iter()
                .filter(|(key, _)| key == "dryRun")
                .map(|(_, value)| value.as_str()),
        )
    }

    /// From `dryRun` values, in the query or a DeleteOptions body.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Self, ApiError> {
        let mut commit = Self::Store;
        for value in values {
            if value != "All" {
                return Err(ApiError::unsupported_option("dryRun", value, "\"All\""));
            }
            commit = Self::DryRun;
        }
        Ok(commit)
    }

    /// A dry run if either says so.
    pub fn or(self, other: Self) -> Self {
        if self == Self::DryRun || other == Self::DryRun {
            Self::DryRun
        } else {
            Self::Store
        }
    }

    pub fn is_dry_run(self) -> bool {
        self == Self::DryRun
    }

    pub async fn create(
        self,
        store: &dyn Store,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        match self {
            Self::Store => store.create(kind, object).await,
            Self::DryRun => store.dry_run(kind, Write::Create(object)).await,
        }
    }

    pub async fn replace(
        self,
        store: &dyn Store,
        kind: &'static KindSpec,
        object: DynamicObject,
    ) -> Result<DynamicObject, StoreError> {
        match self {
            Self::Store => store.replace(kind, object).await,
            Self::DryRun => store.dry_run(kind, Write::Replace(object)).await,
        }
    }

    pub async fn delete(
        self,
        store: &dyn Store,
        kind: &'static KindSpec,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<DynamicObject, StoreError> {
        match self {
            Self::Store => store.delete(kind, namespace, name, resource_version).await,
            Self::DryRun => {
                let write = Write::Delete {
                    namespace: namespace.map(str::to_string),
                    name: name.to_string(),
                    resource_version: resource_version.map(str::to_string),
                };
                store.dry_run(kind, write).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_all_makes_a_dry_run_and_anything_else_is_refused() {
        let cases = [
            (query(&[]), Some(Commit::Store)),
            (query(&[("dryRun", "All")]), Some(Commit::DryRun)),
            (
                query(&[("dryRun", "All"), ("dryRun", "All")]),
                Some(Commit::DryRun),
            ),
            (query(&[("fieldManager", "kubectl")]), Some(Commit::Store)),
            (query(&[("dryRun", "all")]), None),
            (query(&[("dryRun", "")]), None),
            (query(&[("dryRun", "All"), ("dryRun", "Some")]), None),
        ];
        for (query, expected) in cases {
            assert_eq!(Commit::from_query(&query).ok(), expected, "{query:?}");
        }
    }
}
