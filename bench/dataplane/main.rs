//! The dataplane benchmark (`bench/run.sh`, or `cargo bench --bench dataplane`):
//! throughput of durable, memory and JetStream delivery (with a nats-server on
//! the same cores) against nginx as a plain reverse proxy (the durable
//! broker's fsyncs too), ingress-to-sink latency and CPU per event at half
//! each mode's maximum rate, Trigger scaling, namespace isolation under a failing
//! subscriber, and peak memory under overload. Prints a table. `--only readiness`
//! (not part of a full run) times a 10,000-Trigger mesh becoming Ready;
//! `--only rounds [--rounds N] [--modes LIST] [--paced RATE] [--against BINARY]
//! [--against-args "FLAGS"]` shows how the ratios, or the latencies at one rate,
//! spread over many rounds (see rounds.rs).

#[path = "../cpu_time.rs"]
mod cpu_time;
mod load;
mod mesh;
mod processes;
mod rounds;
mod sink;

use std::time::{Duration, Instant};

use load::{EventRequest, open_loop, wrk};
use mesh::{Api, bench_mesh, settle, sink_post, sink_stats};
use processes::{start_meshbroker, start_nats, start_nginx, start_sink};

/// Seconds of load per measurement window, after a warm-up of `WARM_UP`.
const SECONDS: u64 = 5;
const WARM_UP: u64 = 8;
/// Windows per throughput figure; the median is reported.
const ROUNDS: usize = 3;

fn count(stats: &serde_json::Value) -> u64 {
    stats["count"].as_u64().unwrap_or(0)
}

/// One window of wrk against a target, as the sink saw it.
struct Window {
    /// The sink's count when the window began.
    counted_before: u64,
    /// Events the sink got per second while wrk ran.
    rate: f64,
    delivered: u64,
    seconds: f64,
    result: load::WrkResult,
}

/// One window of wrk against `url`.
async fn loaded_window(
    dir: &std::path::Path,
    url: &str,
    request: &EventRequest,
    sink: u16,
) -> Window {
    let counted_before = count(&sink_stats(sink).await);
    let started = Instant::now();
    let result = wrk(dir, url, request, SECONDS);
    let delivered = count(&sink_stats(sink).await) - counted_before;
    let seconds = started.elapsed().as_secs_f64();
    Window {
        counted_before,
        rate: delivered as f64 / seconds,
        delivered,
        seconds,
        result,
    }
}

/// The value at quantile `q` of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    quantile(&values, 0.5)
}

/// What the throughput windows of one target measured (medians of `ROUNDS`).
struct Throughput {
    /// Events delivered per second while wrk loaded it.
    rate: f64,
    /// Requests refused (not 2xx) over all windows.
    refused: u64,
    /// Events delivered from the window's start until the sink settled, per
    /// second of the window and the drain after it: what a broker that
    /// accepts faster than it delivers (JetStream's ingress under
    /// saturation) completes, where `rate` counts only the window.
    completed: f64,
}

