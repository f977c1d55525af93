//! The log against a real SQLite file in a temporary directory.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
use tokio::sync::oneshot;

use super::*;
use crate::config::Fsync;
use crate::mesh::dispatch::RetryDue;
use crate::mesh::event::PreparedEvent;
use crate::telemetry::Metrics;

fn settings() -> LogSettings {
    LogSettings {
        fsync: Fsync::Always,
        namespace_bytes: 1 << 30,
        channel_bytes: 1 << 30,
        retention: Duration::ZERO,
    }
}

fn event(id: &str) -> Arc<PreparedEvent> {
    let event = EventBuilderV10::new()
        .id(id)
        .source("/test")
        .ty("test.event")
        .data("application/json", serde_json::json!({ "id": id }))
        .build()
        .expect("an event");
    Arc::new(PreparedEvent::new(event))
}

fn events(prefix: &str, n: usize) -> Vec<Arc<PreparedEvent>> {
    (0..n).map(|i| event(&format!("{prefix}-{i}"))).collect()
}

fn ids(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.event.event.id().to_string())
        .collect()
}

async fn read_all(log: &Log, from: u64) -> Vec<Record> {
    let mut all = Vec::new();
    let mut next = from;
    loop {
        let batch = log.read(next, 100).await.expect("reads");
        let Some(last) = batch.last() else {
            return all;
        };
        next = last.seq + 1;
        all.extend(batch);
    }
}

/// Settings whose namespace budget holds `events` events the size of `like`.
fn broker_budget_for(events: u64, like: &str) -> LogSettings {
    LogSettings {
        namespace_bytes: record::Encoded::of(&event(like)).size() * events,
        ..settings()
    }
}

/// The Application Channel `kyma/orders`'s log.
fn orders_channel(log_file: &EventLog) -> Arc<Log> {
    log_file
        .log(LogKind::Channel, "kyma", "orders")
        .expect("log")
}

/// team-a's default Broker's log.
fn default_log(log_file: &EventLog) -> Arc<Log> {
    log_file
        .log(LogKind::Broker, "team-a", "default")
        .expect("log")
}

/// `consumer`'s cursor, new ones starting at the log's end.
async fn cursor_at_end(log_file: &EventLog, log: &Arc<Log>, consumer: &str) -> Arc<Cursor> {
    log_file
        .cursor(consumer, log, Start::End)
        .await
        .expect("cursor")
}

/// A consumer that reads nothing, so the log keeps every event (a log
/// keeps only what some cursor has not passed).
async fn hold(log_file: &EventLog, log: &Arc<Log>) {
    cursor_at_end(log_file, log, "trigger/hold").await;
}

/// Polls `check` until it holds, for at most 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ingress now refuses what earlier versions took (a control character in an
/// attribute, a datacontenttype that is no media type); what they stored is
/// still read back and delivered, never dropped as unreadable.
#[tokio::test]
async fn events_an_earlier_version_accepted_read_back_from_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lenient = || {
        let event = EventBuilderV10::new()
            .id("old\nline")
            .source("/test")
            .ty("test.event")
            .data("text/plain; note=ü", "x")
            .build()
            .expect("an event");
        Arc::new(PreparedEvent::new(event))
    };
    {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let log = default_log(&log_file);
        hold(&log_file, &log).await;
        log.append(&[lenient()]).await.expect("appends");
        log_file.close();
    }
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let log = default_log(&log_file);
    let records = read_all(&log, 0).await;
    assert_eq!(ids(&records), ["old\nline"], "read from the file");
    assert_eq!(
        records[0].event.event.datacontenttype(),
        Some("text/plain; note=ü")
    );
}

