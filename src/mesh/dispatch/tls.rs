//! Whom deliveries over `https://` trust: the system's roots plus the CAs of
//! `--subscriber-ca-bundle`. Read and checked once at start-up (a bad bundle stops
//! the server), built into one rustls `ClientConfig` every delivery `Session`
//! shares, so TLS session tickets are shared too.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use crate::config::CaBundle;

/// The TLS client configuration every delivery shares.
///
/// Roots come from the system's store through rustls-native-certs rather than a
/// compiled-in list (webpki-roots): it is already in the build through kube, and
/// it honours what operators manage (the image's ca-certificates, a CA added with
/// update-ca-certificates, `SSL_CERT_FILE` / `SSL_CERT_DIR`), so the roots never go
/// stale with the binary.
pub fn client_config(bundle: Option<&CaBundle>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = bundle
        .map(|b| b.roots().clone())
        .unwrap_or_else(RootCertStore::empty);
    let system = rustls_native_certs::load_native_certs();
    for error in &system.errors {
        tracing::warn!(%error, "a system root certificate could not be loaded");
    }
    let (added, ignored) = roots.add_parsable_certificates(system.certs);
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "system root certificates rustls cannot use were skipped"
        );
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted CA: https:// subscribers will fail until --subscriber-ca-bundle names one"
        );
    }
    tracing::debug!(
        system = added,
        bundle = bundle.map_or(0, |b| b.roots().len()),
        "trusted CAs for https:// subscribers"
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Deliveries speak HTTP/1.1 only; saying so lets a server that would pick h2
    // agree on HTTP/1.1, or refuse the handshake plainly.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_joins_the_system_roots() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).expect("CA").pem();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca).expect("write");
        let bundle = CaBundle::read(&path).expect("a bundle");
        assert!(client_config(Some(&bundle)).is_ok());
    }

    #[test]
    fn the_client_config_builds_without_a_bundle() {
        let config = client_config(None).expect("ring serves the default versions");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
