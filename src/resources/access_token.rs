//! `meshbroker.io/v1alpha1` AccessToken: a bearer token that may read and write the
//! objects of one namespace. Only its SHA-256 digest is stored; the token itself is
//! shown once, in the response that created it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Invalid;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "meshbroker.io",
    version = "v1alpha1",
    kind = "AccessToken",
    namespaced,
    status = "AccessTokenStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenSpec {
    #[serde(default)]
    pub description: String,
    /// Makes the token an Application's credential: it then opens only that
    /// Application's event ingress, and not the resource API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenStatus {
    /// Hex SHA-256 of the token.
    #[serde(default)]
    pub token_sha256: String,
    /// The token itself: present only in the create response, never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl AccessToken {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.spec.description.len() > 1024 {
            return Err(Invalid::new(
                "spec.description",
                "must be at most 1024 characters",
            ));
        }
        if let Some(application) = &self.spec.application
            && !super::is_valid_name(application)
        {
            return Err(Invalid::new(
                "spec.application",
                format!("{application:?} is not an Application name"),
            ));
        }
        Ok(())
    }
}