#[tokio::test]
async fn appended_events_read_back_in_order_from_memory_and_from_the_file_after_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let appended_at = {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let log = default_log(&log_file);
        hold(&log_file, &log).await;
        log.append(&events("a", 3)).await.expect("appends");
        log.append(&events("b", 2)).await.expect("appends");
        let records = read_all(&log, 0).await;
        assert_eq!(ids(&records), ["a-0", "a-1", "a-2", "b-0", "b-1"]);
        assert_eq!(
            records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(log.end(), 5);
        log_file.close();
        records.iter().map(|r| r.at_ms).collect::<Vec<_>>()
    };
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let log = default_log(&log_file);
    assert_eq!(log.end(), 5, "seqs go on after a restart");
    let records = read_all(&log, 1).await;
    assert_eq!(ids(&records), ["a-1", "a-2", "b-0", "b-1"], "from the file");
    assert_eq!(
        records.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
        appended_at[1..],
        "the file keeps when each was appended, as memory had it"
    );
    assert_eq!(
        records[0].event.wire(true).body,
        event("a-1").wire(true).body,
        "the same event on the wire"
    );
    log.append(&events("c", 1)).await.expect("appends");
    assert_eq!(read_all(&log, 5).await[0].seq, 5);
}

#[tokio::test]
async fn concurrent_appends_each_get_their_own_places_and_all_are_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
    let log = orders_channel(&log_file);
    let mut tasks = Vec::new();
    for sender in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                log.append(&events(&format!("s{sender}-{i}"), 2))
                    .await
                    .expect("appends");
            }
        }));
    }
    for task in tasks {
        task.await.expect("sender");
    }
    let records = read_all(&log, 0).await;
    assert_eq!(records.len(), 640);
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..640).collect::<Vec<_>>(), "no gaps, no doubles");
    let distinct: HashSet<String> = ids(&records).into_iter().collect();
    assert_eq!(distinct.len(), 640);
    // Each request's events stay together, in order.
    let position = |id: &str| records.iter().position(|r| r.event.event.id() == id);
    let first = position("s3-7-0").expect("there");
    assert_eq!(position("s3-7-1"), Some(first + 1));
}

#[tokio::test]
async fn a_cursor_is_kept_across_a_restart_and_a_new_one_starts_at_the_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let log = default_log(&log_file);
        log.append(&events("early", 4)).await.expect("appends");
        let cursor = cursor_at_end(&log_file, &log, "trigger/t1").await;
        assert_eq!(
            cursor.position(),
            4,
            "a new cursor starts after what is there"
        );
        log.append(&events("late", 4)).await.expect("appends");
        for seq in 4..8 {
            cursor.take(seq);
        }
        cursor.passed(8);
        cursor.settle(4);
        cursor.settle(6);
        assert_eq!(cursor.position(), 5, "5 is still in delivery");
        log_file.close();
    }
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let log = default_log(&log_file);
    let cursor = cursor_at_end(&log_file, &log, "trigger/t1").await;
    assert_eq!(cursor.position(), 5, "what was in delivery is read again");
    assert_eq!(
        ids(&read_all(&log, cursor.read_to()).await),
        ["late-1", "late-2", "late-3"]
    );
}

#[tokio::test]
async fn retry_schedules_are_kept_across_a_restart_until_their_events_settle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = RetryDue {
        failed: 2,
        due_ms: 1_900_000_000_000,
    };
    {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let log = default_log(&log_file);
        let cursor = cursor_at_end(&log_file, &log, "trigger/t1").await;
        log.append(&events("e", 3)).await.expect("appends");
        for seq in 0..3 {
            cursor.take(seq);
        }
        cursor.passed(3);
        cursor.retrying(0, first);
        cursor.retrying(
            1,
            RetryDue {
                failed: 1,
                due_ms: 7,
            },
        );
        cursor.settle(1);
        log_file.close();
    }
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let log = default_log(&log_file);
    let cursor = cursor_at_end(&log_file, &log, "trigger/t1").await;
    assert_eq!(cursor.resume(0), Some(first), "0 resumes its schedule");
    assert_eq!(cursor.resume(1), None, "1 settled: its schedule went");
    assert_eq!(cursor.resume(2), None, "2 never failed");
    log_file.retain_cursors(HashSet::new());
    log_file.close();
    let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("file");
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM retries", [], |row| row.get(0))
        .expect("counted");
    assert_eq!(rows, 0, "a dropped cursor takes its retries with it");
}

