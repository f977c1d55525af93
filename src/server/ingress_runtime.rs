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

use tokio::runtime::{Builder, Runtime};

/// As many workers as the machine has cores, as the main runtime has.
pub fn ingress_runtime() -> std::io::Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("ingress")
        .enable_all()
        .build()
}
