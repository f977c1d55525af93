//! Where the Connector's CA comes from: files the operator supplies; else, on
//! a Kubernetes API server, a Secret every replica shares (the first replica
//! to start creates it); else the data directory, generated on first start.

use std::path::Path;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::core::ObjectMeta;

use crate::config::ConnectorSettings;
use crate::pki::Authority;

const CA_COMMON_NAME: &str = "meshbroker Connector CA";

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("the Connector's CA: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("the Connector's CA file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the Connector's CA Secret {secret}: {message}")]
    Secret { secret: String, message: String },
}

pub async fn load(
    settings: &ConnectorSettings,
    data_dir: &Path,
    cluster: Option<kube::Client>,
) -> Result<Authority, AuthorityError> {
    if let Some((cert, key)) = &settings.ca_files {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| AuthorityError::File {
                path: path.display().to_string(),
                source,
            })
        };
        return Ok(Authority::from_pem(&read(cert)?, &read(key)?)?);
    }
    match cluster {
        Some(client) => {
            let (namespace, name) = &settings.ca_secret;
            from_secret(client, namespace, name).await
        }
        None => Ok(Authority::load_or_create(data_dir)?),
    }
}

async fn from_secret(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Authority, AuthorityError> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let failed = |message: String| AuthorityError::Secret {
        secret: format!("{namespace}/{name}"),
        message,
    };
    // Two tries: a replica that loses the race to create it reads the winner's.
    for _ in 0..2 {
        if let Some(secret) = secrets
            .get_opt(name)
            .await
            .map_err(|e| failed(e.to_string()))?
        {
            let field = |name: &str| {
                secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(name))
                    .and_then(|b| String::from_utf8(b.0.clone()).ok())
                    .ok_or_else(|| failed(format!("has no {name}")))
            };
            return Ok(Authority::from_pem(&field("tls.crt")?, &field("tls.key")?)?);
        }
        let authority = Authority::generate(CA_COMMON_NAME)?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(
                [
                    ("tls.crt", authority.cert_pem().to_string()),
                    ("tls.key", authority.key_pem()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
                .collect(),
            ),
            ..Default::default()
        };
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(%namespace, secret = %name, "generated the Connector's CA");
                return Ok(authority);
            }
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(error) => return Err(failed(error.to_string())),
        }
    }
    Err(failed("created and gone again; try again".into()))
}
