//! The CustomResourceDefinitions of every kind meshbroker stores, generated from
//! the Rust types (so deploy/ never drifts from the code): `meshbroker crds`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use super::connector::{TOKEN_REQUEST_GROUP, TOKEN_REQUEST_VERSION};
use super::{
    AccessToken, Application, ApplicationMapping, Broker, CertificateRevocation, Channel,
    HttpSource, KnativeEventType, ServiceInstance, Subscription, Trigger,
};

/// Every CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        Application::crd(),
        ApplicationMapping::crd(),
        HttpSource::crd(),
        Channel::crd(),
        Subscription::crd(),
        Broker::crd(),
        Trigger::crd(),
        ServiceInstance::crd(),
        AccessToken::crd(),
        CertificateRevocation::crd(),
        KnativeEventType::crd(),
        token_request_crd(),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                make_portable(schema);
            }
        }
    }
    crds
}

/// Kyma's TokenRequest has no spec (the derive needs one), so its CRD is
/// written out: Kyma's fields, and the status the Connector keeps.
fn token_request_crd() -> CustomResourceDefinition {
    let string = serde_json::json!({"type": "string"});
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("tokenrequests.{TOKEN_REQUEST_GROUP}")},
        "spec": {
            "group": TOKEN_REQUEST_GROUP,
            "names": {
                "kind": "TokenRequest",
                "plural": "tokenrequests",
                "singular": "tokenrequest",
                "shortNames": []
            },
            "scope": "Namespaced",
            "versions": [{
                "name": TOKEN_REQUEST_VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "context": {"type": "object", "properties": {"group": string, "tenant": string}},
                        "status": {"type": "object", "properties": {
                            "expireAfter": string,
                            "application": string,
                            "state": string,
                            "token": string,
                            "url": string,
                            "message": string,
                            "csrTokenSha256": string,
                            "applicationUid": string
                        }}
                    }
                }}
            }]
        }
    });
    serde_json::from_value(crd).expect("the TokenRequest CRD is well formed")
}

/// Rewrites what the derived schemas say in a way API servers refuse:
/// - the `default`s that `#[serde(default)]` adds: `default: null` is not of the
///   field's type (and the Rust types apply those defaults on read anyway);
/// - formats the API server does not know (`uint32` and the like: warned about),
///   made its own `int32`/`int64`;
/// - `null` in the `enum` of an optional field (`nullable: true` already allows
///   it): a 1.20 server cannot round-trip it and refuses the CRD with "per-version
///   schemas may not all be set to identical values".
fn make_portable(schema: &mut JSONSchemaProps) {
    schema.default = None;
    // Unsigned formats are not the API server's: it warns about them (since
    // 1.2x). Its own are int32 and int64.
    let known = match schema.format.as_deref() {
        Some("uint32" | "uint8" | "uint16" | "int8" | "int16") => Some("int32"),
        Some("uint64" | "uint" | "int") => Some("int64"),
        _ => None,
    };
    if let Some(known) = known {
        schema.format = Some(known.to_string());
    }
    if let Some(values) = schema.enum_.as_mut() {
        values.retain(|v| !v.0.is_null());
    }
    let nested = schema
        .properties
        .iter_mut()
        .flat_map(|p| p.values_mut())
        .chain(schema.all_of.iter_mut().flatten())
        .chain(schema.any_of.iter_mut().flatten())
        .chain(schema.one_of.iter_mut().flatten())
        .chain(schema.not.as_deref_mut());
    let mut children: Vec<&mut JSONSchemaProps> = nested.collect();
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => children.push(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => children.extend(items.iter_mut()),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        children.push(extra);
    }
    for child in children {
        make_portable(child);
    }
}

/// All CRDs as one multi-document YAML stream, as `kubectl apply -f` takes it.
pub fn yaml() -> Result<String, String> {
    let mut out =
        String::from("# Generated by `meshbroker crds`; do not edit (a test keeps it equal).\n");
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crd_is_structural_and_versioned() {
        for crd in all() {
            let version = &crd.spec.versions[0];
            assert!(version.served && version.storage, "{}", crd.spec.names.kind);
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref());
            assert!(schema.is_some(), "{} has a schema", crd.spec.names.kind);
            let text = serde_json::to_string(&crd).expect("json");
            assert!(
                !text.contains("\"$ref\""),
                "{} must not use $ref (not structural)",
                crd.spec.names.kind
            );
            for unknown in [
                "\"format\":\"uint",
                "\"format\":\"int8",
                "\"format\":\"int16",
            ] {
                assert!(
                    !text.contains(unknown),
                    "{}: a format the API server warns about ({unknown})",
                    crd.spec.names.kind
                );
            }
        }
    }
}
