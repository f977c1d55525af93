//! The benchmark's subscriber, run as its own process (`--sink`): it answers
//! events as fast as it can (or, in fault mode, after a delay with 503), counts
//! them, and records ingress-to-sink latency from the `ce-benchsent` header.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use tokio::sync::Mutex;

#[derive(Default)]
struct Sink {
    count: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    /// 0: answer 200 at once; otherwise wait this long and answer 503.
    fault_delay_ms: AtomicU64,
}

pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

pub async fn serve() {
    let sink = Arc::new(Sink::default());
    let app = Router::new()
        .route("/_stats", get(stats))
        .route("/_reset", post(reset))
        .route("/_fault", post(fault))
        .fallback(receive)
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("sink binds");
    println!(
        "listening {}",
        listener.local_addr().expect("address").port()
    );
    let listener = axum::serve::ListenerExt::tap_io(listener, |io: &mut tokio::net::TcpStream| {
        let _ = io.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("sink serves");
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap) -> StatusCode {
    let delay = sink.fault_delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    sink.count.fetch_add(1, Ordering::Relaxed);
    if let Some(sent) = headers
        .get("ce-benchsent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u128>().ok())
    {
        let micros = now_nanos().saturating_sub(sent) / 1000;
        sink.latencies_us.lock().await.push(micros as u64);
    }
    StatusCode::OK
}

async fn stats(State(sink): State<Arc<Sink>>) -> axum::Json<serde_json::Value> {
    let mut latencies = sink.latencies_us.lock().await.clone();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    axum::Json(serde_json::json!({
        "count": sink.count.load(Ordering::Relaxed),
        "samples": latencies.len(),
        "p50_us": at(0.50),
        "p99_us": at(0.99),
    }))
}

async fn reset(State(sink): State<Arc<Sink>>) -> StatusCode {
    sink.latencies_us.lock().await.clear();
    StatusCode::NO_CONTENT
}

async fn fault(State(sink): State<Arc<Sink>>, body: String) -> StatusCode {
    sink.fault_delay_ms
        .store(body.trim().parse().unwrap_or(0), Ordering::Relaxed);
    StatusCode::NO_CONTENT
}