/// An event on a long retry schedule holds neither its cursor (a crash
/// would deliver everything after it again) nor the log after it (a full
/// budget would refuse the namespace's events): only its own batch stays.
#[tokio::test]
async fn an_event_waiting_for_a_retry_keeps_only_its_batch_and_is_read_back_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let due = RetryDue {
        failed: 3,
        due_ms: 1_900_000_000_000,
    };
    let one_batch = {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let log = default_log(&log_file);
        let cursor = cursor_at_end(&log_file, &log, "trigger/t1").await;
        // One commit each: a log is trimmed a whole commit's batch at a time.
        for event in events("e", 10) {
            log.append(&[event]).await.expect("appends");
        }
        let full = log.bytes();
        for seq in 0..10 {
            cursor.take(seq);
        }
        cursor.passed(10);
        cursor.retrying(0, due);
        for seq in 1..10 {
            cursor.settle(seq);
        }
        assert_eq!(cursor.position(), 10);
        eventually("all but the waiting event's batch trimmed", || {
            log.bytes() == full / 10
        })
        .await;
        log_file.close();
        full / 10
    };
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let log = default_log(&log_file);
    assert_eq!(log.bytes(), one_batch, "the file kept only that batch");
    let cursor = cursor_at_end(&log_file, &log, "trigger/t1").await;
    assert_eq!(cursor.position(), 10, "the position had passed it");
    assert_eq!(cursor.waiting_below_position(), vec![0]);
    assert_eq!(cursor.resume(0), Some(due));
    let read = log.read(0, 1).await.expect("reads");
    assert_eq!(ids(&read), vec!["e-0".to_string()], "read back by number");
    cursor.take(0);
    cursor.settle(0);
    eventually("its batch trimmed once it settled", || log.bytes() == 0).await;
}

#[tokio::test]
async fn events_every_cursor_passed_are_trimmed_and_their_bytes_given_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
    let log = default_log(&log_file);
    let slow = cursor_at_end(&log_file, &log, "trigger/slow").await;
    let fast = cursor_at_end(&log_file, &log, "trigger/fast").await;
    // One commit each: a log is trimmed a whole commit's batch at a time.
    for event in events("e", 10) {
        log.append(&[event]).await.expect("appends");
    }
    let full = log.bytes();
    assert!(full > 0);
    fast.passed(10);
    slow.passed(4);
    eventually("the first 4 trimmed", || log.bytes() < full).await;
    // Trimmed below the slow cursor only: it still reads from 4.
    let mut records = read_all(&log, 0).await;
    // The tail in memory still has them; the file does not.
    records.retain(|r| r.seq >= 4);
    assert_eq!(records.len(), 6);
    let namespace_bytes = log_file.namespace_bytes();
    assert_eq!(namespace_bytes, vec![("team-a".to_string(), log.bytes())]);
    slow.passed(10);
    eventually("all trimmed", || log.bytes() == 0).await;
    assert_eq!(log_file.namespace_bytes()[0].1, 0);
}

#[tokio::test]
async fn a_full_budget_refuses_the_append_whole_and_frees_when_trimmed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = crate::mesh::log::record::Encoded::of(&event("x-0")).size();
    let log_file = EventLog::open(
        dir.path(),
        LogSettings {
            namespace_bytes: one * 3,
            ..settings()
        },
        Metrics::new(),
    )
    .expect("opens");
    let default = default_log(&log_file);
    let other = log_file
        .log(LogKind::Broker, "team-a", "other")
        .expect("log");
    let cursor = cursor_at_end(&log_file, &default, "trigger/t").await;
    default.append(&events("x", 2)).await.expect("fits");
    let refused = other.append(&events("y", 2)).await;
    assert!(
        matches!(refused, Err(AppendError::Full(ref name)) if name == "broker/team-a/other"),
        "the namespace's budget covers both Brokers: {refused:?}"
    );
    assert_eq!(other.end(), 0, "nothing of the refused request was written");
    let elsewhere = log_file
        .log(LogKind::Broker, "team-b", "default")
        .expect("log");
    elsewhere
        .append(&events("z", 3))
        .await
        .expect("another namespace has its own budget");
    cursor.passed(2);
    eventually("room again", || default.bytes() == 0).await;
    other
        .append(&events("y", 2))
        .await
        .expect("fits after the trim");
}

