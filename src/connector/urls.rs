//! The addresses the Connector hands out, all on the events listener.

use super::error::ConnectorError;
use crate::state::{AppState, Connector};

pub const INFO: &str = crate::controllers::INFO_PATH;
pub const CERTIFICATES: &str = "/v1/applications/certificates";
pub const MANAGEMENT_INFO: &str = "/v1/applications/management/info";
pub const RENEWALS: &str = "/v1/applications/certificates/renewals";
pub const REVOCATIONS: &str = "/v1/applications/certificates/revocations";

/// The Connector, when it is on.
pub fn enabled(state: &AppState) -> Result<&Connector, ConnectorError> {
    state.connector.as_deref().ok_or(ConnectorError::Off)
}

pub fn absolute(connector: &Connector, path: &str) -> String {
    format!("{}{path}", connector.events_url)
}

/// Kyma's legacy events API of the Application, which meshbroker serves.
pub fn events(connector: &Connector, application: &str) -> String {
    absolute(connector, &format!("/{application}/v1/events"))
}
