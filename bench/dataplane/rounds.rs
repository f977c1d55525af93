//! `--only rounds` (not part of a full run): how far one run's medians can be
//! trusted on a shared machine whose speed swings within minutes. A durable
//! and a memory broker — and a third broker to compare with them: with
//! `--against BINARY` one of another build (an older commit), with
//! `--against-args "FLAGS"` one started with these flags (of this build, or of
//! BINARY when both are given) — take turns with nginx for `--rounds N`
//! rounds of one window each. Every round's rates and each broker's CPU an
//! event are printed; the table gets each broker's ratio to nginx in the same
//! round as a median with quartiles.

use super::load::{EventRequest, wrk};
use super::mesh::{bench_mesh, settle};
use super::processes::{
    Meshbroker, Process, start_meshbroker, start_meshbroker_from, start_nginx, start_sink,
};
use super::{loaded_window, quantile};
use std::path::{Path, PathBuf};

struct Target<'a> {
    name: String,
    url: String,
    request: EventRequest,
    process: &'a Process,
}

/// One window once the sink has settled: events delivered per second, and
/// the target's CPU an event.
async fn window(dir: &Path, target: &Target<'_>, sink: u16) -> (f64, f64) {
    settle(&[sink]).await;
    let cpu_before = target.process.cpu();
    let window = loaded_window(dir, &target.url, &target.request, sink).await;
    let cpu = target.process.cpu().saturating_sub(cpu_before);
    (
        window.rate,
        cpu.as_secs_f64() * 1e6 / window.delivered.max(1) as f64,
    )
}

pub async fn run(
    work: &Path,
    nginx: &str,
    rounds: usize,
    against: &Against,
) -> Vec<(String, String, String)> {
    let (_sink, sink_port) = start_sink();
    let sink_url = format!("http://127.0.0.1:{sink_port}/");
    let mut brokers: Vec<(String, Meshbroker)> = vec![
        (
            "durable".into(),
            start_meshbroker(&work.join("durable"), &["--delivery", "durable"]),
        ),
        (
            "memory".into(),
            start_meshbroker(&work.join("memory"), &["--delivery", "memory"]),
        ),
    ];
    if against.binary.is_some() || !against.args.is_empty() {
        let (binary, build) = match &against.binary {
            Some(binary) => (binary.clone(), binary.display().to_string()),
            None => (
                PathBuf::from(env!("CARGO_BIN_EXE_meshbroker")),
                "this build".to_string(),
            ),
        };
        let args: Vec<&str> = against.args.iter().map(String::as_str).collect();
        let broker = start_meshbroker_from(&binary, &work.join("against"), &args);
        let flags = if args.is_empty() {
            "its default".to_string()
        } else {
            args.join(" ")
        };
        brokers.push((format!("{build} ({flags})"), broker));
    }
    let mut targets = Vec::new();
    for (name, broker) in &brokers {
        let (url, request) = bench_mesh(broker, &sink_url, false).await;
        targets.push(Target {
            name: name.clone(),
            url,
            request,
            process: &broker.process,
        });
    }
    let nginx_dir = work.join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("dir");
    let (nginx_process, nginx_port) = start_nginx(nginx, &nginx_dir, sink_port);
    targets.push(Target {
        name: "nginx".into(),
        url: format!("http://127.0.0.1:{nginx_port}/"),
        request: EventRequest::new("bench.event", None),
        process: &nginx_process,
    });
    for target in &targets {
        wrk(work, &target.url, &target.request, 2);
    }
    let brokers_count = targets.len() - 1;
    let mut ratios = vec![Vec::new(); brokers_count];
    let mut cpus = vec![Vec::new(); brokers_count];
    for round in 1..=rounds {
        let mut measured = Vec::new();
        for target in &targets {
            measured.push(window(work, target, sink_port).await);
        }
        let nginx_rate = measured[brokers_count].0;
        let line: Vec<String> = targets
            .iter()
            .zip(&measured)
            .map(|(t, (rate, cpu))| format!("{} {rate:.0}/s {cpu:.0} µs", t.name))
            .collect();
        println!("  round {round}: {}", line.join(", "));
        for (i, (rate, cpu)) in measured[..brokers_count].iter().enumerate() {
            ratios[i].push(rate / nginx_rate);
            cpus[i].push(*cpu);
        }
    }
    let mut rows = Vec::new();
    for ((target, mut ratios), mut cpus) in targets.iter().zip(ratios).zip(cpus) {
        ratios.sort_by(f64::total_cmp);
        cpus.sort_by(f64::total_cmp);
        rows.push((
            format!(
                "7. {} / nginx in the same round, {rounds} rounds",
                target.name
            ),
            format!("median {:.2}", quantile(&ratios, 0.5)),
            format!(
                "quartiles {:.2}–{:.2}, range {:.2}–{:.2}; broker CPU {:.0} µs an event (median)",
                quantile(&ratios, 0.25),
                quantile(&ratios, 0.75),
                ratios[0],
                ratios[ratios.len() - 1],
                quantile(&cpus, 0.5)
            ),
        ));
    }
    rows
}

/// The third broker the rounds compare: another build, other flags, or both.
pub struct Against {
    pub binary: Option<PathBuf>,
    pub args: Vec<String>,
}

/// Parsed from `--rounds N` (15 by default), `--against BINARY` and
/// `--against-args "FLAGS"`.
pub fn from_args(args: &[String]) -> (usize, Against) {
    let value = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone());
    let rounds = value("--rounds").and_then(|n| n.parse().ok()).unwrap_or(15);
    let against = Against {
        binary: value("--against").map(PathBuf::from),
        args: value("--against-args")
            .map(|flags| flags.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    };
    (rounds, against)
}
