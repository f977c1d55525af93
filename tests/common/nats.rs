//! A real nats-server with JetStream per test that asks for one, started by
//! scripts/nats-server.sh on free loopback ports with its store in a
//! temporary directory, and stopped when dropped.

use std::path::Path;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nats-server.sh");

pub struct NatsServer {
    dir: tempfile::TempDir,
    pub url: String,
}

impl NatsServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a directory for nats-server");
        let url = script(&["start", path_str(dir.path())]);
        Self { dir, url }
    }

    /// The monitoring endpoint (`/jsz`, `/healthz`).
    pub fn monitor(&self) -> String {
        let env = std::fs::read_to_string(self.dir.path().join("env")).expect("the server's env");
        env.lines()
            .find_map(|line| line.strip_prefix("NATS_MONITOR="))
            .expect("NATS_MONITOR")
            .to_string()
    }

    /// Stops the server and starts it again on the same port and store.
    pub fn restart(&self) {
        script(&["restart", path_str(self.dir.path())]);
    }

    pub fn stop(&self) {
        script(&["stop", path_str(self.dir.path())]);
    }

    /// Starts a stopped server again on the same port and store.
    pub fn resume(&self) {
        self.restart();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT)
            .args(["stop", path_str(self.dir.path())])
            .output();
    }
}

/// Whether this run's brokers use JetStream delivery (the suite's second run).
pub fn wanted() -> bool {
    std::env::var("MESHBROKER_DELIVERY").as_deref() == Ok("jetstream")
        && std::env::var_os("MESHBROKER_NATS_URL").is_none()
}

fn script(args: &[&str]) -> String {
    let output = Command::new(SCRIPT)
        .args(args)
        .output()
        .expect("scripts/nats-server.sh runs");
    assert!(
        output.status.success(),
        "scripts/nats-server.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