/// Events delivered to the sink per second while wrk loads each target: the
/// median of `ROUNDS` windows per target after a warm-up. The targets take turns
/// window by window, so drift in this shared machine's speed hits them alike;
/// each window starts once the `quiet` sinks have settled, and is followed by
/// the drain of what it left queued.
async fn delivered_per_second(
    dir: &std::path::Path,
    targets: &[(&str, &EventRequest)],
    sink: u16,
    quiet: &[u16],
) -> Vec<Throughput> {
    for (url, request) in targets {
        wrk(dir, url, request, WARM_UP);
    }
    let mut rates = vec![Vec::new(); targets.len()];
    let mut completions = vec![Vec::new(); targets.len()];
    let mut refused = vec![0u64; targets.len()];
    for _ in 0..ROUNDS {
        for (i, (url, request)) in targets.iter().enumerate() {
            report_backlog(settle(quiet).await);
            let window = loaded_window(dir, url, request, sink).await;
            let drained_in = settle(quiet).await;
            let completed = count(&sink_stats(sink).await) - window.counted_before;
            rates[i].push(window.rate);
            completions[i].push(completed as f64 / (window.seconds + drained_in.as_secs_f64()));
            refused[i] += window.result.non_2xx;
        }
    }
    rates
        .into_iter()
        .zip(completions)
        .zip(refused)
        .map(|((rates, completions), refused)| {
            let listed = |values: &[f64]| {
                values
                    .iter()
                    .map(|r| format!("{r:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "  rounds: {} (completed with the drain: {})",
                listed(&rates),
                listed(&completions)
            );
            Throughput {
                rate: median(rates),
                refused,
                completed: median(completions),
            }
        })
        .collect()
}

/// A throughput row's note on what the target completed with the drain.
fn completed(throughput: &Throughput) -> String {
    format!(
        "{:.0} events/s completed with the drain",
        throughput.completed
    )
}

/// The durable broker's fsyncs per second and events per fsync over one
/// more window of full load, from its `/metrics`.
async fn fsyncs(api: &Api<'_>, dir: &std::path::Path, url: &str, request: &EventRequest) -> String {
    let before = api.metrics().await;
    let started = Instant::now();
    wrk(dir, url, request, SECONDS);
    let seconds = started.elapsed().as_secs_f64();
    let after = api.metrics().await;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let syncs = delta("meshbroker_event_log_fsync_duration_seconds_count");
    let appended = delta("meshbroker_event_log_appended_events_total");
    format!(
        "{:.0} fsyncs/s, {:.1} events/fsync",
        syncs / seconds,
        appended / syncs.max(1.0)
    )
}

/// A sample's value from the Prometheus text format (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// Says how long a backlog took to drain, when there was one.
fn report_backlog(drained_in: Duration) {
    if drained_in > Duration::from_millis(500) {
        println!(
            "  waited {:.1} s for a backlog to drain",
            drained_in.as_secs_f64()
        );
    }
}

/// A target of the paced generator, with the CPU time of whatever serves it.
type PacedTarget<'a> = (&'a str, &'a EventRequest, &'a dyn Fn() -> Duration);

/// Ingress-to-sink latency at a fixed rate, and the CPU each event cost
/// whatever serves the target: a figure the machine's changing speed moves far
/// less than it moves the rates.
#[derive(Clone, Copy)]
struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    cpu_us_per_event: f64,
}

/// One window of the paced generator sending `rate` events per second to
/// the target, started once the `quiet` sinks have settled and read once the
/// window's own events have arrived.
async fn paced_window(
    (url, request, cpu): &PacedTarget<'_>,
    rate: f64,
    sink: u16,
    quiet: &[u16],
) -> Latency {
    report_backlog(settle(quiet).await);
    sink_post(sink, "/_reset", "").await;
    let cpu_before = cpu();
    open_loop(url, request, rate, SECONDS).await;
    settle(&[sink]).await;
    let cpu_used = cpu().saturating_sub(cpu_before);
    let stats = sink_stats(sink).await;
    let ms = |key: &str| stats[key].as_f64().unwrap_or(f64::NAN) / 1000.0;
    Latency {
        p50_ms: ms("p50_us"),
        p99_ms: ms("p99_us"),
        // Every paced event carries the stamp, so the samples are the
        // window's events (the sink's count runs on across windows).
        cpu_us_per_event: cpu_used.as_secs_f64() * 1e6
            / stats["samples"].as_u64().unwrap_or(0).max(1) as f64,
    }
}