#[tokio::test]
async fn a_replaying_cursor_starts_at_the_time_asked_while_retention_keeps_the_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_file = EventLog::open(
        dir.path(),
        LogSettings {
            retention: Duration::from_secs(3600),
            ..settings()
        },
        Metrics::new(),
    )
    .expect("opens");
    let log = default_log(&log_file);
    log.append(&events("old", 2)).await.expect("appends");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let middle = read_all(&log, 0).await[1].at_ms + 10;
    log.append(&events("new", 2)).await.expect("appends");
    // No cursor: retention alone keeps them past the next trims.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let replay = log_file
        .cursor("trigger/replay", &log, Start::Since(middle))
        .await
        .expect("cursor");
    assert_eq!(replay.position(), 2);
    let from_start = log_file
        .cursor("trigger/all", &log, Start::Since(0))
        .await
        .expect("cursor");
    assert_eq!(from_start.position(), 0);
}

#[tokio::test]
async fn dropped_cursors_and_logs_leave_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let kept = log_file
            .log(LogKind::Broker, "team-a", "kept")
            .expect("log");
        let gone = log_file
            .log(LogKind::Broker, "team-a", "gone")
            .expect("log");
        cursor_at_end(&log_file, &kept, "trigger/keep").await;
        cursor_at_end(&log_file, &kept, "trigger/drop").await;
        kept.append(&events("k", 1)).await.expect("appends");
        gone.append(&events("g", 1)).await.expect("appends");
        log_file.retain_cursors(HashSet::from(["trigger/keep".to_string()]));
        log_file.retain_logs(&HashSet::from(["broker/team-a/kept".to_string()]));
        log_file.close();
    }
    let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("opens");
    let names: Vec<String> = conn
        .prepare("SELECT consumer FROM cursors")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("cursors");
    assert_eq!(names, ["trigger/keep"]);
    let logs: Vec<String> = conn
        .prepare("SELECT name FROM logs")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("logs");
    assert_eq!(logs, ["broker/team-a/kept"]);
    let events: i64 = conn
        .query_row("SELECT SUM(count) FROM batches", [], |r| r.get(0))
        .expect("count");
    assert_eq!(events, 1);
}

/// A crash leaves the write-ahead log as the last commit left it; damage at
/// its end (a torn write) costs only the commit it tore. Copying the files of
/// an open log is what a kill -9 leaves behind.
#[tokio::test]
async fn a_torn_write_ahead_log_opens_and_keeps_every_whole_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crashed = tempfile::tempdir().expect("temp dir");
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
    let log = default_log(&log_file);
    hold(&log_file, &log).await;
    for i in 0..5 {
        log.append(&events(&format!("r{i}"), 1))
            .await
            .expect("appends");
    }
    for suffix in ["", "-wal"] {
        let name = format!("{FILE_NAME}{suffix}");
        std::fs::copy(dir.path().join(&name), crashed.path().join(&name)).expect("copies");
    }
    let wal = crashed.path().join(format!("{FILE_NAME}-wal"));
    let length = std::fs::metadata(&wal).expect("wal").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("opens");
    file.set_len(length - 100).expect("truncates");
    drop(file);

    let reopened = EventLog::open(crashed.path(), settings(), Metrics::new())
        .expect("a torn tail is no refusal");
    let log = default_log(&reopened);
    let records = read_all(&log, 0).await;
    assert_eq!(
        ids(&records),
        ["r0-0", "r1-0", "r2-0", "r3-0"],
        "the torn last commit is cut"
    );
    assert_eq!(log.end(), 4);
    log.append(&events("after", 1)).await.expect("appends");
    assert_eq!(read_all(&log, 4).await[0].event.event.id(), "after-0");
}

