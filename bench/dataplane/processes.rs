//! Child processes of the benchmark (the broker, sinks, nginx), killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Process(pub Child);

impl Drop for Process {
    /// SIGTERM first, so nginx's master takes its workers down with it; SIGKILL
    /// if that takes too long.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// CPU time this process and its children (nginx's workers) have used.
    pub fn cpu(&self) -> Duration {
        cpu_of(self.pid())
    }

    /// Starts the peak of `memory_mib` afresh from the current resident memory
    /// (`clear_refs`, "5": reset the peak RSS).
    pub fn reset_peak_memory(&self) {
        if let Err(error) = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5") {
            eprintln!("cannot reset the peak RSS ({error}): the peaks that follow are since start");
        }
    }

    /// Peak (since start or `reset_peak_memory`) and current resident memory,
    /// in MiB, from /proc.
    pub fn memory_mib(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

/// Starts a sink (this program with `--sink`) and returns it with its port.
pub fn start_sink() -> (Process, u16) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--sink")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sink starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("sink reports its port");
    let port = line
        .trim()
        .trim_start_matches("listening ")
        .parse()
        .expect("a port");
    (Process(child), port)
}

pub struct Meshbroker {
    pub process: Process,
    pub control: String,
    pub events: String,
    pub admin_token: String,
    pub osb_password: String,
}

pub fn start_meshbroker(dir: &Path, extra: &[&str]) -> Meshbroker {
    start_meshbroker_from(Path::new(env!("CARGO_BIN_EXE_meshbroker")), dir, extra)
}

/// A broker from another build (an older commit, for a side-by-side comparison).
pub fn start_meshbroker_from(binary: &Path, dir: &Path, extra: &[&str]) -> Meshbroker {
    std::fs::create_dir_all(dir).expect("data dir");
    let child = Command::new(binary)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--control-addr",
            "127.0.0.1:0",
            "--events-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("meshbroker starts");
    let endpoints = dir.join("endpoints.json");
    let started = Instant::now();
    let written: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(&endpoints)
            && let Ok(value) = serde_json::from_str(&text)
        {
            break value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "meshbroker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    Meshbroker {
        process: Process(child),
        control: written["control"].as_str().unwrap_or_default().to_string(),
        events: written["events"].as_str().unwrap_or_default().to_string(),
        admin_token: read("admin-token"),
        osb_password: read("osb-password"),
    }
}

/// nginx as a plain reverse proxy with pooled keep-alive connections to the sink.
pub fn start_nginx(nginx: &str, dir: &Path, sink_port: u16) -> (Process, u16) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let config = format!(
        "worker_processes auto;\ndaemon off;\nerror_log {dir}/nginx-error.log warn;\npid {dir}/nginx.pid;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
           upstream sink {{ server 127.0.0.1:{sink_port}; keepalive 256; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://sink;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).expect("nginx config");
    let child = Command::new(nginx)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (Process(child), port)
}

const NATS_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nats-server.sh");

/// A nats-server with JetStream (scripts/nats-server.sh), stopped on drop.
pub struct Nats {
    dir: std::path::PathBuf,
    pub url: String,
}

impl Nats {
    /// CPU time nats-server has used (its pid is in the directory's `env`).
    pub fn cpu(&self) -> Duration {
        std::fs::read_to_string(self.dir.join("env"))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("NATS_PID="))
            .and_then(|pid| pid.trim().parse().ok())
            .map_or(Duration::ZERO, cpu_of)
    }
}

/// CPU time of `pid` and of its direct children.
fn cpu_of(pid: u32) -> Duration {
    let pid = pid.to_string();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .map(crate::cpu_time::of)
        .sum::<Duration>()
        + crate::cpu_time::of(&pid)
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = Command::new(NATS_SCRIPT)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// Starts a nats-server on this machine's cores, its store in `dir`.
pub fn start_nats(dir: &Path) -> Nats {
    let output = Command::new(NATS_SCRIPT)
        .arg("start")
        .arg(dir)
        .output()
        .expect("scripts/nats-server.sh runs");
    assert!(
        output.status.success(),
        "nats-server did not start: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Nats {
        dir: dir.to_path_buf(),
        url: String::from_utf8_lossy(&output.stdout).trim().to_string(),
    }
}
