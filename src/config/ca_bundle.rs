//! `--subscriber-ca-bundle`: the extra CAs deliveries over `https://` trust, read
//! and checked once at start-up so a bad bundle stops the server before it serves.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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
    /// The CAs, to be joined with the system's roots.
    pub fn roots(&self) -> &RootCertStore {
        &self.roots
    }

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
        assert_eq!(read.roots().len(), 2);
    }
}