#[tokio::test]
async fn a_file_that_is_not_an_event_log_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(FILE_NAME), vec![7u8; 8192]).expect("writes");
    let error = EventLog::open(dir.path(), settings(), Metrics::new())
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(message.contains(FILE_NAME), "{message}");
    assert!(message.contains("not a database"), "{message}");
}

#[tokio::test]
async fn another_database_or_a_newer_layout_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(FILE_NAME);
    {
        let other = rusqlite::Connection::open(&path).expect("creates");
        other
            .execute_batch("CREATE TABLE foo (a, b); INSERT INTO foo VALUES (1, 2);")
            .expect("writes");
    }
    let error = EventLog::open(dir.path(), settings(), Metrics::new())
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(message.contains(FILE_NAME), "{message}");
    assert!(message.contains("foo"), "{message}");
    {
        let other = rusqlite::Connection::open(&path).expect("opens");
        let tables: i64 = other
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get(0))
            .expect("counts");
        assert_eq!(tables, 1, "nothing was laid out in it");
        other
            .execute_batch("DROP TABLE foo; PRAGMA user_version = 99;")
            .expect("writes");
    }
    let error = EventLog::open(dir.path(), settings(), Metrics::new())
        .err()
        .expect("refused");
    assert!(error.to_string().contains("newer meshbroker"), "{error}");
}

/// A file written by the first layout (a row per event) is brought to the
/// batch layout when opened: its events, cursors and byte counts are kept.
#[tokio::test]
async fn a_file_of_the_first_layout_keeps_its_events_when_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("file");
        conn.execute_batch(
            "CREATE TABLE logs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
             CREATE TABLE events (log INTEGER NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
                 body BLOB NOT NULL, trace TEXT, PRIMARY KEY (log, seq)) WITHOUT ROWID;
             CREATE TABLE cursors (consumer TEXT PRIMARY KEY, log INTEGER NOT NULL,
                 position INTEGER NOT NULL);
             INSERT INTO logs VALUES (1, 'broker/team-a/default');
             INSERT INTO cursors VALUES ('trigger/t1', 1, 5);",
        )
        .expect("the first layout");
        for (seq, event) in (5..8).zip(events("old", 3)) {
            let encoded = record::Encoded::of(&event);
            conn.execute(
                "INSERT INTO events VALUES (1, ?1, 1000, ?2, NULL)",
                rusqlite::params![seq, &encoded.body[..]],
            )
            .expect("an event");
        }
    }
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
    let log = default_log(&log_file);
    assert_eq!(log.end(), 8, "seqs go on where they were");
    assert!(log.bytes() > 0, "the stored bytes are counted");
    let cursor = cursor_at_end(&log_file, &log, "trigger/t1").await;
    assert_eq!(cursor.read_to(), 5, "the cursor is kept");
    assert_eq!(ids(&read_all(&log, 5).await), ["old-0", "old-1", "old-2"]);
}

