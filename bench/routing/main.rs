//! The routing-table benchmark (`cargo bench --bench routing [-- --triggers N]`):
//! how long the routing table takes to follow the store with N Triggers on one
//! Broker (10,000 by default). The follower runs as in the server, over an
//! embedded store in a temporary directory; each figure is from a store write to
//! the router reporting it routed (`Router::has_routed`), so it covers reading
//! the change, building and swapping the table.
//!
//! 1. full build: a follower started over the N Triggers, until its first table;
//! 2. spec change of one Trigger (its filter), the median of `ROUNDS`;
//! 3. status-only write of one Trigger (a condition, as the readiness controller
//!    writes it), the median of `ROUNDS`;
//! 4. a storm of `STORM` status-only writes one after the other (what the readiness
//!    controllers do while a large mesh comes up): the time until the last is
//!    routed, how far that is behind the last write, and the CPU time the
//!    process used meanwhile;
//! 5. the `Builder` alone, over the same objects in memory: a first build, a
//!    build after one Trigger's spec changed, and one after nothing did
//!    (medians of `ROUNDS`).
//!
//! Figures 2–4 include the follower's coalescing window (10 ms).

#[path = "../cpu_time.rs"]
mod cpu_time;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use meshbroker::mesh::dispatch::{
    BudgetLimits, DispatchDeps, DispatcherSettings, InFlight, Local, LocalSink, Refusal,
    client_config,
};
use meshbroker::mesh::event::PreparedEvent;
use meshbroker::mesh::routing::{Builder, DataplaneSettings, Inputs, Router, follow_resources};
use meshbroker::resources::{Broker, BrokerSpec, Condition, Trigger};
use meshbroker::shutdown::Shutdown;
use meshbroker::store::{EmbeddedStore, LabelSelector, Store, TypedStore};
use meshbroker::telemetry::Metrics;

/// As the server (src/main.rs): allocation costs as in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NAMESPACE: &str = "team-a";
const ROUNDS: usize = 21;
const STORM: usize = 1_000;

/// No Broker or Channel of ours takes events: nothing is sent here.
struct NoLocals;

impl LocalSink for NoLocals {
    fn hand_over(
        &self,
        _: &Local,
        _: Arc<PreparedEvent>,
    ) -> futures::future::BoxFuture<'static, Result<(), Refusal>> {
        Box::pin(std::future::ready(Err(Refusal::Gone)))
    }
}

fn builder(metrics: &Arc<Metrics>) -> Builder {
    let deps = Arc::new(DispatchDeps {
        local: Arc::new(NoLocals),
        subscriber_tls: client_config(None).expect("the system's roots load"),
        in_flight: InFlight::default(),
        metrics: metrics.clone(),
        taps: Default::default(),
        runtime: tokio::runtime::Handle::current(),
    });
    let settings = DataplaneSettings {
        dispatcher: DispatcherSettings {
            queue_capacity: 64,
            queue_bytes: usize::MAX,
            concurrency: 4,
        },
        namespace_budget: BudgetLimits {
            events: 1024,
            bytes: usize::MAX,
        },
        knative: false,
    };
    Builder::new(settings, deps, "kyma-integration".into())
}

fn trigger(i: usize) -> Trigger {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": format!("other-{i}"), "namespace": NAMESPACE},
        "spec": {"broker": "default", "filter": {"attributes": {"type": format!("bench.other.{i}")}},
                 "subscriber": {"uri": "http://127.0.0.1:9/"}},
        "status": {"subscriberUri": "http://127.0.0.1:9/", "conditions": []}
    }))
    .expect("a Trigger")
}

