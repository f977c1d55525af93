//! JetStream delivery (`--delivery jetstream`) where it differs from the
//! embedded log: NATS going away and coming back (idle and under load), a
//! sender's retry of the same event stored once, and where a Trigger's
//! consumers read (its Broker's stream and the Channels wired to it). (The whole dataplane suite, the durable tests
//! included, also runs with JetStream delivery: see scripts/test.) Each test
//! starts its own nats-server.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::common::fixtures::{ORDER_SERVICE, plan_of, triggers};
use crate::common::mesh::*;
use crate::common::nats::NatsServer;
use crate::common::sink::Sink;
use crate::common::{Broker, Reply, eventually};

async fn on_jetstream(nats: &NatsServer, extra: &[&str]) -> Broker {
    let mut args = vec!["--delivery", "jetstream", "--nats-url", nats.url.as_str()];
    args.extend_from_slice(extra);
    Broker::start_with(&args).await
}

/// A broker on `nats` with team-a provisioned and a catch-all Trigger, its
/// sink, and a namespace token that has delivered `first` already.
async fn flowing(nats: &NatsServer, extra: &[&str], first: &str) -> (Broker, Sink, String) {
    let broker = on_jetstream(nats, extra).await;
    provisioned(&broker, &["team-a"]).await;
    let sink = catch_all(&broker, "team-a").await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, first).await;
    sink.wait_for(1).await;
    (broker, sink, token)
}

/// A `note.taken` event with `id`, and `data` as its JSON data, to team-a's Broker.
async fn note(broker: &Broker, token: &str, id: &str, data: &str) -> Reply {
    post(
        broker,
        "/team-a/default",
        token,
        &binary(id, "note.taken"),
        data,
    )
    .await
}

/// Every consumer JetStream has, with its settings (its `/jsz` page).
async fn consumer_details(nats: &NatsServer) -> Vec<serde_json::Value> {
    let url = format!("{}/jsz?consumers=true&config=true", nats.monitor());
    let jsz: serde_json::Value = reqwest::get(url)
        .await
        .expect("jsz")
        .json()
        .await
        .expect("jsz json");
    jsz["account_details"][0]["stream_detail"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["consumer_detail"].as_array().cloned().unwrap_or_default())
        .collect()
}

