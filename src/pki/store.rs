//! The CA kept in a directory as `connector-ca.crt` and `connector-ca.key`:
//! read when both are there, else made and written. Each file goes to a
//! temporary file that is flushed and renamed into place, so a crash leaves the
//! old file or the whole new one, never half a key; the key goes first, so a
//! certificate on disk always has its key beside it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::authority::{Authority, ca_certificate, ca_key};
use super::error::PkiError;

const CERT_FILE: &str = "connector-ca.crt";
const KEY_FILE: &str = "connector-ca.key";

/// The CN of a CA the broker makes for itself.
const GENERATED_COMMON_NAME: &str = "meshbroker Application Connector CA";

impl Authority {
    /// `dir/connector-ca.crt` and `dir/connector-ca.key`: read when both exist,
    /// else generated and written (the key with mode 0600). A file that is there
    /// but unreadable or not what it should be is an error naming the file.
    pub fn load_or_create(dir: &Path) -> Result<Authority, PkiError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => return load(&cert_path, &key_path),
            (true, false) => tracing::warn!(
                file = %cert_path.display(),
                "the CA certificate has no key beside it: making a new CA, so certificates the old one issued are no longer accepted"
            ),
            // A lone key is what a crash between the two writes leaves.
            (false, _) => {}
        }
        let authority = Authority::generate(GENERATED_COMMON_NAME)?;
        fs::create_dir_all(dir).map_err(|source| PkiError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        write_atomically(&key_path, authority.key_pem().as_bytes(), 0o600)?;
        write_atomically(&cert_path, authority.cert_pem().as_bytes(), 0o644)?;
        tracing::info!(dir = %dir.display(), "generated the Connector's CA");
        Ok(authority)
    }
}

fn exists(path: &Path) -> Result<bool, PkiError> {
    path.try_exists().map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load(cert_path: &Path, key_path: &Path) -> Result<Authority, PkiError> {
    let cert = ca_certificate(&read(cert_path)?).map_err(|error| in_file(cert_path, error))?;
    let key = ca_key(&read(key_path)?).map_err(|error| in_file(key_path, error))?;
    Authority::assemble(cert, key).map_err(|error| in_file(key_path, error))
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn in_file(path: &Path, error: PkiError) -> PkiError {
    PkiError::BadFile {
        path: path.to_path_buf(),
        problem: error.to_string(),
    }
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    replace(path, contents, mode).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `contents` to `.NAME.tmp` beside `path`, created with `mode` and
/// flushed to disk, renames it over `path`, and flushes the directory so the
/// rename itself survives a crash.
fn replace(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let temporary = temporary_beside(path)?;
    // A leftover from a crash may have been made with another mode: start afresh.
    match fs::remove_file(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = options.open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::File::open(dir)?.sync_all()
}

fn temporary_beside(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(".tmp");
    Ok(path.with_file_name(temporary))
}