/// The medians of `ROUNDS` windows per target, each target in turn sent
/// `rate` events per second; each window starts once the `quiet` sinks have
/// settled, and ends once the window's own events have arrived.
async fn latencies(
    targets: &[PacedTarget<'_>],
    rate: f64,
    sink: u16,
    quiet: &[u16],
) -> Vec<Latency> {
    let mut windows = vec![Vec::new(); targets.len()];
    for _ in 0..ROUNDS {
        for (i, target) in targets.iter().enumerate() {
            windows[i].push(paced_window(target, rate, sink, quiet).await);
        }
    }
    windows
        .into_iter()
        .map(|windows| {
            let p99s: Vec<f64> = windows.iter().map(|w| w.p99_ms).collect();
            println!("  p99 per window: {p99s:.2?} ms");
            Latency {
                p50_ms: median(windows.iter().map(|w| w.p50_ms).collect()),
                p99_ms: median(p99s),
                cpu_us_per_event: median(windows.iter().map(|w| w.cpu_us_per_event).collect()),
            }
        })
        .collect()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--sink") {
        sink::serve().await;
        return;
    }
    let nginx = args
        .windows(2)
        .find(|w| w[0] == "--nginx")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| "/usr/sbin/nginx".to_string());
    let only: Option<String> = args
        .windows(2)
        .find(|w| w[0] == "--only")
        .map(|w| w[1].clone());
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let work = tempfile::tempdir().expect("temp dir");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    println!("machine: {}", machine());

    // 1–3: one broker per delivery mode, one namespace, Triggers to one sink.
    if wants("throughput") || wants("scaling") {
        let (_sink, sink_port) = start_sink();
        let sink_url = format!("http://127.0.0.1:{sink_port}/");
        let broker = start_meshbroker(&work.path().join("broker"), &["--delivery", "durable"]);
        let api = Api::new(&broker);
        let (ingress, request) = bench_mesh(&broker, &sink_url, false).await;

        if wants("throughput") {
            let memory = start_meshbroker(&work.path().join("memory"), &["--delivery", "memory"]);
            let (memory_ingress, memory_request) = bench_mesh(&memory, &sink_url, false).await;

            let nats_dir = work.path().join("nats");
            let nats = start_nats(&nats_dir);
            let jetstream = start_meshbroker(
                &work.path().join("jetstream"),
                &["--delivery", "jetstream", "--nats-url", &nats.url],
            );
            // JetStream stores a repeated source + id once: every event an id of its own.
            let (jetstream_ingress, jetstream_request) =
                bench_mesh(&jetstream, &sink_url, true).await;

            let nginx_dir = work.path().join("nginx");
            std::fs::create_dir_all(&nginx_dir).expect("dir");
            let (nginx_process, nginx_port) = start_nginx(&nginx, &nginx_dir, sink_port);
            let plain = EventRequest::new("bench.event", None);
            let nginx_url = format!("http://127.0.0.1:{nginx_port}/");
            let targets = [
                (ingress.as_str(), &request),
                (memory_ingress.as_str(), &memory_request),
                (nginx_url.as_str(), &plain),
            ];
            let measured =
                delivered_per_second(work.path(), &targets, sink_port, &[sink_port]).await;
            let [durable, memory_mode, nginx_plain] = &measured[..] else {
                unreachable!("three targets, three rates")
            };
            let (durable_rate, memory_rate, nginx_rate) =
                (durable.rate, memory_mode.rate, nginx_plain.rate);
            println!(
                "durable: {durable_rate:.0}/s, memory: {memory_rate:.0}/s, nginx: {nginx_rate:.0}/s"
            );
            // JetStream against nginx under the same load: every event an id of its own.
            let plain_unique = EventRequest::unique("bench.event", None);
            let targets = [
                (jetstream_ingress.as_str(), &jetstream_request),
                (nginx_url.as_str(), &plain_unique),
            ];
            let measured =
                delivered_per_second(work.path(), &targets, sink_port, &[sink_port]).await;
            let [jetstream_mode, nginx_unique] = &measured[..] else {
                unreachable!("two targets, two rates")
            };
            let (jetstream_rate, nginx_unique_rate) = (jetstream_mode.rate, nginx_unique.rate);
            println!(
                "jetstream: {jetstream_rate:.0}/s, nginx (unique ids): {nginx_unique_rate:.0}/s"
            );
            let syncs = fsyncs(&api, work.path(), &ingress, &request).await;
            rows.push((
                "1. throughput, meshbroker --delivery durable".into(),
                format!("{durable_rate:.0} events/s"),
                format!(
                    "{} refused (429); {syncs}; {}",
                    durable.refused,
                    completed(durable)
                ),
            ));
            rows.push((
                "1. throughput, meshbroker --delivery memory".into(),
                format!("{memory_rate:.0} events/s"),
                format!(
                    "{} refused (429); {}",
                    memory_mode.refused,
                    completed(memory_mode)
                ),
            ));
            rows.push((
                "1. throughput, meshbroker --delivery jetstream (ids of their own)".into(),
                format!("{jetstream_rate:.0} events/s"),
                format!(
                    "{} refused; nats-server on the same cores; {}",
                    jetstream_mode.refused,
                    completed(jetstream_mode)
                ),
            ));
            rows.push((
                "1. throughput, nginx reverse proxy (ids of their own)".into(),
                format!("{nginx_unique_rate:.0} events/s"),
                format!(
                    "wrk's Lua call per request costs the load generator; {}",
                    completed(nginx_unique)
                ),
            ));
            rows.push((
                "1. throughput, nginx reverse proxy".into(),
                format!("{nginx_rate:.0} events/s"),
                completed(nginx_plain),
            ));
            rows.push((
                "1. ratio durable / nginx".into(),
                format!("{:.2}", durable_rate / nginx_rate),
                format!(
                    "target ≥ 0.50; {:.2} completed with the drain",
                    durable.completed / nginx_plain.completed
                ),
            ));
            rows.push((
                "1. ratio memory / nginx".into(),
                format!("{:.2}", memory_rate / nginx_rate),
                format!(
                    "target ≥ 0.77; {:.2} completed with the drain",
                    memory_mode.completed / nginx_plain.completed
                ),
            ));
            rows.push((
                "1. ratio jetstream / nginx".into(),
                format!("{:.2}", jetstream_rate / nginx_unique_rate),
                format!(
                    "target ≥ 0.30; {:.2} completed with the drain",
                    jetstream_mode.completed / nginx_unique.completed
                ),
            ));
            let durable_cpu = || broker.process.cpu();
            let memory_cpu = || memory.process.cpu();
            let jetstream_cpu = || jetstream.process.cpu() + nats.cpu();
            let nginx_cpu = || nginx_process.cpu();
            let modes: [(&str, PacedTarget<'_>, f64); 3] = [
                ("durable", (&ingress, &request, &durable_cpu), durable_rate),
                (
                    "memory",
                    (&memory_ingress, &memory_request, &memory_cpu),
                    memory_rate,
                ),
                (
                    "jetstream",
                    (&jetstream_ingress, &jetstream_request, &jetstream_cpu),
                    jetstream_rate,
                ),
            ];
            for (mode, (url, request, cpu), rate) in modes {
                let half = rate / 2.0;
                // The paced generator gives every event an id of its own.
                let measured = latencies(
                    &[(url, request, cpu), (&nginx_url, &plain, &nginx_cpu)],
                    half,
                    sink_port,
                    &[sink_port],
                )
                .await;
                let (own, proxy) = (measured[0], measured[1]);
                println!(
                    "{mode} at {half:.0}/s: p50 {:.2} ms, p99 {:.2} ms, {:.1} µs CPU an event",
                    own.p50_ms, own.p99_ms, own.cpu_us_per_event
                );
                println!(
                    "nginx at {half:.0}/s: p50 {:.2} ms, p99 {:.2} ms, {:.1} µs CPU an event",
                    proxy.p50_ms, proxy.p99_ms, proxy.cpu_us_per_event
                );
                let target = match mode {
                    "durable" => 5,
                    "jetstream" => 10,
                    _ => 2,
                };
                let whose = if mode == "jetstream" {
                    "broker and nats-server"
                } else {
                    "broker"
                };
                rows.push((
                    format!("2. latency, {mode}, at {half:.0} events/s"),
                    format!("p50 {:.2} ms", own.p50_ms),
                    format!(
                        "p99 {:.2} ms (target ≤ {target} ms); CPU {:.0} µs an event ({whose})",
                        own.p99_ms, own.cpu_us_per_event
                    ),
                ));
                rows.push((
                    format!("2. nginx at {half:.0} events/s"),
                    format!("p50 {:.2} ms", proxy.p50_ms),
                    format!(
                        "p99 {:.2} ms; CPU {:.0} µs an event",
                        proxy.p99_ms, proxy.cpu_us_per_event
                    ),
                ));
            }
        }
        if wants("scaling") {
            let mut one = f64::NAN;
            for (total, label) in [(1usize, "1"), (100, "100"), (10_000, "10,000")] {
                let existing = api
                    .get("/apis/eventing.knative.dev/v1/namespaces/team-a/triggers")
                    .await["items"]
                    .as_array()
                    .map_or(0, Vec::len);
                let (_, ready) = api.add_triggers("team-a", existing, total, &sink_url).await;
                if total > 1 {
                    println!("{total} Triggers ready after {:.0}s", ready.as_secs_f64());
                }
                let rate = delivered_per_second(
                    work.path(),
                    &[(&ingress, &request)],
                    sink_port,
                    &[sink_port],
                )
                .await[0]
                    .rate;
                if total == 1 {
                    one = rate;
                }
                println!("{label} Triggers: {rate:.0} events/s");
                rows.push((
                    format!("3. {label} Trigger(s), one matching"),
                    format!("{rate:.0} events/s"),
                    format!("{:.2} × the 1-Trigger rate", rate / one),
                ));
            }
        }
    }

    // 6 (only with `--only readiness`, as part 3 measures it under way): how long a
    // mesh of 10,000 Triggers takes to become Ready, with no load.
    if only.as_deref() == Some("readiness") {
        let broker_dir = work.path().join("readiness");
        let broker = start_meshbroker(&broker_dir, &[]);
        let api = Api::new(&broker);
        api.register().await;
        api.provision("team-a").await;
        let (created, ready) = api
            .add_triggers("team-a", 0, 10_000, "http://127.0.0.1:9/")
            .await;
        rows.push((
            "6. 10,000 Triggers created (16 requests at a time)".into(),
            format!("{:.1} s", created.as_secs_f64()),
            String::new(),
        ));
        rows.push((
            "6. 10,000 Triggers all Ready".into(),
            format!("{:.1} s", ready.as_secs_f64()),
            format!(
                "{:.1} s after the last was created",
                (ready - created).as_secs_f64()
            ),
        ));
    }

    // 7 (only with `--only rounds`): the spread of the ratios over many rounds.
    if only.as_deref() == Some("rounds") {
        let options = rounds::from_args(&args);
        rows.extend(rounds::run(work.path(), &nginx, &options).await);
    }

    // 4–5: two namespaces from one Application; A's subscriber fails slowly.
    if wants("isolation") {
        let (sink_a, port_a) = start_sink();
        let (_sink_b, port_b) = start_sink();
        let broker_dir = work.path().join("isolation");
        let broker = start_meshbroker(&broker_dir, &[]);
        let api = Api::new(&broker);
        let token = api.register().await;
        for namespace in ["team-a", "team-b"] {
            api.provision(namespace).await;
        }
        api.trigger(
            "team-a",
            "a",
            "bench.event",
            &format!("http://127.0.0.1:{port_a}/"),
        )
        .await;
        api.trigger(
            "team-b",
            "b",
            "bench.event",
            &format!("http://127.0.0.1:{port_b}/"),
        )
        .await;
        api.wait_ready("team-a", 1).await;
        api.wait_ready("team-b", 1).await;
        let ingress = format!("{}/bench/events", broker.events);
        let request = EventRequest::new("bench.event", Some(&token));
        // While A is healthy, A's backlog drains too before each window; once it
        // fails, A's retries are what B must not feel.
        let both = [port_a, port_b];
        let healthy_rate =
            delivered_per_second(work.path(), &[(&ingress, &request)], port_b, &both).await[0].rate;
        let broker_cpu = || broker.process.cpu();
        let p99_of_b = async |quiet: &[u16]| {
            let target: PacedTarget<'_> = (&ingress, &request, &broker_cpu);
            latencies(&[target], healthy_rate / 2.0, port_b, quiet).await[0].p99_ms
        };
        let healthy_p99 = p99_of_b(&both).await;
        sink_post(port_a, "/_fault", "2000").await;
        let faulty_rate =
            delivered_per_second(work.path(), &[(&ingress, &request)], port_b, &[port_b]).await[0]
                .rate;
        let faulty_p99 = p99_of_b(&[port_b]).await;
        println!(
            "isolation: B {healthy_rate:.0}/s p99 {healthy_p99:.2} ms → with A failing {faulty_rate:.0}/s p99 {faulty_p99:.2} ms"
        );
        rows.push((
            "4. namespace B, A healthy".into(),
            format!("{healthy_rate:.0} events/s"),
            format!("p99 {healthy_p99:.2} ms"),
        ));
        rows.push((
            "4. namespace B, A answering 503 after 2 s".into(),
            format!(
                "{faulty_rate:.0} events/s ({:+.0} %)",
                (faulty_rate / healthy_rate - 1.0) * 100.0
            ),
            format!(
                "p99 {faulty_p99:.2} ms ({:+.0} %)",
                (faulty_p99 / healthy_p99 - 1.0) * 100.0
            ),
        ));
        // Sustained overload: both namespaces' subscribers now stall, and
        // events keep being accepted window after window. Bounded: each
        // window's peak is about the first's, however many more came in.
        sink_post(port_b, "/_fault", "2000").await;
        let mut accepted = 0;
        for window in 1..=3 {
            broker.process.reset_peak_memory();
            let (_, before) = broker.process.memory_mib();
            let sent = wrk(work.path(), &ingress, &request, SECONDS);
            accepted += sent.requests.saturating_sub(sent.non_2xx);
            let (peak, now) = broker.process.memory_mib();
            println!(
                "overload window {window}: RSS {before:.0} → peak {peak:.0} MiB, {accepted} events accepted in all"
            );
            rows.push((
                format!("5. memory under sustained overload, window {window}"),
                format!("peak RSS {peak:.0} MiB"),
                format!(
                    "{before:.0} MiB before the window, {now:.0} after; {accepted} events accepted while the subscribers stall"
                ),
            ));
        }
        drop(sink_a);
    }

    println!();
    println!("| measurement | result | notes |");
    println!("|---|---|---|");
    for (what, result, notes) in rows {
        println!("| {what} | {result} | {notes} |");
    }
}