async fn routed(router: &Router, resource_version: Option<&str>) {
    while !router.has_routed(resource_version) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let triggers: usize = args
        .windows(2)
        .find(|w| w[0] == "--triggers")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("store.db")).expect("store opens");
    let store = TypedStore::new(Arc::new(store) as Arc<dyn Store>);
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(NAMESPACE.into());
    store.create(&namespace).await.expect("namespace");
    let mut broker = Broker::new("default", BrokerSpec::default());
    broker.metadata.namespace = Some(NAMESPACE.into());
    store.create(&broker).await.expect("broker");
    let started = Instant::now();
    for i in 0..triggers {
        store.create(&trigger(i)).await.expect("trigger");
    }
    println!(
        "{triggers} Triggers written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let metrics = Metrics::new();
    let router = Arc::new(Router::new(metrics.clone()));
    let (_down, shutdown) = Shutdown::new();
    let started = Instant::now();
    follow_resources(store.clone(), router.clone(), builder(&metrics), shutdown);
    loop {
        let table = router.table();
        if table
            .broker(NAMESPACE, "default")
            .is_some_and(|route| route.triggers.len() == triggers)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let full = started.elapsed();

    let all = LabelSelector::everything();
    let mut listed: Vec<Trigger> = store.list(Some(NAMESPACE), &all).await.expect("triggers");
    let mut spec_changes = Vec::new();
    for (round, trigger) in listed.iter_mut().enumerate().take(ROUNDS) {
        trigger.spec.filter = Some(
            serde_json::from_value(
                serde_json::json!({"attributes": {"type": format!("bench.changed.{round}")}}),
            )
            .expect("a filter"),
        );
        let started = Instant::now();
        *trigger = store.replace(&*trigger).await.expect("spec change");
        routed(&router, trigger.metadata.resource_version.as_deref()).await;
        spec_changes.push(started.elapsed());
    }

    let mut status_writes = Vec::new();
    for trigger in listed.iter_mut().skip(ROUNDS).take(ROUNDS) {
        let status = trigger.status.get_or_insert_default();
        status.conditions = vec![Condition::met("Ready")];
        let started = Instant::now();
        *trigger = store.replace(&*trigger).await.expect("status write");
        routed(&router, trigger.metadata.resource_version.as_deref()).await;
        status_writes.push(started.elapsed());
    }

    let storm = STORM.min(listed.len().saturating_sub(2 * ROUNDS));
    let cpu_before = cpu_time::of("self");
    let started = Instant::now();
    let mut last = None;
    for trigger in listed.iter_mut().rev().take(storm) {
        let status = trigger.status.get_or_insert_default();
        status.conditions = vec![Condition::met("SubscriptionReady")];
        *trigger = store.replace(&*trigger).await.expect("status write");
        last = trigger.metadata.resource_version.clone();
    }
    let written = started.elapsed();
    routed(&router, last.as_deref()).await;
    let storm_total = started.elapsed();
    let storm_cpu = cpu_time::of("self").saturating_sub(cpu_before);

    let (first_build, spec_build, idle_build) = builder_alone(&store, &metrics).await;

    println!();
    println!("| {triggers} Triggers on one Broker | time |");
    println!("|---|---|");
    println!(
        "| 1. full build (follower start → first table) | {} |",
        ms(full)
    );
    println!(
        "| 2. spec change of one Trigger → routed (median of {ROUNDS}) | {} |",
        ms(median(spec_changes))
    );
    println!(
        "| 3. status-only write of one Trigger → routed (median of {ROUNDS}) | {} |",
        ms(median(status_writes))
    );
    println!(
        "| 4. {storm} status-only writes → last routed | {} ({} after the last write; {} CPU) |",
        ms(storm_total),
        ms(storm_total.saturating_sub(written)),
        ms(storm_cpu)
    );
    println!("| 5. Builder alone: first build | {} |", ms(first_build));
    println!(
        "| 5. Builder alone: build after one Trigger's spec changed | {} |",
        ms(spec_build)
    );
    println!(
        "| 5. Builder alone: build with nothing changed | {} |",
        ms(idle_build)
    );
}

/// The medians of a first build, a build after one spec change, and a build
/// after none, from the store's objects in memory.
async fn builder_alone(
    store: &TypedStore,
    metrics: &Arc<Metrics>,
) -> (Duration, Duration, Duration) {
    let all = LabelSelector::everything();
    let brokers: Vec<Broker> = store.list(None, &all).await.expect("brokers");
    let triggers: Vec<Trigger> = store.list(None, &all).await.expect("triggers");
    let mut inputs = Inputs::default();
    for broker in brokers {
        inputs.put(broker);
    }
    for trigger in triggers.iter().cloned() {
        inputs.put(trigger);
    }
    let (mut first, mut spec, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    for (round, trigger) in triggers.iter().enumerate().take(ROUNDS) {
        let mut builder = builder(metrics);
        let started = Instant::now();
        drop(builder.build(&inputs));
        first.push(started.elapsed());

        let mut changed = trigger.clone();
        changed.metadata.generation = changed.metadata.generation.map(|g| g + 1);
        changed.metadata.resource_version = Some(format!("changed-{round}"));
        inputs.put(changed);
        let started = Instant::now();
        drop(builder.build(&inputs));
        spec.push(started.elapsed());

        let started = Instant::now();
        drop(builder.build(&inputs));
        idle.push(started.elapsed());
    }
    (median(first), median(spec), median(idle))
}