/// A caught-up relay is done in the Channel's append call: its events land in
/// the Broker's log in the same commit and move the relay's cursor; a stale
/// position is refused; a full Broker detaches the relay, which is told.
#[tokio::test]
async fn an_append_relays_a_caught_up_relay_until_the_broker_is_full() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = broker_budget_for(3, "x-0");
    let log_file = EventLog::open(dir.path(), settings, Metrics::new()).expect("opens");
    let channel = orders_channel(&log_file);
    let broker = default_log(&log_file);
    hold(&log_file, &broker).await;
    channel.append(&events("before", 1)).await.expect("appends");
    let relay = cursor_at_end(&log_file, &channel, "subscription/r").await;
    assert!(
        log_file
            .attach_relay(&channel, &broker, relay.clone(), 0)
            .is_none(),
        "not caught up at 0: the Channel holds an event there"
    );
    let relayed_until = log_file
        .attach_relay(&channel, &broker, relay.clone(), 1)
        .expect("caught up at 1");
    channel.append(&events("a", 2)).await.expect("appends");
    assert_eq!(broker.end(), 2, "relayed in the same commit");
    assert_eq!(ids(&read_all(&broker, 0).await), ["a-0", "a-1"]);
    assert_eq!(relay.read_to(), 3, "the relay's cursor moved with them");
    channel.append(&events("b", 2)).await.expect("appends");
    tokio::time::timeout(Duration::from_secs(5), relayed_until)
        .await
        .expect("the full Broker detaches the relay")
        .expect_err("told by dropping");
    assert_eq!(broker.end(), 2, "nothing of what did not fit");
    assert_eq!(relay.read_to(), 3, "the relay's task goes on from here");
}

/// A commit's events for one log go into rows of at most 16 MiB, so no row
/// nears SQLite's limit on a blob, and they read back whole.
#[tokio::test]
async fn a_large_commit_is_stored_in_rows_of_bounded_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
    let log = default_log(&log_file);
    hold(&log_file, &log).await;
    let big: Vec<Arc<PreparedEvent>> = (0..20)
        .map(|i| {
            let event = EventBuilderV10::new()
                .id(format!("big-{i}"))
                .source("/bulk")
                .ty("bulk")
                .data("application/octet-stream", vec![7u8; 1 << 20])
                .build()
                .expect("an event");
            Arc::new(PreparedEvent::new(event))
        })
        .collect();
    log.append(&big).await.expect("appends");
    log_file.close();
    let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("file");
    let (rows, largest): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), MAX(length(events)) FROM batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counted");
    assert!(rows >= 2, "{rows} rows");
    assert!(largest <= 16 << 20, "a row of {largest} bytes");
    let reopened = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let log = default_log(&reopened);
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let batch = log.read(seen.len() as u64, 7).await.expect("reads");
        assert!(!batch.is_empty(), "stopped at {}", seen.len());
        seen.extend(batch.into_iter().map(|r| r.event.event.id().to_string()));
    }
    let expected: Vec<String> = (0..20).map(|i| format!("big-{i}")).collect();
    assert_eq!(seen, expected);
}

/// What the writer relayed is trimmed from the Channel's log like anything
/// else its cursors passed, and its bytes go back to the Channel's budget:
/// a Channel whose budget holds three events takes ten, one at a time.
#[tokio::test]
async fn relayed_events_leave_the_channel_and_free_its_budget() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one = record::Encoded::of(&event("x-0")).size();
    let settings = LogSettings {
        channel_bytes: one * 3,
        ..settings()
    };
    let log_file = EventLog::open(dir.path(), settings, Metrics::new()).expect("opens");
    let channel = orders_channel(&log_file);
    let broker = default_log(&log_file);
    let relay = cursor_at_end(&log_file, &channel, "subscription/r").await;
    let _relayed_until = log_file
        .attach_relay(&channel, &broker, relay.clone(), 0)
        .expect("caught up at 0");
    for (i, event) in events("e", 10).into_iter().enumerate() {
        let appended = channel.append(&[event]).await;
        assert!(appended.is_ok(), "event {i}: {appended:?}");
        eventually("the relayed event trimmed", || channel.bytes() == 0).await;
    }
    assert_eq!(broker.end(), 10, "every event relayed");
}

/// More events than a tail holds, numbered from `first` on.
fn records(first: u64, n: u64) -> Vec<Record> {
    (first..first + n)
        .map(|seq| Record {
            seq,
            at_ms: 0,
            event: event(&format!("t-{seq}")),
        })
        .collect()
}

