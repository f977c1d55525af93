//! `sources.kyma-project.io/v1alpha1` HTTPSource: an Application's event ingress,
//! created in the integration namespace; its status carries the URL to POST to.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Conditions, Invalid};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "sources.kyma-project.io",
    version = "v1alpha1",
    kind = "HTTPSource",
    root = "HttpSource",
    plural = "httpsources",
    namespaced,
    status = "HttpSourceStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct HttpSourceSpec {
    /// The Application whose events this source takes in.
    pub source: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpSourceStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_uri: Option<String>,
}

impl Conditions for HttpSourceStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl HttpSource {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.spec.source.is_empty() {
            return Err(Invalid::new("spec.source", "must name an Application"));
        }
        Ok(())
    }
}
