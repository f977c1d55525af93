//! `--only rounds` (not part of a full run): how far one run's medians can be
//! trusted on a shared machine whose speed swings within minutes. This
//! build's brokers — and a third broker to compare with them: with
//! `--against BINARY` one of another build (an older commit), with
//! `--against-args "FLAGS"` one started with these flags (of this build, or of
//! BINARY when both are given) — take turns with nginx for `--rounds N`
//! rounds of one window each. Every round's rates and each broker's CPU an
//! event are printed; the table gets each broker's ratio to nginx in the same
//! round as a median with quartiles. `--modes LIST` picks this build's
//! delivery modes (`durable,memory` by default); a JetStream broker gets a
//! nats-server of its own. `--paced RATE` makes each window one of the paced
//! generator at that rate, and the table each target's latency.

use super::load::{EventRequest, wrk};
use super::mesh::{bench_mesh, settle};
use super::processes::{
    Meshbroker, Nats, start_meshbroker_from, start_nats, start_nginx, start_sink,
};
use super::{Latency, PacedTarget, loaded_window, paced_window, quantile};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Target<'a> {
    name: String,
    url: String,
    request: EventRequest,
    /// CPU time of whatever serves the target (a JetStream broker's
    /// nats-server included).
    cpu: Box<dyn Fn() -> Duration + 'a>,
}

/// A broker in the rounds, with the nats-server of its own when it delivers
/// through JetStream.
struct Broker {
    name: String,
    broker: Meshbroker,
    nats: Option<Nats>,
}

