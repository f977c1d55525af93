//! The admin token and OSB password: taken from the configuration, or generated on
//! first start into files (mode 0600) in the data directory and reused after.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::secrets::{generate_token, sha256_hex};

pub struct Credentials {
    pub admin_token_sha256: String,
    pub osb_username: String,
    pub osb_password_sha256: String,
}

/// Where generated secrets were written, so start-up can say how to authenticate.
pub struct CredentialFiles {
    pub admin_token: Option<PathBuf>,
    pub osb_password: Option<PathBuf>,
}

impl Credentials {
    pub fn load(
        data_dir: &Path,
        admin_token: Option<&str>,
        osb_username: &str,
        osb_password: Option<&str>,
    ) -> std::io::Result<(Self, CredentialFiles)> {
        let (admin, admin_file) =
            configured_or_generated(data_dir, "admin-token", "mbadm_", admin_token)?;
        let (password, password_file) =
            configured_or_generated(data_dir, "osb-password", "", osb_password)?;
        Ok((
            Self {
                admin_token_sha256: sha256_hex(&admin),
                osb_username: osb_username.to_string(),
                osb_password_sha256: sha256_hex(&password),
            },
            CredentialFiles {
                admin_token: admin_file,
                osb_password: password_file,
            },
        ))
    }
}

fn configured_or_generated(
    data_dir: &Path,
    file_name: &str,
    prefix: &str,
    configured: Option<&str>,
) -> std::io::Result<(String, Option<PathBuf>)> {
    if let Some(value) = configured {
        return Ok((value.to_string(), None));
    }
    let path = data_dir.join(file_name);
    match std::fs::read_to_string(&path) {
        Ok(existing) if !existing.trim().is_empty() => {
            // A file an older version (or a person) left readable to others.
            #[cfg(unix)]
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            return Ok((existing.trim().to_string(), Some(path)));
        }
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let secret = generate_token(prefix).map_err(std::io::Error::other)?;
    write_private(&path, &secret)?;
    Ok((secret, Some(path)))
}

fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_reused_on_the_next_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (first, files) = Credentials::load(dir.path(), None, "u", None).expect("generated");
        assert!(files.admin_token.is_some());
        let (second, _) = Credentials::load(dir.path(), None, "u", None).expect("reused");
        assert_eq!(first.admin_token_sha256, second.admin_token_sha256);
        assert_eq!(first.osb_password_sha256, second.osb_password_sha256);
    }

    #[test]
    fn configured_secrets_are_not_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (credentials, files) = Credentials::load(
            dir.path(),
            Some("an-admin-token-of-length"),
            "u",
            Some("a-password-long-enough"),
        )
        .expect("configured");
        assert!(files.admin_token.is_none() && files.osb_password.is_none());
        assert_eq!(
            credentials.admin_token_sha256,
            sha256_hex("an-admin-token-of-length")
        );
        assert!(!dir.path().join("admin-token").exists());
    }
}
