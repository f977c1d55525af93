//! Durable delivery (`--delivery durable`, the default): what got a 202 is on
//! disk, survives kill -9 and is delivered (at least once) after a restart; a
//! full disk budget answers 429 and loses nothing; a namespace behind an
//! Application's Channel lags alone; a torn log tail costs only its last
//! commit; a Trigger may replay what the log still holds; a retry schedule
//! goes on across a restart. Each test names its engine itself (`engine`),
//! since the suite also runs with memory delivery; in the suite's JetStream
//! run the tests that are not about the embedded file run on JetStream.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::common::mesh::*;
use crate::common::sink::{Received, Sink};
use crate::common::{Broker, Reply, eventually, within};

/// The engine under test: the embedded log, or JetStream in the suite's
/// JetStream run (`MESHBROKER_DELIVERY=jetstream`, see scripts/test).
fn engine() -> &'static str {
    if crate::common::nats::wanted() {
        "jetstream"
    } else {
        "durable"
    }
}

/// Retries every second: the 100 allowed (100 s) outlast any test.
fn patient(sink: &Sink) -> serde_json::Value {
    json!({"subscriber": {"uri": sink.url},
           "delivery": {"retry": 100, "backoffPolicy": "linear", "backoffDelay": "PT1S"}})
}

/// Event ids the sink took (answered 2xx), with how often.
fn delivered(received: &[Received]) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for request in received.iter().filter(|r| (200..300).contains(&r.status)) {
        if let Some(id) = request.header("ce-id") {
            *ids.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    ids
}

/// Waits until the sink took every one of `ids`; answers the duplicates.
async fn all_delivered(sink: &Sink, ids: &HashSet<String>) -> usize {
    eventually(&format!("{} events delivered", ids.len()), async || {
        let taken = delivered(&sink.received());
        ids.iter()
            .all(|id| taken.contains_key(id))
            .then(|| taken.values().map(|n| n - 1).sum())
    })
    .await
}

/// A small deterministic generator: the kill points differ per run (seeded by
/// the clock, printed) and a failure can be replayed with MESHBROKER_TEST_SEED.
struct Points(u64);

impl Points {
    fn new() -> Self {
        let seed = std::env::var("MESHBROKER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("kill points seeded with MESHBROKER_TEST_SEED={seed}");
        Self(seed | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Four senders posting to the Broker until the process dies; the ids that got
/// a 202 are added to `acked`.
fn burst(
    broker: &Broker,
    token: &str,
    round: usize,
    acked: &Arc<Mutex<HashSet<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|sender| {
            let url = format!("{}/team-a/default", broker.events);
            let token = token.to_string();
            let acked = acked.clone();
            let http = crate::common::http_client();
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("r{round}-s{sender}-{i}");
                    let sent = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("ce-specversion", "1.0")
                        .header("ce-id", &id)
                        .header("ce-source", "/burst")
                        .header("ce-type", "burst")
                        .header("content-type", "application/json")
                        .body(r#"{"n":1}"#)
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 202 => {
                            acked.lock().expect("lock").insert(id);
                        }
                        Ok(response) => panic!("{id}: {}", response.status()),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn every_acknowledged_event_survives_kill_9_at_20_points() {
    let mut broker = Broker::start_with(&["--delivery", engine()]).await;
    provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[503], "down");
    trigger(&broker, "team-a", "burst", patient(&sink)).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "probe").await;
    let acked = Arc::new(Mutex::new(HashSet::from(["probe".to_string()])));
    let mut points = Points::new();
    for round in 0..20 {
        let senders = burst(&broker, &token, round, &acked);
        tokio::time::sleep(Duration::from_millis(20 + points.below(200))).await;
        broker.kill();
        for sender in senders {
            sender.await.expect("sender");
        }
        broker.restart().await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 100, "only {} acknowledged", acked.len());
    sink.answer(&[200], "");
    let duplicates = all_delivered(&sink, &acked).await;
    eprintln!(
        "{} events acknowledged across 20 kills, all delivered; {duplicates} delivered twice or more",
        acked.len()
    );
    let unknown: Vec<String> = delivered(&sink.received())
        .into_keys()
        .filter(|id| !id.starts_with('r') && id != "probe")
        .collect();
    assert!(unknown.is_empty(), "{unknown:?}");
}

/// The rows of `sql` on the broker's event log file, read only; none while
/// it cannot be read.
fn event_log_rows<T>(
    broker: &Broker,
    sql: &str,
    row: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Vec<T> {
    let path = broker.data_dir().join("events.db");
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut statement) = conn.prepare(sql) else {
        return Vec::new();
    };
    statement
        .query_map([], row)
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The retry schedules the event log holds: (failed attempts, due ms) per event.
fn stored_retries(broker: &Broker) -> Vec<(i64, i64)> {
    event_log_rows(broker, "SELECT failed, due FROM retries", |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
}

#[tokio::test]
async fn a_retry_due_before_a_kill_9_is_due_at_the_same_time_after_it_and_then_dead_lettered() {
    let mut broker = Broker::start_with(&["--delivery", engine()]).await;
    provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[500], "failing");
    let dead_letters = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "one-retry",
        json!({"subscriber": {"uri": sink.url},
               "delivery": {"retry": 1, "backoffPolicy": "linear", "backoffDelay": "PT6S",
                            "deadLetterSink": {"uri": dead_letters.url}}}),
    )
    .await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "e1").await;
    let first = sink.wait_for(1).await[0].at;
    // The embedded log keeps the schedule in its file; JetStream keeps it as
    // the NAK's delay, out of sight: there the timing below is the proof.
    let embedded = engine() == "durable";
    if embedded {
        let schedule = eventually("the retry schedule on disk", async || {
            stored_retries(&broker).into_iter().next()
        })
        .await;
        assert_eq!(schedule.0, 1, "one attempt failed");
    }
    // Half-way to the retry, so a schedule started again after the restart
    // would show (it would come 6 s after the restart, 3 s late).
    tokio::time::sleep_until((first + Duration::from_secs(3)).into()).await;
    broker.kill();
    broker.restart().await;
    let ready = std::time::Instant::now();
    let dead = dead_letters.wait_for(1).await;
    let attempts = sink.received();
    assert_eq!(
        attempts.len(),
        2,
        "one attempt before the kill, the one retry after it: the count went on"
    );
    let retried = attempts[1].at.duration_since(first);
    assert!(
        retried >= Duration::from_millis(5900),
        "the retry came {retried:?} after the first attempt, before it was due"
    );
    assert!(
        attempts[1].at < ready.max(first + Duration::from_secs(6)) + Duration::from_secs(3),
        "the retry came {retried:?} after the first attempt: its schedule started again"
    );
    assert_eq!(dead[0].header("ce-id"), Some("e1"));
    assert_eq!(dead[0].header("ce-knativeerrorcode"), Some("500"));
    if embedded {
        eventually("the settled event's schedule gone from disk", async || {
            stored_retries(&broker).is_empty().then_some(())
        })
        .await;
    }
}

/// A sample's value in the Prometheus text (None when absent).
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_show_a_lagging_triggers_backlog_and_age_the_log_bytes_and_fsyncs() {
    let broker = Broker::start_with(&["--delivery", engine()]).await;
    let application = provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[503], "down");
    trigger(&broker, "team-a", "lagging", patient(&sink)).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "e0").await;
    for id in ["e1", "e2"] {
        let reply = post(&broker, "/team-a/default", &token, &binary(id, "t"), "{}").await;
        assert_eq!(reply.status, 202);
    }
    // One through the Application's Channel too: JetStream's Trigger reads
    // it from the Channel's stream, and its lag is the sum, in one series.
    let reply = send_order(&broker, &application, "o1").await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let lag = r#"meshbroker_consumer_lag_events{kind="trigger",namespace="team-a",name="lagging"}"#;
    let oldest = r#"meshbroker_consumer_lag_oldest_seconds{kind="trigger",namespace="team-a",name="lagging"}"#;
    let metrics = eventually("a lag of 4 events, the oldest a while ago", async || {
        let metrics = broker.metrics().await;
        (sample(&metrics, lag) == Some(4.0) && sample(&metrics, oldest)? > 0.0).then_some(metrics)
    })
    .await;
    let series = |name: &str| metrics.lines().filter(|l| l.starts_with(name)).count();
    assert_eq!(series(lag), 1, "{metrics}");
    assert_eq!(series(oldest), 1, "{metrics}");
    let bytes = sample(
        &metrics,
        r#"meshbroker_event_log_namespace_bytes{namespace="team-a"}"#,
    );
    assert!(bytes.is_some_and(|b| b > 0.0), "{metrics}");
    if engine() == "durable" {
        embedded_log_metrics(&metrics);
    }
    sink.answer(&[200], "");
    eventually("no lag once delivered", async || {
        let metrics = broker.metrics().await;
        (sample(&metrics, lag) == Some(0.0) && sample(&metrics, oldest) == Some(0.0)).then_some(())
    })
    .await;
}

/// The embedded log's own figures: its fsyncs and what they made durable.
fn embedded_log_metrics(metrics: &str) {
    let fsyncs = sample(metrics, "meshbroker_event_log_fsync_duration_seconds_count");
    assert!(fsyncs.is_some_and(|n| n >= 1.0), "{metrics}");
    let appended = sample(metrics, "meshbroker_event_log_appended_events_total");
    assert!(appended.is_some_and(|n| n >= 3.0), "{metrics}");
}

/// Sends events `prefix0`, `prefix1`, … until one is refused with 429 (at
/// most 200): the ids answered 202, and the refusal.
async fn send_until_refused(
    prefix: &str,
    mut send: impl AsyncFnMut(&str) -> Reply,
) -> (HashSet<String>, Reply) {
    let mut acked = HashSet::new();
    for i in 0..200 {
        let id = format!("{prefix}{i}");
        let reply = send(&id).await;
        match reply.status {
            202 => {
                acked.insert(id);
            }
            429 => return (acked, reply),
            other => panic!("{other}: {}", reply.text),
        }
    }
    panic!("200 events accepted: the budget never filled")
}

#[tokio::test]
async fn a_full_namespace_disk_budget_answers_429_and_loses_nothing() {
    let broker =
        Broker::start_with(&["--delivery", engine(), "--namespace-disk-budget", "20000"]).await;
    provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[503], "down");
    trigger(&broker, "team-a", "slow", patient(&sink)).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "probe").await;
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(500));
    let (mut acked, refusal) = send_until_refused("e", async |id| {
        post(&broker, "/team-a/default", &token, &binary(id, "t"), &body).await
    })
    .await;
    acked.insert("probe".to_string());
    assert_eq!(refusal.header("retry-after"), Some("1"));
    assert!(
        refusal.message().contains("disk budget") && refusal.message().contains("team-a"),
        "{}",
        refusal.text
    );
    assert!(acked.len() > 10, "{} fit in 20,000 bytes", acked.len());
    sink.answer(&[200], "");
    all_delivered(&sink, &acked).await;
    eventually("room again once delivered and trimmed", async || {
        let reply = post(
            &broker,
            "/team-a/default",
            &token,
            &binary("after", "t"),
            &body,
        )
        .await;
        (reply.status == 202).then_some(())
    })
    .await;
    sink.wait_for(acked.len() + 1).await;
}