/// Starts `binary` with `flags`; a JetStream broker without `--nats-url` gets
/// a nats-server of its own, so two builds never share streams.
fn start_broker(work: &Path, name: &str, binary: &Path, flags: &[String]) -> Broker {
    let dir = work.join(name.replace(['/', ' ', '(', ')'], "_"));
    let mut args: Vec<String> = flags.to_vec();
    let nats = (flags.iter().any(|f| f == "jetstream") && !flags.iter().any(|f| f == "--nats-url"))
        .then(|| start_nats(&dir.join("nats")));
    if let Some(nats) = &nats {
        args.extend(["--nats-url".to_string(), nats.url.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Broker {
        name: name.to_string(),
        broker: start_meshbroker_from(binary, &dir.join("data"), &args),
        nats,
    }
}

/// What one round measured of a target: a throughput window (events
/// delivered per second) or, paced, a latency window; and its CPU an event.
#[derive(Clone, Copy)]
enum Measured {
    Rate(f64, f64),
    Paced(Latency),
}

/// One window once the sink has settled.
async fn window(dir: &Path, target: &Target<'_>, sink: u16, paced: Option<f64>) -> Measured {
    if let Some(rate) = paced {
        let cpu: &dyn Fn() -> Duration = &target.cpu;
        let paced_target: PacedTarget<'_> = (&target.url, &target.request, cpu);
        return Measured::Paced(paced_window(&paced_target, rate, sink, &[sink]).await);
    }
    settle(&[sink]).await;
    let cpu_before = (target.cpu)();
    let window = loaded_window(dir, &target.url, &target.request, sink).await;
    let cpu = (target.cpu)().saturating_sub(cpu_before);
    Measured::Rate(
        window.rate,
        cpu.as_secs_f64() * 1e6 / window.delivered.max(1) as f64,
    )
}

pub async fn run(work: &Path, nginx: &str, options: &Options) -> Vec<(String, String, String)> {
    let (_sink, sink_port) = start_sink();
    let sink_url = format!("http://127.0.0.1:{sink_port}/");
    let this_build = PathBuf::from(env!("CARGO_BIN_EXE_meshbroker"));
    let mut brokers: Vec<Broker> = options
        .modes
        .iter()
        .map(|mode| {
            let flags = ["--delivery".to_string(), mode.clone()];
            start_broker(work, mode, &this_build, &flags)
        })
        .collect();
    let against = &options.against;
    if against.binary.is_some() || !against.args.is_empty() {
        let (binary, build) = match &against.binary {
            Some(binary) => (binary.clone(), binary.display().to_string()),
            None => (this_build.clone(), "this build".to_string()),
        };
        let flags = if against.args.is_empty() {
            "its default".to_string()
        } else {
            against.args.join(" ")
        };
        let name = format!("{build} ({flags})");
        brokers.push(start_broker(work, &name, &binary, &against.args));
    }
    // JetStream stores a repeated source + id once: with a JetStream broker in
    // the rounds, every target gets ids of their own, the same load for all.
    let unique = brokers.iter().any(|b| b.nats.is_some());
    let nginx_dir = work.join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("dir");
    let (nginx_process, nginx_port) = start_nginx(nginx, &nginx_dir, sink_port);
    let mut targets = Vec::new();
    for Broker { name, broker, nats } in &brokers {
        let (url, request) = bench_mesh(broker, &sink_url, unique).await;
        targets.push(Target {
            name: name.clone(),
            url,
            request,
            cpu: Box::new(move || {
                broker.process.cpu() + nats.as_ref().map_or(Duration::ZERO, Nats::cpu)
            }),
        });
    }
    targets.push(Target {
        name: "nginx".into(),
        url: format!("http://127.0.0.1:{nginx_port}/"),
        request: if unique {
            EventRequest::unique("bench.event", None)
        } else {
            EventRequest::new("bench.event", None)
        },
        cpu: Box::new(|| nginx_process.cpu()),
    });
    for target in &targets {
        wrk(work, &target.url, &target.request, 2);
    }
    let mut measured = vec![Vec::new(); targets.len()];
    for round in 1..=options.rounds {
        let mut line = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let window = window(work, target, sink_port, options.paced).await;
            line.push(match &window {
                Measured::Rate(rate, cpu) => format!("{} {rate:.0}/s {cpu:.0} µs", target.name),
                Measured::Paced(l) => format!(
                    "{} p50 {:.2} p99 {:.2} ms {:.0} µs",
                    target.name, l.p50_ms, l.p99_ms, l.cpu_us_per_event
                ),
            });
            measured[i].push(window);
        }
        println!("  round {round}: {}", line.join(", "));
    }
    match options.paced {
        Some(rate) => paced_rows(&targets, &measured, rate),
        None => ratio_rows(&targets, &measured),
    }
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// Each broker's rate as a ratio to nginx's in the same round.
fn ratio_rows(targets: &[Target<'_>], measured: &[Vec<Measured>]) -> Vec<(String, String, String)> {
    let rate_and_cpu = |m: &Measured| match m {
        Measured::Rate(rate, cpu) => (*rate, *cpu),
        Measured::Paced(_) => unreachable!("throughput rounds"),
    };
    let nginx = &measured[targets.len() - 1];
    let rounds = nginx.len();
    targets[..targets.len() - 1]
        .iter()
        .zip(measured)
        .map(|(target, windows)| {
            let ratios = sorted(
                windows
                    .iter()
                    .zip(nginx)
                    .map(|(w, n)| rate_and_cpu(w).0 / rate_and_cpu(n).0)
                    .collect(),
            );
            let cpus = sorted(windows.iter().map(|w| rate_and_cpu(w).1).collect());
            (
                format!("7. {} / nginx in the same round, {rounds} rounds", target.name),
                format!("median {:.2}", quantile(&ratios, 0.5)),
                format!(
                    "quartiles {:.2}–{:.2}, range {:.2}–{:.2}; broker CPU {:.0} µs an event (median)",
                    quantile(&ratios, 0.25),
                    quantile(&ratios, 0.75),
                    ratios[0],
                    ratios[ratios.len() - 1],
                    quantile(&cpus, 0.5)
                ),
            )
        })
        .collect()
}

/// Each target's latency at the paced rate, nginx's included.
fn paced_rows(
    targets: &[Target<'_>],
    measured: &[Vec<Measured>],
    rate: f64,
) -> Vec<(String, String, String)> {
    targets
        .iter()
        .zip(measured)
        .map(|(target, windows)| {
            let latencies: Vec<Latency> = windows
                .iter()
                .map(|m| match m {
                    Measured::Paced(latency) => *latency,
                    Measured::Rate(..) => unreachable!("paced rounds"),
                })
                .collect();
            let p99s = sorted(latencies.iter().map(|l| l.p99_ms).collect());
            let p50s = sorted(latencies.iter().map(|l| l.p50_ms).collect());
            let cpus = sorted(latencies.iter().map(|l| l.cpu_us_per_event).collect());
            (
                format!(
                    "7. {} at {rate:.0} events/s, {} rounds",
                    target.name,
                    windows.len()
                ),
                format!("p99 median {:.2} ms", quantile(&p99s, 0.5)),
                format!(
                    "p99 quartiles {:.2}–{:.2}; p50 median {:.2} ms; CPU {:.0} µs an event (median)",
                    quantile(&p99s, 0.25),
                    quantile(&p99s, 0.75),
                    quantile(&p50s, 0.5),
                    quantile(&cpus, 0.5)
                ),
            )
        })
        .collect()
}

/// The third broker the rounds compare: another build, other flags, or both.
pub struct Against {
    pub binary: Option<PathBuf>,
    pub args: Vec<String>,
}

/// What `--only rounds` runs.
pub struct Options {
    pub rounds: usize,
    /// This build's delivery modes in the rounds.
    pub modes: Vec<String>,
    /// Paced latency windows at this rate instead of wrk's throughput windows.
    pub paced: Option<f64>,
    pub against: Against,
}

/// Parsed from `--rounds N` (15 by default), `--modes LIST` (comma-separated,
/// `durable,memory` by default), `--paced RATE`, `--against BINARY` and
/// `--against-args "FLAGS"`.
pub fn from_args(args: &[String]) -> Options {
    let value = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    Options {
        rounds: value("--rounds").and_then(|n| n.parse().ok()).unwrap_or(15),
        modes: value("--modes")
            .unwrap_or_else(|| "durable,memory".to_string())
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        paced: value("--paced").and_then(|r| r.parse().ok()),
        against: Against {
            binary: value("--against").map(PathBuf::from),
            args: value("--against-args")
                .map(|flags| flags.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        },
    }
}
