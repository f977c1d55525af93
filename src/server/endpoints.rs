//! `endpoints.json` in the data directory: where this process listens, written once
//! both listeners are bound (so a port of 0 can be discovered) and removed on exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub struct EndpointsFile(PathBuf);

impl EndpointsFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("endpoints.json")
    }

    /// Removes a file left by a process that did not exit cleanly.
    pub fn clear_stale(data_dir: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(Self::path(data_dir)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    pub fn write(
        data_dir: &Path,
        control: (&str, SocketAddr),
        events: (&str, SocketAddr),
    ) -> std::io::Result<Self> {
        let path = Self::path(data_dir);
        let ((control_scheme, control), (events_scheme, events)) = (control, events);
        let body = serde_json::json!({
            "control": format!("{control_scheme}://{control}"),
            "events": format!("{events_scheme}://{events}"),
            "pid": std::process::id(),
        });
        // Write then rename, so a reader never sees half a file.
        let partial = data_dir.join("endpoints.json.partial");
        std::fs::write(&partial, body.to_string())?;
        std::fs::rename(&partial, &path)?;
        Ok(Self(path))
    }
}

impl Drop for EndpointsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