#[tokio::test]
async fn a_namespace_behind_an_application_lags_alone_and_catches_up() {
    let broker =
        Broker::start_with(&["--delivery", engine(), "--namespace-disk-budget", "8000"]).await;
    let application = provisioned(&broker, &["team-a", "team-b"]).await;
    let healthy = Sink::start().await;
    trigger(&broker, "team-a", "all", patient(&healthy)).await;
    let down = Sink::start().await;
    down.answer(&[503], "down");
    trigger(&broker, "team-b", "all", patient(&down)).await;
    let mut sent = HashSet::new();
    for i in 0..100 {
        let id = format!("o{i}");
        let reply = send_order(&broker, &application, &id).await;
        assert_eq!(
            reply.status, 202,
            "the Application is never refused: {}",
            reply.text
        );
        sent.insert(id);
    }
    all_delivered(&healthy, &sent).await;
    let behind = delivered(&down.received()).len();
    assert_eq!(behind, 0, "team-b's subscriber is down");
    down.answer(&[200], "");
    all_delivered(&down, &sent).await;
}

/// The only namespace is full and its subscriber down: the Channel keeps what
/// the namespace cannot take yet until its own budget is full; then, and only
/// then, the Application is refused. Nothing it was told 202 is lost.
#[tokio::test]
async fn a_full_channel_budget_refuses_the_application_and_loses_nothing() {
    let broker = Broker::start_with(&[
        "--delivery",
        engine(),
        "--namespace-disk-budget",
        "3000",
        "--channel-disk-budget",
        "6000",
    ])
    .await;
    let application = provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[503], "down");
    trigger(&broker, "team-a", "all", patient(&sink)).await;
    let (acked, refusal) =
        send_until_refused("o", async |id| send_order(&broker, &application, id).await).await;
    assert_eq!(refusal.header("retry-after"), Some("1"));
    assert!(
        refusal
            .message()
            .contains("channel/kyma-integration/commerce"),
        "names the Channel whose budget is full: {}",
        refusal.text
    );
    let channel_bytes =
        r#"meshbroker_event_log_channel_bytes{namespace="kyma-integration",name="commerce"}"#;
    // JetStream's figures are read every 2 s, so wait for the next reading.
    eventually(
        "the Channel to hold what team-a could not take",
        async || {
            let held = sample(&broker.metrics().await, channel_bytes);
            held.is_some_and(|bytes| bytes > 3000.0).then_some(())
        },
    )
    .await;
    sink.answer(&[200], "");
    all_delivered(&sink, &acked).await;
    eventually("the Channel's log empty once delivered", async || {
        (sample(&broker.metrics().await, channel_bytes) == Some(0.0)).then_some(())
    })
    .await;
    let reply = send_order(&broker, &application, "after").await;
    assert_eq!(reply.status, 202, "room again: {}", reply.text);
    sink.wait_for(acked.len() + 1).await;
}

