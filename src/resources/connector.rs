//! The Application Connector's kinds.
//!
//! `applicationconnector.kyma-project.io/v1alpha1` TokenRequest, as Kyma has it:
//! named after an Application, no spec (an optional `context`), and a status the
//! Connector fills with a one-time configuration URL. The token is shown in the
//! status, as in Kyma, so `kubectl get tokenrequest -o yaml` hands it over; it
//! opens nothing but the certificate signing, once, for a few minutes.
//!
//! `meshbroker.io/v1alpha1` CertificateRevocation: one revoked client
//! certificate, by the SHA-256 fingerprint of its DER form.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use kube::CustomResource;
use kube::core::ObjectMeta;
use kube::core::object::HasStatus;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Invalid;

pub const TOKEN_REQUEST_GROUP: &str = "applicationconnector.kyma-project.io";
pub const TOKEN_REQUEST_VERSION: &str = "v1alpha1";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Kyma's tenant and group; kept as written, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<TokenRequestContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TokenRequestStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequestContext {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
}

/// Where a TokenRequest is in its one-time flow.
pub mod token_state {
    /// The configuration URL may be fetched.
    pub const OK: &str = "OK";
    /// The configuration was fetched; the CSR URL's token may be used once.
    pub const CONFIGURED: &str = "Configured";
    /// A certificate was issued: nothing more to do with this request.
    pub const ISSUED: &str = "Issued";
    /// The tokens expired unused.
    pub const EXPIRED: &str = "Expired";
    /// It names no Application, or its Application was deleted.
    pub const ERROR: &str = "ERR";
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequestStatus {
    /// RFC 3339: when the token stops working.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expire_after: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub application: String,
    /// The uid of the Application the token was minted for: a token outlives
    /// no Application, nor works for a later one of the same name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub application_uid: String,
    /// One of `token_state`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// The configuration URL, token included.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Hex SHA-256 of the CSR URL's token, minted when the configuration is
    /// fetched; only its digest is kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub csr_token_sha256: String,
}

impl kube::Resource for TokenRequest {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "TokenRequest".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        TOKEN_REQUEST_GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        TOKEN_REQUEST_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "tokenrequests".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl HasStatus for TokenRequest {
    type Status = TokenRequestStatus;

    fn status(&self) -> Option<&TokenRequestStatus> {
        self.status.as_ref()
    }
    fn status_mut(&mut self) -> &mut Option<TokenRequestStatus> {
        &mut self.status
    }
}

impl TokenRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        let context = self.context.as_ref();
        for (field, value) in [
            ("context.group", context.map(|c| &c.group)),
            ("context.tenant", context.map(|c| &c.tenant)),
        ] {
            if value.is_some_and(|v| v.len() > 256) {
                return Err(Invalid::new(field, "must be at most 256 characters"));
            }
        }
        Ok(())
    }
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "meshbroker.io",
    version = "v1alpha1",
    kind = "CertificateRevocation"
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRevocationSpec {
    /// Lowercase hex SHA-256 of the certificate's DER form (`openssl x509
    /// -noout -fingerprint -sha256`, colons and case do not matter).
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl CertificateRevocation {
    pub fn validate(&self) -> Result<(), Invalid> {
        if normalized_fingerprint(&self.spec.sha256).is_none() {
            return Err(Invalid::new(
                "spec.sha256",
                "must be a SHA-256 fingerprint: 64 hex digits (colons allowed)",
            ));
        }
        if self.spec.reason.len() > 1024 {
            return Err(Invalid::new(
                "spec.reason",
                "must be at most 1024 characters",
            ));
        }
        Ok(())
    }
}

/// A fingerprint as meshbroker compares them: 64 lowercase hex digits, from
/// any case and with or without openssl's colons.
pub fn normalized_fingerprint(written: &str) -> Option<String> {
    let digits: String = written
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (digits.len() == 64 && digits.chars().all(|c| c.is_ascii_hexdigit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_whatever_their_writing() {
        let plain = "ab".repeat(32);
        let openssl = vec!["AB"; 32].join(":");
        assert_eq!(normalized_fingerprint(&openssl), Some(plain.clone()));
        assert_eq!(normalized_fingerprint(&plain), Some(plain));
        assert_eq!(normalized_fingerprint("abc"), None);
        assert_eq!(normalized_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn a_kyma_token_request_without_spec_reads() {
        let written = serde_json::json!({
            "apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
            "kind": "TokenRequest",
            "metadata": {"name": "orders"}
        });
        let request: TokenRequest = serde_json::from_value(written).expect("reads");
        assert_eq!(request.metadata.name.as_deref(), Some("orders"));
        assert!(request.validate().is_ok());
    }
}
