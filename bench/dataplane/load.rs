//! Load: `wrk` at full speed for throughput; an open-loop generator of our own at
//! a fixed rate for latency (it stamps each event with its send time).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sink::now_nanos;

/// One 1 KiB binary-mode CloudEvent. Under wrk it is sent as it is, or,
/// `unique`, with an id of its own each time: JetStream delivery stores a
/// repeated `source` + `id` once (a sender's retry), and giving each request
/// its id costs wrk a Lua call per request, which on two cores lowers every
/// target's figure, so targets are compared under the same shape only.
pub struct EventRequest {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub unique: bool,
}

impl EventRequest {
    /// Sent with a fixed id by wrk.
    pub fn new(ty: &str, token: Option<&str>) -> Self {
        Self::with_ids(ty, token, false)
    }

    /// Sent with an id of its own each time.
    pub fn unique(ty: &str, token: Option<&str>) -> Self {
        Self::with_ids(ty, token, true)
    }

    fn with_ids(ty: &str, token: Option<&str>, unique: bool) -> Self {
        let mut headers = vec![
            (
                "Content-Type".to_string(),
                "application/octet-stream".to_string(),
            ),
            ("ce-specversion".to_string(), "1.0".to_string()),
            ("ce-id".to_string(), "bench-1".to_string()),
            ("ce-source".to_string(), "/bench".to_string()),
            ("ce-type".to_string(), ty.to_string()),
        ];
        if let Some(token) = token {
            headers.push(("Authorization".to_string(), format!("Bearer {token}")));
        }
        Self {
            headers,
            body: "x".repeat(1024),
            unique,
        }
    }
}

pub struct WrkResult {
    /// Requests answered, whatever the status.
    pub requests: u64,
    pub non_2xx: u64,
}

/// wrk's connections: enough senders that every mode is saturated. With 64,
/// durable delivery — whose 202 waits for the commit that holds the event —
/// was bound by how many events wait for one commit together (12,716–12,942
/// events/s at 64 against 17,140–18,227 at 256 in the same minutes, 2026-12-02)
/// while nginx and memory mode gave the same at both.
const WRK_CONNECTIONS: u32 = 256;

/// Runs wrk (1 thread, `WRK_CONNECTIONS`) against `url` for `seconds`.
pub fn wrk(dir: &Path, url: &str, request: &EventRequest, seconds: u64) -> WrkResult {
    let mut script = String::from("wrk.method = \"POST\"\n");
    script.push_str(&format!(
        "wrk.body = string.rep(\"x\", {})\n",
        request.body.len()
    ));
    for (name, value) in &request.headers {
        script.push_str(&format!("wrk.headers[\"{name}\"] = \"{value}\"\n"));
    }
    if request.unique {
        // Ids unique across runs too: a run's prefix is its start time.
        script.push_str(&format!(
            "local n = 0\nrequest = function()\n  n = n + 1\n  wrk.headers[\"ce-id\"] = \"w{}-\" .. n\n  return wrk.format()\nend\n",
            now_nanos()
        ));
    }
    let path = dir.join("event.lua");
    std::fs::write(&path, script).expect("wrk script");
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{WRK_CONNECTIONS}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&path)
        .arg(url)
        .output()
        .expect("wrk runs (install it: bench/run.sh does)");
    let text = String::from_utf8_lossy(&output.stdout);
    let number_after = |marker: &str| {
        text.lines()
            .find(|l| l.contains(marker))
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse::<u64>().ok()))
            .unwrap_or(0)
    };
    WrkResult {
        requests: number_after("requests in"),
        non_2xx: number_after("Non-2xx"),
    }
}

/// Connections the paced generator uses, each on a thread of its own.
const PACED_CONNECTIONS: u32 = 32;

/// Sends `rate` events per second for `seconds`, each stamped `ce-benchsent` as it
/// leaves; returns how many were answered 2xx.
///
/// Each connection has a thread that sleeps to each of its sends' due times
/// (the connections' schedules interleave evenly), writes the request and reads
/// the answer with plain blocking socket calls. Both choices keep the
/// measurement honest on two shared cores: tokio's timers tick in whole
/// milliseconds, so pacing with them sends bursts of `rate / 1000` events and
/// measures the bursts' queueing; and a generator built on an HTTP client
/// library costs about three times what wrk does per request, CPU taken from the
/// system under test.
pub async fn open_loop(url: &str, request: &EventRequest, rate: f64, seconds: u64) -> u64 {
    let uri: hyper::Uri = url.parse().expect("a URL");
    let authority = uri.authority().expect("host and port").to_string();
    let mut head = format!("POST {} HTTP/1.1\r\nHost: {authority}\r\n", uri.path());
    for (name, value) in request.headers.iter().filter(|(name, _)| name != "ce-id") {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    let request = Arc::new(Paced {
        authority,
        head,
        body: request.body.clone(),
    });
    let every = Duration::from_secs_f64(f64::from(PACED_CONNECTIONS) / rate.max(1.0));
    let sends = (rate * seconds as f64) as u64 / u64::from(PACED_CONNECTIONS);
    let start = Instant::now() + Duration::from_millis(100);
    let threads: Vec<_> = (0..PACED_CONNECTIONS)
        .map(|connection| {
            let first = start + every * connection / PACED_CONNECTIONS;
            let request = request.clone();
            std::thread::spawn(move || request.send_paced(connection, first, every, sends))
        })
        .collect();
    tokio::task::spawn_blocking(move || threads.into_iter().map(|t| t.join().unwrap_or(0)).sum())
        .await
        .expect("generator threads")
}

/// A request rendered once; each send adds only its id and `ce-benchsent` stamp.
struct Paced {
    authority: String,
    /// The request line and headers, without the stamp and the blank line.
    head: String,
    body: String,
}

impl Paced {
    /// `sends` requests on one keep-alive connection, the first at `first`, then
    /// one every `every`; returns how many were answered 2xx.
    fn send_paced(&self, connection: u32, first: Instant, every: Duration, sends: u64) -> u64 {
        let run = now_nanos();
        let mut stream = std::net::TcpStream::connect(&self.authority).expect("connects");
        stream.set_nodelay(true).expect("nodelay");
        let mut out = Vec::with_capacity(self.head.len() + self.body.len() + 64);
        let mut answer = Vec::with_capacity(4096);
        let mut answered = 0;
        for due in (0..sends).map(|k| first + every * k as u32) {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            out.clear();
            out.extend_from_slice(self.head.as_bytes());
            write!(
                out,
                "ce-id: p{run}-{connection}-{}\r\nce-benchsent: {}\r\n\r\n",
                due.duration_since(first).as_nanos(),
                now_nanos()
            )
            .expect("in memory");
            out.extend_from_slice(self.body.as_bytes());
            stream.write_all(&out).expect("sends");
            if read_answer(&mut stream, &mut answer).is_some_and(|s| (200..300).contains(&s)) {
                answered += 1;
            }
        }
        answered
    }
}

/// Reads one HTTP/1.1 answer (headers and a Content-Length body); its status.
fn read_answer(stream: &mut std::net::TcpStream, buffer: &mut Vec<u8>) -> Option<u16> {
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(buffer).ok()? {
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            let status = response.code?;
            let mut rest = (head + length).saturating_sub(buffer.len());
            while rest > 0 {
                rest -= stream.read(&mut chunk).ok().filter(|n| *n > 0)?.min(rest);
            }
            return Some(status);
        }
    }
}