async fn readiness(broker: &Broker) -> (u16, serde_json::Value) {
    let response = broker
        .http
        .get(format!("{}/readyz", broker.control))
        .send()
        .await
        .expect("readyz");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn while_nats_is_away_ingress_answers_503_and_readyz_says_why_then_all_recovers() {
    let nats = NatsServer::start();
    let (broker, sink, token) = flowing(&nats, &[], "before").await;

    nats.stop();
    let why = eventually("readyz to report NATS away", async || {
        let (status, body) = readiness(&broker).await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(why["status"], "unavailable");
    assert!(
        why["reason"].as_str().is_some_and(|r| r.contains("NATS")),
        "{why}"
    );
    let refused = note(&broker, &token, "away", "{}").await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.body["error"], "Unavailable");

    nats.resume();
    eventually("readyz to be ready again", async || {
        (readiness(&broker).await.0 == 200).then_some(())
    })
    .await;
    eventually("the ingress to take events again", async || {
        let reply = note(&broker, &token, "after", "{}").await;
        (reply.status == 202).then_some(())
    })
    .await;
    let got = sink.wait_for(2).await;
    let ids: Vec<_> = got.iter().filter_map(|r| r.header("ce-id")).collect();
    assert_eq!(
        ids,
        ["before", "after"],
        "what was refused is not delivered"
    );
}

#[tokio::test]
async fn a_senders_retry_of_the_same_event_is_stored_and_delivered_once() {
    let nats = NatsServer::start();
    // One delivery at a time: the subscriber sees events in the stream's order.
    let (broker, sink, token) = flowing(&nats, &["--subscriber-concurrency", "1"], "once").await;
    let again = note(&broker, &token, "once", "{}").await;
    assert_eq!(again.status, 202, "a retry is answered as the first was");
    let next = note(&broker, &token, "next", "{}").await;
    assert_eq!(next.status, 202);
    let got = sink.wait_for(2).await;
    let ids: Vec<_> = got.iter().filter_map(|r| r.header("ce-id")).collect();
    assert_eq!(ids, ["once", "next"], "the retry was not a second event");
}

#[tokio::test]
async fn an_event_larger_than_a_nats_message_is_413_and_the_next_one_flows() {
    let nats = NatsServer::start();
    // The body limit above the NATS server's max_payload (8 MB in the
    // project's configuration), so the event reaches the publish.
    let (broker, sink, token) = flowing(&nats, &["--max-event-bytes", "16000000"], "small").await;
    let large = format!("\"{}\"", "x".repeat(9_000_000));
    let refused = note(&broker, &token, "large", &large).await;
    assert_eq!(
        refused.status, 413,
        "retrying cannot help: {}",
        refused.text
    );
    assert!(refused.text.contains("max_payload"), "{}", refused.text);
    let next = note(&broker, &token, "after", "{}").await;
    assert_eq!(next.status, 202);
    let got = sink.wait_for(2).await;
    let ids: Vec<_> = got.iter().filter_map(|r| r.header("ce-id")).collect();
    assert_eq!(ids, ["small", "after"]);
}

/// Each consumer's (stream, name), its stream named as JetStream has it.
async fn placed_consumers(nats: &NatsServer) -> Vec<(String, String)> {
    consumer_details(nats)
        .await
        .iter()
        .filter_map(|c| {
            Some((
                c["stream_name"].as_str()?.into(),
                c["name"].as_str()?.into(),
            ))
        })
        .collect()
}

const TEAM_A_BROKERS: &str = "MB_BROKERS_team-a";
const COMMERCE_CHANNEL: &str = "MB_CHANNEL_kyma-integration_commerce";

/// A Trigger reads its Broker's stream and, while its namespace holds an
/// instance of the Application, the Application's Channel stream (no relay
/// copies the Channel into the Broker's stream); each event reaches it once,
/// whichever way it came; its consumers go with it, and deprovisioning takes
/// the Channel's consumers away.
#[tokio::test]
async fn a_triggers_consumers_read_its_broker_and_the_wired_channel_and_go_with_it() {
    let nats = NatsServer::start();
    let broker = on_jetstream(&nats, &["--subscriber-concurrency", "1"]).await;
    let application = provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    let created = trigger(
        &broker,
        "team-a",
        "reader",
        json!({"subscriber": {"uri": sink.url}}),
    )
    .await;
    let name = format!(
        "trigger-{}",
        created["metadata"]["uid"].as_str().expect("a uid")
    );
    let on = |stream: &str| (stream.to_string(), name.clone());
    let mut both = vec![on(TEAM_A_BROKERS), on(COMMERCE_CHANNEL)];
    both.sort();
    eventually("the Trigger's consumers on both streams", async || {
        let mut placed = placed_consumers(&nats).await;
        placed.sort();
        (placed == both).then_some(())
    })
    .await;

    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "direct").await;
    let reply = send_order(&broker, &application, "from-commerce").await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let got = sink.wait_for(2).await;
    let mut ids: Vec<_> = got.iter().filter_map(|r| r.header("ce-id")).collect();
    ids.sort();
    assert_eq!(ids, ["direct", "from-commerce"], "each once");

    let other = trigger(
        &broker,
        "team-a",
        "other",
        json!({"subscriber": {"uri": sink.url}, "filter": {"attributes": {"type": "none"}}}),
    )
    .await;
    let other = format!(
        "trigger-{}",
        other["metadata"]["uid"].as_str().expect("a uid")
    );
    broker
        .admin()
        .delete(&format!("{}/reader", triggers("team-a")))
        .await;
    let others = vec![
        (TEAM_A_BROKERS.to_string(), other.clone()),
        (COMMERCE_CHANNEL.to_string(), other.clone()),
    ];
    eventually(
        "the deleted Trigger's consumers gone, the other's kept",
        async || {
            let mut placed = placed_consumers(&nats).await;
            placed.sort();
            (placed == others).then_some(())
        },
    )
    .await;

    broker
        .osb()
        .deprovision_and_wait("orders-team-a", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    eventually(
        "no consumer on the Channel once deprovisioned",
        async || {
            let placed = placed_consumers(&nats).await;
            (!placed.iter().any(|(stream, _)| stream == COMMERCE_CHANNEL)).then_some(())
        },
    )
    .await;
    assert_eq!(sink.count(), 2, "nothing else was delivered");
}

/// A Trigger's consumers (its Broker's stream and the two Channels' wired
/// to it) share its queue's places: the quiet ones' pulls, waiting five
/// seconds for events that do not come, must not hold back the busy one —
/// whichever is the busy one.
#[tokio::test]
async fn a_quiet_stream_does_not_hold_back_a_busy_one_of_the_same_trigger() {
    let nats = NatsServer::start();
    let broker = on_jetstream(&nats, &["--subscriber-queue", "256"]).await;
    let application = provisioned(&broker, &["team-a"]).await;
    channel_in_team_a(&broker, "quiet").await;
    subscription_in_team_a(
        &broker,
        "quiet-to-broker",
        json!({"channel": channel_ref("quiet"), "subscriber": {"ref": default_broker_ref()}}),
    )
    .await;
    let sink = catch_all(&broker, "team-a").await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "first").await;
    sink.wait_for(1).await;
    for (way, expected) in [("the Channel", 41), ("the Broker", 81)] {
        let started = std::time::Instant::now();
        for i in 0..40 {
            let id = format!("{way}-{i}");
            let reply = if way == "the Channel" {
                send_order(&broker, &application, &id).await
            } else {
                post(&broker, "/team-a/default", &token, &binary(&id, "t"), "{}").await
            };
            assert_eq!(reply.status, 202, "{}", reply.text);
        }
        sink.wait_for(expected).await;
        // A pull waits 5 s for events; the 40 need ten rounds of the 4 places.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "40 events through {way} took {:?}: the other stream's pull held the places",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn nats_restarted_under_load_answers_503_meanwhile_and_loses_nothing_acknowledged() {
    let nats = NatsServer::start();
    let (broker, sink, token) = flowing(&nats, &[], "warm-up").await;

    let sending = Arc::new(AtomicBool::new(true));
    let refused = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (url, token, sending, refused) = (
            format!("{}/team-a/default", broker.events),
            token.clone(),
            sending.clone(),
            refused.clone(),
        );
        tokio::spawn(async move {
            let http = crate::common::http_client();
            let (mut acked, mut unavailable) = (HashSet::new(), 0);
            for n in 0.. {
                if !sending.load(Ordering::Acquire) {
                    break;
                }
                let id = format!("load-{n}");
                let reply = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("ce-specversion", "1.0")
                    .header("ce-id", &id)
                    .header("ce-source", "/load")
                    .header("ce-type", "note.taken")
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .expect("the broker answers while NATS is away");
                match reply.status().as_u16() {
                    202 => {
                        acked.insert(id);
                    }
                    503 => {
                        unavailable += 1;
                        refused.fetch_add(1, Ordering::AcqRel);
                    }
                    other => panic!("{id}: {other}"),
                }
            }
            (acked, unavailable)
        })
    };
    eventually("the load under way", async || {
        (sink.received().len() > 50).then_some(())
    })
    .await;
    // Away until the load meets it (a restart alone can be quicker than the
    // next request on a busy machine), then back on the same port and store.
    nats.stop();
    eventually("a request answered 503 while NATS is away", async || {
        (refused.load(Ordering::Acquire) > 0).then_some(())
    })
    .await;
    nats.resume();
    let before = sink.received().len();
    eventually("events flowing again after the restart", async || {
        (sink.received().len() > before + 50).then_some(())
    })
    .await;
    sending.store(false, Ordering::Release);
    let (acked, unavailable) = sender.await.expect("the sender");
    assert!(
        unavailable > 0,
        "NATS was away for a while: some requests were refused"
    );
    eventually(
        &format!("all {} acknowledged events delivered", acked.len()),
        async || {
            let taken: HashSet<String> = sink
                .received()
                .iter()
                .filter_map(|r| r.header("ce-id").map(str::to_string))
                .collect();
            acked.iter().all(|id| taken.contains(id)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_stream_deleted_by_hand_is_made_again_and_events_flow_again() {
    let nats = NatsServer::start();
    let (broker, sink, token) = flowing(&nats, &[], "before").await;

    let client = async_nats::connect(nats.url.as_str())
        .await
        .expect("connects");
    async_nats::jetstream::new(client)
        .delete_stream("MB_BROKERS_team-a")
        .await
        .expect("the namespace's stream deleted");
    // Until the stream and the Trigger's consumer are back, an event may be
    // refused (503) or find no consumer yet: send new ones until one arrives.
    let mut attempt = 0;
    eventually("events delivered again", async || {
        attempt += 1;
        let id = format!("after-{attempt}");
        let reply = note(&broker, &token, &id, "{}").await;
        assert!([202, 503].contains(&reply.status), "{}", reply.text);
        let again = sink
            .received()
            .iter()
            .any(|r| r.header("ce-id").is_some_and(|i| i.starts_with("after-")));
        again.then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_triggers_changed_retries_reach_its_consumer_and_events_still_flow() {
    let nats = NatsServer::start();
    let broker = on_jetstream(&nats, &[]).await;
    provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    let spec = |retry: u32| json!({"broker": "default", "subscriber": {"uri": sink.url}, "delivery": {"retry": retry}});
    let created = trigger(&broker, "team-a", "retrying", spec(1)).await;
    let consumer = format!(
        "trigger-{}",
        created["metadata"]["uid"].as_str().expect("a uid")
    );
    let max_deliver = async || -> Option<i64> {
        let details = consumer_details(&nats).await;
        let ours = details.iter().find(|c| c["name"] == consumer.as_str())?;
        ours["config"]["max_deliver"].as_i64()
    };
    eventually("the consumer made with 1 retry", async || {
        (max_deliver().await == Some(1 + 1 + 5)).then_some(())
    })
    .await;
    let path = format!("{}/retrying", triggers("team-a"));
    let mut object = broker.admin().find(&path).await.expect("the Trigger");
    object["spec"] = spec(10);
    let replaced = broker.admin().put(&path, &object).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    eventually("the consumer updated to 10 retries", async || {
        (max_deliver().await == Some(10 + 1 + 5)).then_some(())
    })
    .await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "after").await;
    sink.wait_for(1).await;
}

/// The messages a stream holds now (its `/jsz` page).
async fn stream_messages(nats: &NatsServer, stream: &str) -> Option<u64> {
    let url = format!("{}/jsz?streams=true", nats.monitor());
    let jsz: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    jsz["account_details"][0]["stream_detail"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == stream)?["state"]["messages"]
        .as_u64()
}

/// Streams keep events by limits and meshbroker purges what every consumer
/// acknowledged: what one Trigger has not taken stays, and it comes when the
/// Trigger's subscriber answers again.
#[tokio::test]
async fn acknowledged_events_are_purged_and_what_a_trigger_still_needs_is_kept() {
    let nats = NatsServer::start();
    let (broker, sink, token) = flowing(&nats, &[], "first").await;
    for id in ["a1", "a2"] {
        assert_eq!(note(&broker, &token, id, "{}").await.status, 202);
    }
    sink.wait_for(3).await;
    let stream = "MB_BROKERS_team-a";
    eventually("every acknowledged event purged", async || {
        (stream_messages(&nats, stream).await == Some(0)).then_some(())
    })
    .await;
    let slow = Sink::start().await;
    slow.answer(&[503], "down");
    trigger(
        &broker,
        "team-a",
        "slow",
        json!({"broker": "default", "subscriber": {"uri": slow.url},
               "delivery": {"retry": 100, "backoffPolicy": "linear", "backoffDelay": "PT1S"}}),
    )
    .await;
    for id in ["b1", "b2", "b3"] {
        assert_eq!(note(&broker, &token, id, "{}").await.status, 202);
    }
    sink.wait_for(6).await;
    eventually(
        "the slow Trigger's events kept, the rest purged",
        async || {
            let refused = slow.received().iter().filter(|r| r.status == 503).count();
            (refused >= 3 && stream_messages(&nats, stream).await == Some(3)).then_some(())
        },
    )
    .await;
    slow.answer(&[200], "");
    eventually(
        "the slow Trigger's events delivered, none lost",
        async || {
            let taken: HashSet<String> = slow
                .received()
                .iter()
                .filter(|r| r.status == 200)
                .filter_map(|r| r.header("ce-id").map(str::to_string))
                .collect();
            (taken == HashSet::from(["b1", "b2", "b3"].map(String::from))).then_some(())
        },
    )
    .await;
    eventually("purged once the slow Trigger has them", async || {
        (stream_messages(&nats, stream).await == Some(0)).then_some(())
    })
    .await;
}
