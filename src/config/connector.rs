//! The Application Connector's settings and the events listener's TLS: what
//! the client certificates say and how long they and the one-time tokens last,
//! where the CA comes from, and which certificate the listener shows.

use std::path::PathBuf;
use std::time::Duration;

use crate::pki::Subject;

#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    /// An existing CA (PEM certificate and key) instead of the generated one.
    pub ca_files: Option<(PathBuf, PathBuf)>,
    /// With `--store kube`: the Secret holding the CA, as (namespace, name).
    pub ca_secret: (String, String),
    /// How long a TokenRequest's tokens work (Kyma: 5 minutes).
    pub token_ttl: Duration,
    /// How long an issued client certificate is valid (Kyma: 92 days).
    pub certificate_validity: Duration,
    /// The subject every client certificate carries, but for its CN (the
    /// Application's name).
    pub subject: Subject,
}

/// The events listener serves TLS.
#[derive(Debug, Clone)]
pub struct EventsTls {
    pub certificate: ServerCertificate,
    /// Applications must send with a client certificate; their bearer tokens
    /// no longer open their ingress.
    pub require_client_certificate: bool,
}

#[derive(Debug, Clone)]
pub enum ServerCertificate {
    /// PEM certificate chain and key from files.
    Files { cert: PathBuf, key: PathBuf },
    /// Issued by meshbroker's CA at start for these host names and addresses.
    Issued { hosts: Vec<String> },
}

/// `namespace/name`, as Kyma's `caSecretName` is written.
pub fn parse_secret_name(written: &str) -> Result<(String, String), String> {
    let (namespace, name) = written
        .split_once('/')
        .ok_or_else(|| format!("{written:?} is not namespace/name"))?;
    for part in [namespace, name] {
        if !crate::resources::is_valid_name(part) {
            return Err(format!("{part:?} is not a Kubernetes name"));
        }
    }
    Ok((namespace.to_string(), name.to_string()))
}

/// In the pod's own namespace, where meshbroker's Role grants it.
pub fn default_secret_name() -> (String, String) {
    let namespace = std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "meshbroker-system".into());
    (namespace, "meshbroker-connector-ca".into())
}

/// Kyma's default subject, so a client written for Kyma's defaults needs no change.
pub const DEFAULT_SUBJECT: &str = "OU=OrgUnit,O=Organization,L=Waldorf,ST=Waldorf,C=DE";

/// `OU=…,O=…,L=…,ST=…,C=…` (any order, each at most once; no CN: that is the
/// Application's).
pub fn parse_subject(text: &str) -> Result<Subject, String> {
    let mut subject = Subject {
        common_name: String::new(),
        organization: None,
        organizational_unit: None,
        locality: None,
        province: None,
        country: None,
    };
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not KEY=value"))?;
        let value = value.trim();
        if value.is_empty() || value.len() > 64 {
            return Err(format!("{key}: must be 1 to 64 characters"));
        }
        let slot = match key.trim() {
            "O" => &mut subject.organization,
            "OU" => &mut subject.organizational_unit,
            "L" => &mut subject.locality,
            "ST" => &mut subject.province,
            "C" => &mut subject.country,
            "CN" => return Err("CN is the Application's name; leave it out".into()),
            other => return Err(format!("{other:?} is not one of O, OU, L, ST, C")),
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(format!("{key} is given twice"));
        }
    }
    Ok(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kyma_subjects_read_and_mistakes_are_named() {
        let subject = parse_subject(DEFAULT_SUBJECT).expect("Kyma's default");
        assert_eq!(subject.organizational_unit.as_deref(), Some("OrgUnit"));
        assert_eq!(subject.country.as_deref(), Some("DE"));
        assert!(parse_subject("O=a,CN=b").unwrap_err().contains("CN"));
        assert!(parse_subject("O=a,O=b").unwrap_err().contains("twice"));
        assert!(parse_subject("X=a").unwrap_err().contains("X"));
        assert!(parse_subject("O").is_err());
    }

    #[test]
    fn secret_names_are_namespace_slash_name() {
        assert_eq!(
            parse_secret_name("kyma-integration/ca").expect("valid"),
            ("kyma-integration".to_string(), "ca".to_string())
        );
        assert!(parse_secret_name("ca").is_err());
        assert!(parse_secret_name("a/B_c").is_err());
    }
}
