//! Whom deliveries over `https://` trust: the system's roots plus the CAs of
//! `--subscriber-ca-bundle`. Read and checked once at start-up (a bad bundle stops
//! the server), built into one rustls `ClientConfig` every delivery `Session`
//! shares, so TLS session tickets are shared too.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The CAs of a `--subscriber-ca-bundle` file, each checked usable as a trust anchor.
#[derive(Clone)]
pub struct CaBundle {
    path: PathBuf,
    roots: RootCertStore,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CaBundle({}, {} certificates)",
            self.path.display(),
            self.roots.len()
        )
    }
}

impl CaBundle {
    /// Reads the PEM certificates of `path`; the error names what is wrong with it.
    pub fn read(path: &Path) -> Result<Self, String> {
        let named = |problem: String| format!("{}: {problem}", path.display());
        let pem = std::fs::read(path).map_err(|e| named(format!("cannot read it: {e}")))?;
        let mut roots = RootCertStore::empty();
        for (at, certificate) in CertificateDer::pem_slice_iter(&pem).enumerate() {
            let certificate = certificate
                .map_err(|e| named(format!("certificate {} is not valid PEM: {e}", at + 1)))?;
            roots
                .add(certificate)
                .map_err(|e| named(format!("certificate {} is not usable as a CA: {e}", at + 1)))?;
        }
        if roots.is_empty() {
            return Err(named(
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            roots,
        })
    }
}

/// The TLS client configuration every delivery shares.
///
/// Roots come from the system's store through rustls-native-certs rather than a
/// compiled-in list (webpki-roots): it is already in the build through kube, and
/// it honours what operators manage (the image's ca-certificates, a CA added with
/// update-ca-certificates, `SSL_CERT_FILE` / `SSL_CERT_DIR`), so the roots never go
/// stale with the binary.
pub fn client_config(bundle: Option<&CaBundle>) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = bundle
        .map(|b| b.roots.clone())
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
        bundle = bundle.map_or(0, |b| b.roots.len()),
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

    fn bundle(text: &str) -> Result<CaBundle, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).expect("write");
        CaBundle::read(&path)
    }

    #[test]
    fn a_missing_bundle_is_named() {
        let error = CaBundle::read(Path::new("/nonexistent/ca.pem")).expect_err("missing");
        assert!(
            error.starts_with("/nonexistent/ca.pem: cannot read it"),
            "{error}"
        );
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let error = bundle("just text\n").expect_err("no certificate");
        assert!(
            error.ends_with("holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            "{error}"
        );
    }

    #[test]
    fn a_certificate_that_is_not_one_is_refused() {
        let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let error = bundle(garbage).expect_err("not a certificate");
        assert!(
            error.contains("certificate 1 is not usable as a CA"),
            "{error}"
        );
    }

    #[test]
    fn a_bundle_of_ca_certificates_is_read() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).expect("CA").pem();
        let read = bundle(&format!("{ca}{ca}")).expect("a bundle");
        assert_eq!(read.roots.len(), 2);
        assert!(client_config(Some(&read)).is_ok());
    }

    #[test]
    fn the_client_config_builds_without_a_bundle() {
        let config = client_config(None).expect("ring serves the default versions");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
