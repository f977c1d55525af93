//! OSB requests as they arrive: the bodies (unknown fields are ignored, as the
//! spec requires), the query string, and their decoding into the facade's
//! details. An id sent as an empty string counts as missing.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::Uri;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::OsbError;
use super::details::{BindDetails, ProvisionDetails, ServicePlan, UpdateDetails};
use super::headers::OriginatingIdentity;
use crate::bodies::{BodyError, MAX_NESTING, nests_deeper_than, read_limited};
use crate::resources::ServiceInstance;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct ProvisionBody {
    pub service_id: Option<String>,
    pub plan_id: Option<String>,
    pub organization_guid: Option<String>,
    pub space_guid: Option<String>,
    pub context: Option<Value>,
    pub parameters: Option<Value>,
    pub maintenance_info: Option<Value>,
}

impl ProvisionBody {
    pub fn details(
        self,
        identity: Option<&OriginatingIdentity>,
    ) -> Result<ProvisionDetails, OsbError> {
        Ok(ProvisionDetails {
            service_id: required("service_id", self.service_id.as_ref())?,
            plan_id: required("plan_id", self.plan_id.as_ref())?,
            organization_guid: required("organization_guid", self.organization_guid.as_ref())?,
            space_guid: required("space_guid", self.space_guid.as_ref())?,
            context: object_or_absent("context", self.context)?,
            parameters: object_or_absent("parameters", self.parameters)?,
            maintenance_info: self.maintenance_info,
            originating_platform: identity.map(|i| i.platform.clone()),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateBody {
    pub service_id: Option<String>,
    pub plan_id: Option<String>,
    pub context: Option<Value>,
    pub parameters: Option<Value>,
    pub maintenance_info: Option<Value>,
    /// Read only to refuse one of the wrong type: the record knows the past.
    pub previous_values: Option<Value>,
}

impl UpdateBody {
    pub fn details(
        self,
        identity: Option<&OriginatingIdentity>,
    ) -> Result<UpdateDetails, OsbError> {
        object_or_absent("previous_values", self.previous_values)?;
        Ok(UpdateDetails {
            service_id: required("service_id", self.service_id.as_ref())?,
            // Optional, but not empty when sent.
            plan_id: self
                .plan_id
                .as_ref()
                .map(|p| required("plan_id", Some(p)))
                .transpose()?,
            context: object_or_absent("context", self.context)?,
            parameters: object_or_absent("parameters", self.parameters)?,
            maintenance_info: self.maintenance_info,
            originating_platform: identity.map(|i| i.platform.clone()),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct BindBody {
    pub service_id: Option<String>,
    pub plan_id: Option<String>,
    pub parameters: Option<Value>,
    pub bind_resource: Option<Value>,
    pub context: Option<Value>,
    /// Deprecated; if present, the spec says, a non-empty string.
    pub app_guid: Option<String>,
}

impl BindBody {
    pub fn details(self, identity: Option<&OriginatingIdentity>) -> Result<BindDetails, OsbError> {
        if let Some(app_guid) = &self.app_guid {
            required("app_guid", Some(app_guid))?;
        }
        Ok(BindDetails {
            service_id: required("service_id", self.service_id.as_ref())?,
            plan_id: required("plan_id", self.plan_id.as_ref())?,
            parameters: object_or_absent("parameters", self.parameters)?,
            bind_resource: object_or_absent("bind_resource", self.bind_resource)?,
            context: object_or_absent("context", self.context)?,
            originating_platform: identity.map(|i| i.platform.clone()),
        })
    }
}

/// A JSON body, read within `--max-body-bytes` (413 beyond); empty, not JSON or
/// a field of the wrong type is a 400 that names the field.
pub struct OsbJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for OsbJson<T> {
    type Rejection = OsbError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OsbError> {
        read_json(request.into_body(), state.config.max_body_bytes)
            .await
            .map(Self)
    }
}

async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, OsbError> {
    let bytes = read_limited(body, limit)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge(_) => OsbError::PayloadTooLarge(error.to_string()),
            other => OsbError::Body(other),
        })?;
    if bytes.is_empty() {
        return Err(OsbError::BadRequest("the request needs a JSON body".into()));
    }
    // serde fills a struct from a JSON array too, field by field in order:
    // every OSB body is an object.
    let json_whitespace = |b: &&u8| matches!(**b, b' ' | b'\t' | b'\n' | b'\r');
    if bytes.iter().find(|b| !json_whitespace(b)) != Some(&b'{') {
        return Err(OsbError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    // Parameters and context are stored as they come: deeper, a record
    // could be written and never read back.
    if nests_deeper_than(&bytes, MAX_NESTING) {
        return Err(OsbError::BadRequest(format!(
            "the body nests deeper than {MAX_NESTING} levels"
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let read = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path == "?" {
            OsbError::BadRequest(format!("the body is not a valid JSON object: {inner}"))
        } else {
            OsbError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    // `{A}{B}` or `{A}xyz` is malformed, not A.
    deserializer.end().map_err(|e| {
        OsbError::BadRequest(format!("the body has more after its JSON object: {e}"))
    })?;
    Ok(read)
}

/// A required id: present and not empty.
fn required(field: &str, value: Option<&String>) -> Result<String, OsbError> {
    match value.map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        Some(_) => Err(OsbError::BadRequest(format!("{field} must not be empty"))),
        None => Err(OsbError::BadRequest(format!("{field} is required"))),
    }
}

/// Objects the spec types as objects (`parameters`, `context`).
fn object_or_absent(field: &str, value: Option<Value>) -> Result<Option<Value>, OsbError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(OsbError::BadRequest(format!(
            "{field} must be a JSON object"
        ))),
    }
}

/// The query string; a malformed one is a 400.
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    fn of(uri: &Uri) -> Result<Self, OsbError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| OsbError::BadRequest(format!("the query string is malformed: {e}")))?;
        let mut params = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            // Which of two values was meant is anyone's guess: acting on
            // either could deprovision what the caller did not name.
            if params.contains_key(&name) {
                return Err(OsbError::BadRequest(format!(
                    "the query parameter {name} is given more than once"
                )));
            }
            params.insert(name, value);
        }
        Ok(Self(params))
    }

    /// `accepts_incomplete`: whether the platform follows an operation (true) or
    /// needs its outcome in the answer (false, also when it is not sent).
    pub fn accepts_incomplete(&self) -> Result<bool, OsbError> {
        match self.0.get("accepts_incomplete").map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(OsbError::BadRequest(format!(
                "accepts_incomplete must be true or false, not {other:?}"
            ))),
        }
    }

    /// `service_id` and `plan_id`, which every `DELETE` must name.
    pub fn service_plan(&self) -> Result<ServicePlan, OsbError> {
        Ok(ServicePlan {
            service_id: required("service_id", self.0.get("service_id"))?,
            plan_id: required("plan_id", self.0.get("plan_id"))?,
        })
    }

    /// The `service_id` and `plan_id` a fetch or a poll may name (then not
    /// empty), to be checked against the instance's.
    pub fn named_ids(&self) -> Result<NamedIds, OsbError> {
        let optional = |name| {
            self.0
                .get(name)
                .map(|id| required(name, Some(id)))
                .transpose()
        };
        Ok(NamedIds {
            service_id: optional("service_id")?,
            plan_id: optional("plan_id")?,
        })
    }

    /// The `operation` a poll names, if it names one (then not empty).
    pub fn operation(&self) -> Result<Option<String>, OsbError> {
        self.0
            .get("operation")
            .map(|o| required("operation", Some(o)))
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = OsbError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, OsbError> {
        Self::of(&parts.uri)
    }
}

/// The ids a fetch or a poll may name: each must be the instance's, as a
/// deprovision's must, or the answer would be about what the caller did not
/// mean.
#[derive(Debug, Default)]
pub struct NamedIds {
    service_id: Option<String>,
    plan_id: Option<String>,
}

impl From<ServicePlan> for NamedIds {
    fn from(ids: ServicePlan) -> Self {
        Self {
            service_id: Some(ids.service_id),
            plan_id: Some(ids.plan_id),
        }
    }
}

impl NamedIds {
    pub fn check(&self, instance: &ServiceInstance) -> Result<(), OsbError> {
        let named = [
            ("service_id", &self.service_id, &instance.spec.service_id),
            ("plan_id", &self.plan_id, &instance.spec.plan_id),
        ];
        for (name, given, held) in named {
            if let Some(given) = given
                && given != held
            {
                return Err(OsbError::BadRequest(format!(
                    "{name} {given} is not the instance's ({held})"
                )));
            }
        }
        Ok(())
    }
}

/// Just `accepts_incomplete` of the query string, for the requests that read
/// nothing else there; decoded before their body, so it is refused first.
pub struct AcceptsIncomplete(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for AcceptsIncomplete {
    type Rejection = OsbError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, OsbError> {
        QueryParams::of(&parts.uri)?.accepts_incomplete().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(text: &str) -> QueryParams {
        let uri: Uri = format!("/v2/x?{text}").parse().expect("uri");
        QueryParams::of(&uri).expect("query")
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        for text in [
            "accepts_incomplete=true&accepts_incomplete=false",
            "service_id=x&plan_id=p&service_id=y",
            "operation=a&operation=a",
        ] {
            let uri: Uri = format!("/v2/x?{text}").parse().expect("uri");
            assert!(QueryParams::of(&uri).is_err(), "{text}");
        }
    }

    #[test]
    fn accepts_incomplete_is_true_false_or_refused() {
        assert_eq!(query("").accepts_incomplete().ok(), Some(false));
        assert_eq!(
            query("accepts_incomplete=false").accepts_incomplete().ok(),
            Some(false)
        );
        assert_eq!(
            query("accepts_incomplete=true").accepts_incomplete().ok(),
            Some(true)
        );
        assert!(
            query("accepts_incomplete=yes")
                .accepts_incomplete()
                .is_err()
        );
    }

    #[test]
    fn ids_are_required_in_body_order_and_blank_counts_as_missing() {
        let refusal = |body: Value| {
            serde_json::from_value::<ProvisionBody>(body)
                .expect("body")
                .details(None)
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(refusal(json!({})), "service_id is required");
        assert_eq!(
            refusal(json!({"service_id": " "})),
            "service_id must not be empty"
        );
        assert_eq!(
            refusal(json!({"service_id": "s", "plan_id": "p", "organization_guid": "o"})),
            "space_guid is required"
        );
        assert_eq!(
            refusal(
                json!({"service_id": "s", "plan_id": "p", "organization_guid": "o",
                           "space_guid": "g", "context": []})
            ),
            "context must be a JSON object"
        );
        let update: UpdateBody =
            serde_json::from_value(json!({"service_id": "s", "plan_id": ""})).expect("body");
        assert_eq!(
            update.details(None).expect_err("refused").to_string(),
            "plan_id must not be empty"
        );
        assert_eq!(
            query("service_id=s")
                .service_plan()
                .expect_err("refused")
                .to_string(),
            "plan_id is required"
        );
        assert_eq!(
            query("operation=")
                .operation()
                .expect_err("refused")
                .to_string(),
            "operation must not be empty"
        );
        assert_eq!(query("").operation().ok(), Some(None));
    }
}
