//! The events listener runs on a Tokio runtime of its own, beside the one
//! that delivers. On one runtime, the listener's connections (hundreds, each
//! a task) and the deliveries shared the same workers and I/O driver: under
//! wrk's 256 connections the broker accepted events faster than it delivered
//! them, a backlog grew, and every event cost more CPU. With ingress apart
//! (measured 2026-12-04, durable and memory brokers of both builds taking
//! turns under wrk, 8 s windows): durable 17.5–22.0 thousand events/s
//! delivered at 60–72 µs of broker CPU an event against 12.9–16.7 thousand
//! with a backlog on one runtime, memory 24.0–32.7 thousand at 41–44 µs
//! against 17.0–26.8 thousand at 45–61 µs; one runtime with four workers
//! instead of two (as many threads as both runtimes together) did not do
//! it, 71–103 µs an event durable. Deliveries that an ingress request sets
//! off are spawned on the dataplane's runtime (`DispatchDeps::runtime`).
//!
//! With JetStream delivery an ingress request mostly waits for NATS to
//! acknowledge the publish, and the JetStream client's connection and the
//! pulls run on the main runtime: there half the cores take the listener.
//! Measured 2026-12-05 on 2 cores with nats-server beside it
//! (`bench/run.sh --only rounds --modes jetstream --against` a build with
//! one ingress worker): at a paced 6,500 events/s p99 10.14 against 12.03 ms
//! and p50 1.02 against 1.58 ms (4 rounds, medians), under wrk 15,143–16,451
//! against 12,649–15,835 events/s at 95 against 99 µs of CPU an event.

use tokio::runtime::{Builder, Runtime};

use crate::config::DeliveryKind;

/// As many workers as the machine has cores, as the main runtime has; half
/// of them (at least one) with JetStream delivery.
pub fn ingress_runtime(delivery: DeliveryKind) -> std::io::Result<Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = match delivery {
        DeliveryKind::Jetstream => (cores / 2).max(1),
        _ => cores,
    };
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("ingress")
        .enable_all()
        .build()
}