#[tokio::test]
async fn a_torn_log_tail_after_kill_9_costs_only_the_last_commit() {
    let mut broker = Broker::start_with(&["--delivery", "durable"]).await;
    provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[503], "down");
    trigger(&broker, "team-a", "all", patient(&sink)).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "probe").await;
    let mut acked = vec!["probe".to_string()];
    for i in 0..20 {
        let id = format!("e{i}");
        let reply = post(&broker, "/team-a/default", &token, &binary(&id, "t"), "{}").await;
        assert_eq!(reply.status, 202);
        acked.push(id);
    }
    broker.kill();
    let wal = broker.data_dir().join("events.db-wal");
    let length = std::fs::metadata(&wal).expect("a write-ahead log").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("opens");
    file.set_len(length - 100).expect("truncates");
    drop(file);
    broker.restart().await;
    sink.answer(&[200], "");
    // Each sequential request was its own commit: at most the last is torn.
    let kept: HashSet<String> = acked[..acked.len() - 1].iter().cloned().collect();
    all_delivered(&sink, &kept).await;
}

#[tokio::test]
async fn a_trigger_replays_what_the_log_holds_from_the_time_it_names() {
    let broker = Broker::start_with(&["--delivery", "durable", "--event-retention", "1h"]).await;
    provisioned(&broker, &["team-a"]).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "before-0").await;
    // The log keeps append times in milliseconds: keep clear of before-0's.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let since = jiff::Timestamp::now().to_string();
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 1..4 {
        let reply = post(
            &broker,
            "/team-a/default",
            &token,
            &binary(&format!("before-{i}"), "t"),
            "{}",
        )
        .await;
        assert_eq!(reply.status, 202);
    }
    let replaying = Sink::start().await;
    let body = json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": "replay", "annotations": {"meshbroker.io/replay-from": since}},
        "spec": {"broker": "default", "subscriber": {"uri": replaying.url}},
    });
    let reply = broker
        .admin()
        .create(&crate::common::fixtures::triggers("team-a"), &body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let fresh = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "fresh",
        json!({"subscriber": {"uri": fresh.url}}),
    )
    .await;
    let replayed = replaying.wait_for(3).await;
    let mut ids: Vec<&str> = replayed.iter().filter_map(|r| r.header("ce-id")).collect();
    // Delivered concurrently: in any order.
    ids.sort();
    assert_eq!(ids, ["before-1", "before-2", "before-3"]);
    let reply = post(
        &broker,
        "/team-a/default",
        &token,
        &binary("after", "t"),
        "{}",
    )
    .await;
    assert_eq!(reply.status, 202);
    let got = fresh.wait_for(1).await;
    assert_eq!(
        got[0].header("ce-id"),
        Some("after"),
        "a new Trigger starts at the end"
    );
    replaying.wait_for(4).await;

    let mut bad = body.clone();
    bad["metadata"]["name"] = json!("bad");
    bad["metadata"]["annotations"]["meshbroker.io/replay-from"] = json!("yesterday");
    let refused = broker
        .admin()
        .create(&crate::common::fixtures::triggers("team-a"), &bad)
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("replay-from"), "{}", refused.text);
}

