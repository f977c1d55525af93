//! Files only meshbroker's user may read.

use std::path::Path;

/// Makes `path` (created if missing) and its SQLite companions (`-wal`,
/// `-shm`) readable by this user only. SQLite creates those with the
/// database file's permissions, so making that file 0600 before SQLite
/// creates it covers them; a file an older version created 0644 is
/// corrected too.
pub fn private_database(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}
