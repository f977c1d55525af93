use std::cell::Cell;

use cloudevents::{EventBuilder, EventBuilderV10};
use serde_json::json;

use super::*;

fn event(id: &str, data: Value) -> PreparedEvent {
    let event = EventBuilderV10::new()
        .id(id)
        .ty("order.created")
        .source("shop")
        .data("application/json", data)
        .build()
        .expect("a valid event");
    PreparedEvent::new(event)
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn nothing_is_built_while_nobody_watches() {
    let taps = Arc::new(Taps::default());
    let asked = Cell::new(false);
    let e = event("1", json!({}));
    taps.arriving(
        "team-a",
        "default",
        || "ingress".into(),
        [&e],
        |_| {
            asked.set(true);
            names(&[])
        },
        None,
    );
    assert!(
        !asked.get(),
        "filters are not evaluated for an unwatched tail"
    );
    let _other = taps.watch("team-b", "default");
    taps.arriving(
        "team-a",
        "default",
        || "ingress".into(),
        [&e],
        |_| {
            asked.set(true);
            names(&[])
        },
        None,
    );
    assert!(
        !asked.get(),
        "another Broker's watcher does not make this one watched"
    );
}

#[tokio::test]
async fn a_watcher_sees_arrivals_with_their_triggers_and_how_deliveries_ended() {
    let taps = Arc::new(Taps::default());
    let mut tail = taps.watch("team-a", "default");
    let e = event("1", json!({"n": 1}));
    taps.arriving(
        "team-a",
        "default",
        || "channel kyma-integration/shop".into(),
        [&e],
        |_| names(&["orders"]),
        None,
    );
    let point = TapPoint {
        namespace: "team-a".into(),
        broker: "default".into(),
        trigger: "orders".into(),
    };
    taps.outcome(&point, &e.event, Outcome::Delivered { status: 202 });
    taps.outcome(
        &point,
        &e.event,
        Outcome::DeadLettered {
            sink: "http://dls",
            dest: "http://fn",
            code: Some(500),
            reason: "status 500",
        },
    );
    let received = serde_json::to_value(&*tail.next().await.expect("a record")).expect("json");
    assert_eq!(received["type"], "RECEIVED");
    assert_eq!(received["via"], "channel kyma-integration/shop");
    assert_eq!(received["triggers"], json!(["orders"]));
    assert_eq!(received["event"]["id"], "1");
    assert_eq!(received["event"]["data"], json!({"n": 1}));
    let delivered = serde_json::to_value(&*tail.next().await.expect("a record")).expect("json");
    assert_eq!(delivered["type"], "DELIVERED");
    assert_eq!(delivered["status"], 202);
    assert_eq!(delivered["trigger"], "orders");
    let dead = serde_json::to_value(&*tail.next().await.expect("a record")).expect("json");
    assert_eq!(dead["type"], "DEAD_LETTERED");
    assert_eq!(dead["knativeerrorcode"], 500);
    assert_eq!(dead["knativeerrordest"], "http://fn");
    assert_eq!(dead["sink"], "http://dls");
}

#[tokio::test]
async fn a_slow_watcher_skips_and_is_told_how_many() {
    let taps = Arc::new(Taps::default());
    let mut tail = taps.watch("team-a", "default");
    let events: Vec<PreparedEvent> = (0..WATCHER_BACKLOG + 10)
        .map(|i| event(&i.to_string(), json!(i)))
        .collect();
    taps.arriving(
        "team-a",
        "default",
        || "ingress".into(),
        &events,
        |_| names(&[]),
        None,
    );
    let first = tail.next().await.expect("a record");
    match &*first {
        TapRecord::Skipped { count } => assert_eq!(*count, 10),
        other => panic!("expected Skipped, got {other:?}"),
    }
    let next = serde_json::to_value(&*tail.next().await.expect("a record")).expect("json");
    assert_eq!(
        next["event"]["id"], "10",
        "the oldest record still held comes next"
    );
}

#[test]
fn the_last_watcher_gone_unregisters_the_broker() {
    let taps = Arc::new(Taps::default());
    let first = taps.watch("team-a", "default");
    let second = taps.watch("team-a", "default");
    drop(first);
    assert!(taps.watched("team-a", "default").is_some());
    drop(second);
    assert!(taps.watched("team-a", "default").is_none());
    assert!(read(&taps.brokers).is_empty());
    assert_eq!(taps.watchers.load(Ordering::Acquire), 0);
}

#[tokio::test]
async fn large_data_is_left_out_and_its_size_said() {
    let taps = Arc::new(Taps::default());
    let mut tail = taps.watch("team-a", "default");
    let e = event("big", json!("x".repeat(DATA_SHOWN + 1)));
    taps.arriving(
        "team-a",
        "default",
        || "ingress".into(),
        [&e],
        |_| names(&[]),
        None,
    );
    let record = serde_json::to_value(&*tail.next().await.expect("a record")).expect("json");
    assert!(record["event"].get("data").is_none());
    assert_eq!(record["dataOmitted"], DATA_SHOWN + 3);
    assert_eq!(record["event"]["type"], "order.created");
}