#[tokio::test]
async fn an_event_log_that_is_not_one_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("events.db"), vec![7u8; 8192]).expect("writes");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .args([
            "serve",
            "--delivery",
            "durable",
            "--control-addr",
            "127.0.0.1:0",
            "--events-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("events.db"), "{stderr}");
}

/// The positions of the event log's cursors.
fn stored_positions(broker: &Broker) -> Vec<i64> {
    event_log_rows(broker, "SELECT position FROM cursors", |row| row.get(0))
}

/// One event on a retry schedule holds back neither its Trigger's cursor nor
/// what comes after it (crash probe): the events after it are not delivered
/// again after a kill -9, the lag counts it alone, and after the restart it
/// is read back and retried when due, its schedule and its log's batch going
/// once it is delivered. The embedded log's cursors (a JetStream consumer
/// acknowledges each message on its own).
#[tokio::test]
async fn an_event_waiting_for_a_retry_holds_back_nothing_after_it_across_a_kill_9() {
    let mut broker = Broker::start_with(&["--delivery", "durable"]).await;
    provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[500], "failing");
    let spec = json!({"subscriber": {"uri": sink.url},
        "delivery": {"retry": 10, "backoffPolicy": "linear", "backoffDelay": "PT20S"}});
    trigger(&broker, "team-a", "poisoned", spec).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "poison").await;
    let failed_at = sink.wait_for(1).await[0].at;
    sink.answer(&[200], "");
    let ids: HashSet<String> = (0..50).map(|i| format!("e{i}")).collect();
    for id in &ids {
        let reply = post(&broker, "/team-a/default", &token, &binary(id, "t"), "{}").await;
        assert_eq!(reply.status, 202, "{}", reply.text);
    }
    assert_eq!(all_delivered(&sink, &ids).await, 0);
    let lag =
        r#"meshbroker_consumer_lag_events{kind="trigger",namespace="team-a",name="poisoned"}"#;
    eventually("a lag of the one waiting event", async || {
        (sample(&broker.metrics().await, lag) == Some(1.0)).then_some(())
    })
    .await;
    // The poison and the 50 after it: the position on disk passed them all.
    eventually("the cursor on disk past the waiting event", async || {
        stored_positions(&broker)
            .iter()
            .any(|position| *position >= 51)
            .then_some(())
    })
    .await;
    assert_eq!(stored_retries(&broker).len(), 1, "its schedule on disk");
    broker.kill();
    broker.restart().await;
    post_when_token_known(&broker, "/team-a/default", &token, "after").await;
    eventually("the event sent after the restart delivered", async || {
        delivered(&sink.received())
            .contains_key("after")
            .then_some(())
    })
    .await;
    let again: usize = delivered(&sink.received())
        .iter()
        .filter(|(id, _)| ids.contains(*id))
        .map(|(_, times)| times - 1)
        .sum();
    assert_eq!(again, 0, "settled events delivered again after the kill");
    assert_eq!(
        stored_retries(&broker).len(),
        1,
        "the waiting event's schedule goes on"
    );
    // Due 20 s after it failed, whatever the restart took meanwhile.
    let retried = within(
        Duration::from_secs(40),
        "the waiting event read back and retried",
        async || {
            let received = sink.received();
            let attempts: Vec<_> = received
                .iter()
                .filter(|r| r.header("ce-id") == Some("poison"))
                .collect();
            (attempts.len() == 2).then(|| attempts[1].at)
        },
    )
    .await;
    assert!(
        retried.duration_since(failed_at) >= Duration::from_millis(19_900),
        "retried {:?} after it failed, before it was due",
        retried.duration_since(failed_at)
    );
    eventually(
        "its schedule and its batch gone once delivered",
        async || {
            let metrics = broker.metrics().await;
            let held = sample(
                &metrics,
                r#"meshbroker_event_log_namespace_bytes{namespace="team-a"}"#,
            );
            (stored_retries(&broker).is_empty()
                && sample(&metrics, lag) == Some(0.0)
                && held == Some(0.0))
            .then_some(())
        },
    )
    .await;
}
