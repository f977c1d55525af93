//! Load: `wrk` at full speed for throughput; an open-loop generator of our own at
//! a fixed rate for latency (it stamps each event with its send time).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::sink::now_nanos;

/// One 1 KiB binary-mode CloudEvent.
pub struct EventRequest {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl EventRequest {
    pub fn new(ty: &str, token: Option<&str>) -> Self {
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
        }
    }
}

pub struct WrkResult {
    pub non_2xx: u64,
}

/// Runs wrk (1 thread, 64 connections) against `url` for `seconds`.
pub fn wrk(dir: &Path, url: &str, request: &EventRequest, seconds: u64) -> WrkResult {
    let mut script = String::from("wrk.method = \"POST\"\n");
    script.push_str(&format!(
        "wrk.body = string.rep(\"x\", {})\n",
        request.body.len()
    ));
    for (name, value) in &request.headers {
        script.push_str(&format!("wrk.headers[\"{name}\"] = \"{value}\"\n"));
    }
    let path = dir.join("event.lua");
    std::fs::write(&path, script).expect("wrk script");
    let output = Command::new("wrk")
        .args(["-t1", "-c64", &format!("-d{seconds}s"), "-s"])
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
        non_2xx: number_after("Non-2xx"),
    }
}

/// Connections the paced generator uses; each sends its share of the rate.
const PACED_CONNECTIONS: usize = 32;

/// Sends `rate` events per second for `seconds`, each stamped `ce-benchsent` as it
/// leaves. Lean on purpose (one hyper connection per worker, no pool), so the
/// generator takes little of the machine from the system under test.
pub async fn open_loop(url: &str, request: &EventRequest, rate: f64, seconds: u64) -> u64 {
    let uri: hyper::Uri = url.parse().expect("a URL");
    let authority = uri.authority().expect("host and port").clone();
    let per_worker = Duration::from_secs_f64(PACED_CONNECTIONS as f64 / rate.max(1.0));
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let body = Bytes::from(request.body.clone());
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..PACED_CONNECTIONS {
        let (uri, authority, body, headers) = (
            uri.clone(),
            authority.clone(),
            body.clone(),
            request.headers.clone(),
        );
        workers.spawn(async move {
            let stream = tokio::net::TcpStream::connect(authority.as_str())
                .await
                .expect("connects");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            // Spread the workers' sends over the interval.
            let start = tokio::time::Instant::now()
                + per_worker.mul_f64(worker as f64 / PACED_CONNECTIONS as f64);
            let mut ticker = tokio::time::interval_at(start, per_worker);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut sent = 0u64;
            while tokio::time::Instant::now() < end {
                ticker.tick().await;
                let mut builder =
                    hyper::Request::post(uri.clone()).header("host", authority.as_str());
                for (name, value) in &headers {
                    builder = builder.header(name, value);
                }
                let request = builder
                    .header("ce-benchsent", now_nanos().to_string())
                    .body(Full::new(body.clone()))
                    .expect("request");
                if let Ok(response) = sender.send_request(request).await {
                    let _ = response.into_body().collect().await;
                }
                sent += 1;
            }
            sent
        });
    }
    let mut sent = 0;
    while let Some(result) = workers.join_next().await {
        sent += result.unwrap_or(0);
    }
    sent
}