/// Readers take what is numbered but not yet stored from the tail alone, so
/// the tail keeps it however long the writer takes: only stored events
/// leave, and then only what is over the tail's size.
#[test]
fn the_tail_lets_go_only_of_stored_events() {
    let state = log_state::LogState::new(
        1,
        "broker/team-a/default".into(),
        Arc::new(DiskBudget::new(u64::MAX)),
        0,
    );
    state.publish(records(0, 4000), 4000);
    let evicted = state.stored_below(1000, 0);
    assert_eq!(
        evicted.len(),
        1000,
        "only the stored ones, though 3,000 stay"
    );
    assert_eq!(state.read_tail(1000, 1).expect("held")[0].seq, 1000);
    assert!(
        state.read_tail(999, 1).is_none(),
        "stored and gone: the file has it"
    );
    let evicted = state.stored_below(4000, 0);
    assert_eq!(evicted.first().map(|r| r.seq), Some(1000));
    assert!(
        state.read_tail(4000 - 2048, 1).is_some(),
        "back to the tail's size"
    );
    assert!(state.read_tail(4000 - 2049, 1).is_none());
}

/// Large events leave the tail by their bytes, long before 2,048 of them
/// (each of a megabyte held gigabytes); unstored ones stay all the same.
#[test]
fn the_tail_holds_a_bounded_number_of_bytes() {
    let state = log_state::LogState::new(
        1,
        "broker/team-a/default".into(),
        Arc::new(DiskBudget::new(u64::MAX)),
        0,
    );
    let megabyte = |seq: u64| {
        let event = EventBuilderV10::new()
            .id(format!("big-{seq}"))
            .source("/test")
            .ty("test.event")
            .data("text/plain", "x".repeat(1 << 20))
            .build()
            .expect("an event");
        Record {
            seq,
            at_ms: 0,
            event: Arc::new(PreparedEvent::new(event)),
        }
    };
    state.publish((0..40).map(megabyte).collect(), 40);
    assert!(
        state.stored_below(0, 0).is_empty(),
        "nothing stored, nothing leaves"
    );
    let evicted = state.stored_below(40, 0);
    assert_eq!(evicted.len(), 33, "8 MiB of the 40 stay");
    assert!(state.read_tail(33, 1).is_some());
    assert!(state.read_tail(32, 1).is_none());
}

/// Makes every commit that stores events fail (a trigger on the file's
/// batches raising an error), or lifts that.
fn refuse_commits(dir: &std::path::Path, refuse: bool) {
    let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).expect("file");
    conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
    // As a full disk refuses every write: new batches, and the writer's
    // probe (`sqlite::probe_write`).
    let sql = if refuse {
        "CREATE TRIGGER refuse BEFORE INSERT ON batches
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
         CREATE TRIGGER refuse_probe BEFORE UPDATE ON logs
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
    } else {
        "DROP TRIGGER refuse; DROP TRIGGER refuse_probe;"
    };
    conn.execute_batch(sql).expect("trigger");
}

/// A commit the file refuses refuses its appends, and their numbers are
/// spent: readers may have had those events from the tail already (their
/// sender, told no, sends again — a duplicate, never a loss) and pass the gap
/// to what comes after, before and after a restart; no number is given twice.
#[tokio::test]
async fn a_refused_commit_leaves_a_gap_that_readers_pass_and_numbers_are_not_reused() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let log = default_log(&log_file);
        hold(&log_file, &log).await;
        log.append(&events("a", 2)).await.expect("appends");
        refuse_commits(dir.path(), true);
        // More than the tail holds, so the next commit evicts part of them.
        let refused = log.append(&events("b", 2100)).await;
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(log.end(), 2102, "numbers spent");
        let failing = log_file.failing().expect("readiness is told");
        assert!(failing.contains("refused by the test"), "{failing}");
        // Commits that append nothing (a cursor's tick) write the probe, which
        // the file refuses as well: not ready until it takes writes again.
        let tried = log_file.commits_tried();
        eventually("a tick's commit", || log_file.commits_tried() > tried + 1).await;
        assert!(log_file.failing().is_some(), "still refused");
        refuse_commits(dir.path(), false);
        log.append(&events("c", 2)).await.expect("appends");
        assert_eq!(log_file.failing(), None, "committing again");
        let from_start = ids(&read_all(&log, 0).await);
        let kept: Vec<&String> = from_start
            .iter()
            .filter(|id| !id.starts_with("b-"))
            .collect();
        assert_eq!(kept, ["a-0", "a-1", "c-0", "c-1"]);
        let from_the_gap = ids(&read_all(&log, 2).await);
        assert_eq!(from_the_gap.last().map(String::as_str), Some("c-1"));
        log_file.close();
    }
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let log = default_log(&log_file);
    assert_eq!(ids(&read_all(&log, 0).await), ["a-0", "a-1", "c-0", "c-1"]);
    assert_eq!(
        ids(&read_all(&log, 2).await),
        ["c-0", "c-1"],
        "past the gap"
    );
    assert_eq!(log.end(), 2104);
    log.append(&events("d", 1)).await.expect("appends");
    assert_eq!(read_all(&log, 2104).await[0].event.event.id(), "d-0");
}

