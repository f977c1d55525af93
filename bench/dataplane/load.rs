//! Load: `wrk` at full speed for throughput; an open-loop generator of our own at
//! a fixed rate for latency (it stamps each event with its send time).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

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
    pub requests: u64,
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
        requests: number_after("requests in"),
        non_2xx: number_after("Non-2xx"),
    }
}

/// Sends `rate` events per second for `seconds`, each stamped `ce-benchsent`.
pub async fn open_loop(url: &str, request: &EventRequest, rate: f64, seconds: u64) -> u64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let request = Arc::new((
        url.to_string(),
        request.headers.clone(),
        request.body.clone(),
    ));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut sent = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while tokio::time::Instant::now() < end {
        ticker.tick().await;
        let client = client.clone();
        let request = request.clone();
        tasks.spawn(async move {
            let (url, headers, body) = &*request;
            let mut builder = client
                .post(url)
                .body(body.clone())
                .header("ce-benchsent", now_nanos().to_string());
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            let _ = builder.send().await;
        });
        sent += 1;
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    sent
}
