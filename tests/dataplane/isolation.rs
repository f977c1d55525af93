//! Fault domains: a slow subscriber holds back only its own Trigger; a full queue
//! answers 429 with Retry-After; shutdown drains what was accepted.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::Broker;
use crate::common::mesh::*;
use crate::common::sink::Sink;

#[tokio::test]
async fn a_hanging_subscriber_does_not_delay_another_trigger() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let hanging = Sink::start().await;
    hanging.delay(Duration::from_secs(30));
    let healthy = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "hangs",
        json!({"subscriber": {"uri": hanging.url}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "fine",
        json!({"subscriber": {"uri": healthy.url}}),
    )
    .await;
    let started = Instant::now();
    for i in 0..20 {
        assert_eq!(
            send_order(&broker, &token, &format!("e{i}")).await.status,
            202
        );
    }
    healthy.wait_for(20).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the healthy Trigger got all 20 while the other hangs"
    );
    // The hanging subscriber is being called too.
    hanging.wait_for(1).await;
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_at_the_broker() {
    // Memory delivery's overflow policy (durable delivery's backlog is on
    // disk: see durable.rs).
    let broker = Broker::start_with(&[
        "--delivery",
        "memory",
        "--subscriber-queue",
        "2",
        "--subscriber-concurrency",
        "1",
    ])
    .await;
    provisioned(&broker, &["team-a"]).await;
    let slow = Sink::start().await;
    slow.delay(Duration::from_secs(30));
    trigger(
        &broker,
        "team-a",
        "slow",
        json!({"subscriber": {"uri": slow.url}}),
    )
    .await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    let mut statuses = Vec::new();
    post_when_token_known(&broker, "/team-a/default", &token, "probe").await;
    for i in 0..6 {
        let reply = post(
            &broker,
            "/team-a/default",
            &token,
            &binary(&format!("e{i}"), "t"),
            "{}",
        )
        .await;
        if reply.status == 429 {
            assert_eq!(reply.header("retry-after"), Some("1"));
        }
        statuses.push(reply.status);
    }
    assert!(
        statuses.contains(&429),
        "one in delivery and two queued, then 429: {statuses:?}"
    );
}

/// What a Broker answers to 100 KB events while `triggers` hanging Triggers
/// hold them, with memory delivery and `flags`.
async fn answers_to_large_events(flags: &[&str], triggers: usize, events: usize) -> Vec<u16> {
    let mut args = vec!["--delivery", "memory", "--subscriber-concurrency", "1"];
    args.extend_from_slice(flags);
    let broker = Broker::start_with(&args).await;
    provisioned(&broker, &["team-a"]).await;
    let slow = Sink::start().await;
    slow.delay(Duration::from_secs(30));
    for i in 0..triggers {
        trigger(
            &broker,
            "team-a",
            &format!("slow-{i}"),
            json!({"subscriber": {"uri": slow.url}}),
        )
        .await;
    }
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "probe").await;
    let large = format!("\"{}\"", "x".repeat(100_000));
    let mut statuses = Vec::new();
    for i in 0..events {
        let reply = post(
            &broker,
            "/team-a/default",
            &token,
            &binary(&format!("e{i}"), "t"),
            &large,
        )
        .await;
        statuses.push(reply.status);
    }
    statuses
}

#[tokio::test]
async fn a_queue_full_by_bytes_answers_429_though_it_has_places() {
    // The queue has 1,000 places. An event counts its data twice (parsed,
    // and the body it arrived in): 200 KB. 300,000 bytes hold one in delivery
    // and one queued (taken while the queue was below them).
    let statuses = answers_to_large_events(&["--subscriber-queue-bytes", "300000"], 1, 4).await;
    assert_eq!(statuses, [202, 202, 429, 429]);
}

#[tokio::test]
async fn a_namespace_budget_full_by_bytes_answers_429() {
    // Two Triggers take each event, each counting 200 KB (as above): 400 KB
    // of the 600,000 a namespace may hold, then 800 KB.
    let statuses = answers_to_large_events(&["--namespace-budget-bytes", "600000"], 2, 4).await;
    assert_eq!(statuses, [202, 202, 429, 429]);
}

#[tokio::test]
async fn a_full_queue_overflows_to_the_dead_letter_sink() {
    // Memory delivery's overflow policy.
    let broker = Broker::start_with(&[
        "--delivery",
        "memory",
        "--subscriber-queue",
        "1",
        "--subscriber-concurrency",
        "1",
    ])
    .await;
    provisioned(&broker, &["team-a"]).await;
    let slow = Sink::start().await;
    slow.delay(Duration::from_secs(30));
    let dead = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "slow",
        json!({"subscriber": {"uri": slow.url}, "delivery": {"deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "probe").await;
    // The probe is in delivery (hanging); e0 fills the queue; e1 and e2 overflow.
    for i in 0..3 {
        assert_eq!(
            post(
                &broker,
                "/team-a/default",
                &token,
                &binary(&format!("e{i}"), "t"),
                "{}"
            )
            .await
            .status,
            202
        );
    }
    let letters = dead.wait_for(1).await;
    assert_eq!(letters[0].header("ce-knativeerrorcode"), Some("429"));
}

#[tokio::test]
async fn shutdown_drains_accepted_events() {
    let mut broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.delay(Duration::from_millis(300));
    trigger(
        &broker,
        "team-a",
        "slowish",
        json!({"subscriber": {"uri": sink.url}}),
    )
    .await;
    for i in 0..8 {
        assert_eq!(
            send_order(&broker, &token, &format!("d{i}")).await.status,
            202
        );
    }
    assert!(broker.terminate().await, "exits cleanly");
    let delivered: Vec<String> = sink
        .received()
        .iter()
        .filter_map(|r| r.header("ce-id").map(str::to_string))
        .collect();
    assert_eq!(
        delivered.len(),
        8,
        "every accepted event was delivered before exit: {delivered:?}"
    );
}