/// The orders Channel relayed by a caught-up relay into the default Broker
/// (held, so it keeps what it gets): the Channel, the Broker, the relay's
/// cursor, and the receiver that hears when the relay is detached.
async fn relayed_channel(
    log_file: &EventLog,
) -> (Arc<Log>, Arc<Log>, Arc<Cursor>, oneshot::Receiver<()>) {
    let channel = orders_channel(log_file);
    let broker = default_log(log_file);
    hold(log_file, &broker).await;
    let relay = cursor_at_end(log_file, &channel, "subscription/r").await;
    let relayed_until = log_file
        .attach_relay(&channel, &broker, relay.clone(), 0)
        .expect("caught up at 0");
    (channel, broker, relay, relayed_until)
}

/// 16 senders appending 20 events each to `channel` at once, one at a time;
/// ids of one length, so every event takes the same bytes.
async fn append_concurrently(channel: &Arc<Log>) {
    let senders: Vec<_> = (0..16)
        .map(|sender| {
            let channel = channel.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let id = format!("s{sender:02}-{i:02}");
                    channel.append(&[event(&id)]).await.expect("appends");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
}

/// Concurrent appends to a Channel whose caught-up relay fills its Broker:
/// in every interleaving the Broker's log is exactly the Channel's first
/// events, in the Channel's order, and the relay's cursor stands right after
/// the last one relayed — where the relay's task takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_relay_a_prefix_of_the_channel_in_its_order() {
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = broker_budget_for(100, "s00-00");
        let log_file = EventLog::open(dir.path(), settings, Metrics::new()).expect("opens");
        let (channel, broker, relay, _relayed_until) = relayed_channel(&log_file).await;
        append_concurrently(&channel).await;
        let in_channel = ids(&read_all(&channel, 0).await);
        assert_eq!(in_channel.len(), 320, "round {round}");
        assert_eq!(
            ids(&read_all(&broker, 0).await),
            in_channel[..100],
            "round {round}: the first 100, in order"
        );
        assert_eq!(relay.read_to(), 100, "round {round}");
        log_file.close();
    }
}

/// Appends relayed in one commit write the relay's cursor once, where the
/// last of them left it: after a restart the relay goes on right after the
/// last event relayed, whichever commit held it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_cursor_moved_by_many_appends_in_one_commit_is_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens");
        let (channel, broker, _relay, _relayed_until) = relayed_channel(&log_file).await;
        append_concurrently(&channel).await;
        assert_eq!(broker.end(), 320, "every event relayed");
        log_file.close();
    }
    let log_file = EventLog::open(dir.path(), settings(), Metrics::new()).expect("opens again");
    let channel = orders_channel(&log_file);
    let relay = cursor_at_end(&log_file, &channel, "subscription/r").await;
    assert_eq!(relay.position(), 320, "the relay goes on after the last");
    assert_eq!(ids(&read_all(&default_log(&log_file), 0).await).len(), 320);
}
