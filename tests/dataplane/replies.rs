//! Replies as Knative defines them: a reply that cannot be taken fails the
//! delivery (retried, then dead-lettered), a Subscription's replies go to its
//! `spec.reply`, and subscribers that are our own Brokers or Channels are handed
//! events in process (they would refuse an HTTP delivery without a credential).

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::common::fixtures::{INTEGRATION, channels, subscriptions};
use crate::common::mesh::*;
use crate::common::sink::{Received, Sink};
use crate::common::{Broker, eventually};

fn extension<'a>(received: &'a Received, name: &str) -> Option<&'a str> {
    received.header(&format!("ce-{name}"))
}

fn error_data(received: &Received) -> String {
    let encoded = extension(received, "knativeerrordata").unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A Trigger on `default` in team-a taking order.created, retried twice, with a
/// dead-letter sink.
async fn replying_trigger(broker: &Broker, subscriber: &Sink, dead: &Sink) {
    trigger(
        broker,
        "team-a",
        "replier",
        json!({"filter": {"attributes": {"type": "order.created"}},
        "subscriber": {"uri": subscriber.url},
        "delivery": {"retry": 2, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
}

/// A Trigger `answers` in team-a for the events whose attributes are
/// `attributes`: where replies show up.
async fn answers(broker: &Broker, attributes: serde_json::Value) -> Sink {
    let answers = Sink::start().await;
    trigger(
        broker,
        "team-a",
        "answers",
        json!({"filter": {"attributes": attributes}, "subscriber": {"uri": answers.url}}),
    )
    .await;
    answers
}

#[tokio::test]
async fn a_malformed_reply_fails_the_delivery_which_is_retried_then_dead_lettered() {
    let batch = r#"[{"specversion":"1.0","id":"r1","source":"/s","type":"t"}]"#;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("ce-specversion", "1.0"), ("ce-type", "t")], "{}"),
        // A batch is no reply (Knative's Broker answers it with a 502 too).
        (
            &[("content-type", "application/cloudevents-batch+json")],
            batch,
        ),
        (
            &[("content-type", "application/cloudevents+json")],
            r#"{"specversion":"1.0","id":"#,
        ),
        // A reply is checked as ingress checks events: no control characters.
        (
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "r%0Aforged"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ],
            "{}",
        ),
        // A compressed reply is never read: its bytes would go on as the data.
        (
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "r1"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
                ("content-type", "text/plain"),
                ("content-encoding", "gzip"),
            ],
            "\u{1f}\u{8b} as if compressed",
        ),
    ];
    for (headers, body) in cases {
        let broker = Broker::start().await;
        let token = provisioned(&broker, &["team-a"]).await;
        let subscriber = Sink::start().await;
        subscriber.reply_with(headers, body);
        let dead = Sink::start().await;
        replying_trigger(&broker, &subscriber, &dead).await;
        send_order(&broker, &token, "o1").await;
        let dead_letters = dead.wait_for(1).await;
        assert_eq!(
            subscriber.count(),
            3,
            "one attempt and two retries for {body:?}"
        );
        assert_eq!(
            extension(&dead_letters[0], "knativeerrorcode"),
            Some("502"),
            "{body:?}"
        );
        assert_eq!(dead_letters[0].header("ce-id"), Some("o1"));
        assert_eq!(
            dead_letters[0].header("prefer"),
            None,
            "no reply is asked of a dead-letter sink"
        );
        assert!(!error_data(&dead_letters[0]).is_empty(), "says why");
        assert_eq!(
            extension(&dead_letters[0], "knativeerrordest"),
            Some(subscriber.url.as_str()),
            "the subscriber gave the bad answer"
        );
    }
}

/// "A recipient MAY reply to any HTTP POST with a `200` response to indicate
/// that the event was processed successfully, with or without a response
/// payload": a payload in no CloudEvents encoding is no reply, and the
/// delivery is done at the first attempt.
#[tokio::test]
async fn a_200_whose_body_is_no_event_is_a_delivery_without_reply() {
    let big = "x".repeat(2 << 20);
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("content-type", "text/plain")], "OK"),
        (
            &[("content-type", "application/json")],
            r#"{"status":"ok"}"#,
        ),
        (&[], &big),
    ];
    for (headers, body) in cases {
        let broker = Broker::start().await;
        let token = provisioned(&broker, &["team-a"]).await;
        let subscriber = Sink::start().await;
        subscriber.reply_with(headers, body);
        let dead = Sink::start().await;
        replying_trigger(&broker, &subscriber, &dead).await;
        send_order(&broker, &token, "o1").await;
        // Counted once it is over: a failed first attempt would be retried
        // and end dead-lettered, never delivered.
        eventually("the delivery to be done", async || {
            let text = broker.metrics().await;
            text.contains(r#"meshbroker_delivery_duration_seconds_count{outcome="delivered"} 1"#)
                .then_some(())
        })
        .await;
        assert_eq!(
            subscriber.count(),
            1,
            "one attempt for {}",
            &body[..body.len().min(20)]
        );
        assert_eq!(dead.count(), 0);
    }
}

#[tokio::test]
async fn an_answer_over_a_mebibyte_keeps_its_status_and_is_no_reply() {
    let big = format!(
        r#"{{"specversion":"1.0","data":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    // (status, attempts, knativeerrorcode): a 400 is not retried however large
    // its page; a 200 that large cannot be a reply, so it fails like one.
    for (status, attempts, code) in [(400, 1, "400"), (200, 3, "502")] {
        let broker = Broker::start().await;
        let token = provisioned(&broker, &["team-a"]).await;
        let subscriber = Sink::start().await;
        subscriber.answer(&[status], &big);
        subscriber.reply_with(&[("content-type", "application/cloudevents+json")], &big);
        let dead = Sink::start().await;
        replying_trigger(&broker, &subscriber, &dead).await;
        send_order(&broker, &token, "o1").await;
        let dead_letters = dead.wait_for(1).await;
        assert_eq!(subscriber.count(), attempts, "status {status}");
        assert_eq!(
            extension(&dead_letters[0], "knativeerrorcode"),
            Some(code),
            "status {status}"
        );
    }
}

#[tokio::test]
async fn an_empty_2xx_is_a_delivery_without_reply() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let subscriber = Sink::start().await;
    let dead = Sink::start().await;
    replying_trigger(&broker, &subscriber, &dead).await;
    send_order(&broker, &token, "o1").await;
    subscriber.wait_for(1).await;
    send_order(&broker, &token, "o2").await;
    subscriber.wait_for(2).await;
    assert_eq!(dead.count(), 0);
}

/// HTTP binding §3: the media type decides the mode, and a structured message
/// "MAY include the same HTTP headers as defined for the binary mode": the
/// reply is the event in the body, not one made of the headers.
#[tokio::test]
async fn a_structured_reply_with_ce_headers_is_the_event_in_its_body() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let answers = answers(&broker, json!({"source": "/replier"})).await;
    let subscriber = Sink::start().await;
    let body = json!({"specversion": "1.0", "id": "from-body", "source": "/replier",
        "type": "reply.body", "datacontenttype": "application/json", "data": {"r": 3}});
    subscriber.reply_with(
        &[
            ("content-type", "application/cloudevents+json"),
            ("ce-specversion", "1.0"),
            ("ce-id", "from-headers"),
            ("ce-source", "/replier"),
            ("ce-type", "reply.headers"),
        ],
        &body.to_string(),
    );
    let dead = Sink::start().await;
    replying_trigger(&broker, &subscriber, &dead).await;
    send_order(&broker, &token, "o1").await;
    let got = answers.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("from-body"));
    assert_eq!(got[0].header("ce-type"), Some("reply.body"));
    let data: serde_json::Value = serde_json::from_slice(&got[0].body).expect("JSON data");
    assert_eq!(data, json!({"r": 3}), "the body's data");
    assert_eq!(subscriber.count(), 1, "taken at the first attempt");
    assert_eq!(dead.count(), 0);
}

#[tokio::test]
async fn only_a_200_carries_a_reply_not_a_202_or_204() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let answers = answers(&broker, json!({"type": "note.answered"})).await;
    let mut subscribers = Vec::new();
    for status in [200, 202, 204] {
        let subscriber = Sink::start().await;
        subscriber.answer(&[status], "");
        let id = format!("from-{status}");
        subscriber.reply_with_event(&id, "/p", "note.answered");
        trigger(
            &broker,
            "team-a",
            &format!("replier-{status}"),
            json!({"filter": {"attributes": {"type": "order.created"}},
            "subscriber": {"uri": subscriber.url}}),
        )
        .await;
        subscribers.push(subscriber);
    }
    send_order(&broker, &token, "o1").await;
    for subscriber in &subscribers {
        subscriber.wait_for(1).await;
    }
    answers.wait_for(1).await;
    // Sent after every subscriber answered: a reply wrongly taken from the 202
    // or 204 would have entered the Broker before it.
    let token = namespace_token(&broker, "team-a", "sender").await;
    eventually("the marker to be accepted", async || {
        let reply = post(
            &broker,
            "/team-a/default",
            &token,
            &binary("marker", "note.answered"),
            "{}",
        )
        .await;
        (reply.status == 202).then_some(())
    })
    .await;
    let got = answers.wait_for(2).await;
    let ids: Vec<_> = got.iter().filter_map(|r| r.header("ce-id")).collect();
    assert_eq!(
        ids,
        ["from-200", "marker"],
        "only the 200's reply is routed"
    );
}

/// Two places per subscriber (memory delivery; durable.rs has the durable
/// case): a replier never overflows (one event in delivery, the next
/// waiting), while a stalled Trigger holds two replies and its Broker refuses
/// the rest.
async fn two_places_a_subscriber() -> Broker {
    Broker::start_with(&[
        "--delivery",
        "memory",
        "--subscriber-queue",
        "2",
        "--subscriber-concurrency",
        "1",
    ])
    .await
}

/// The only Trigger for replies of type `ty`, stalled: its queue fills and
/// the Broker refuses further replies.
async fn stalled_trigger(broker: &Broker, ty: &str) -> Sink {
    let stalled = Sink::start().await;
    stalled.delay(Duration::from_secs(6));
    trigger(
        broker,
        "team-a",
        "stalled",
        json!({"filter": {"attributes": {"type": ty}},
        "subscriber": {"uri": stalled.url}}),
    )
    .await;
    stalled
}

#[tokio::test]
async fn a_reply_its_broker_refuses_fails_the_delivery() {
    let broker = two_places_a_subscriber().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let subscriber = Sink::start().await;
    subscriber.reply_with_event("r", "/p", "order.processed");
    let dead = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "replier",
        json!({"filter": {"attributes": {"type": "order.created"}},
        "subscriber": {"uri": subscriber.url},
        "delivery": {"retry": 0, "deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    let stalled = stalled_trigger(&broker, "order.processed").await;
    let sent = 4;
    for i in 0..sent {
        assert_eq!(
            send_order(&broker, &token, &format!("o{i}")).await.status,
            202
        );
        subscriber.wait_for(i + 1).await;
    }
    let refused = dead.wait_for(1).await;
    assert_eq!(extension(&refused[0], "knativeerrorcode"), Some("429"));
    assert!(
        error_data(&refused[0]).contains("Broker team-a/default is overloaded"),
        "{}",
        error_data(&refused[0])
    );
    assert_eq!(
        extension(&refused[0], "knativeerrordest"),
        Some(format!("{}/team-a/default", broker.events).as_str()),
        "the Broker refused the reply, as Knative's dispatcher names it"
    );
    // Nothing is lost: every cause's reply reached the stalled Trigger, or the
    // cause was dead-lettered.
    eventually("every event accounted for", async || {
        (stalled.count() + dead.count() == sent).then_some(())
    })
    .await;
}

/// The same for a Subscription whose `spec.reply` is our own Broker: the dead
/// letter names the Broker's address, not the subscriber that answered 200.
#[tokio::test]
async fn a_subscription_reply_its_broker_refuses_names_the_broker() {
    let broker = two_places_a_subscriber().await;
    provisioned(&broker, &["team-a"]).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    let subscriber = Sink::start().await;
    subscriber.reply_with_event("answer", "/p", "note.answered");
    let dead = Sink::start().await;
    let _stalled = stalled_trigger(&broker, "note.answered").await;
    channel_in_team_a(&broker, "questions").await;
    subscription_in_team_a(
        &broker,
        "s",
        json!({"channel": channel_ref("questions"),
        "subscriber": {"uri": subscriber.url}, "reply": {"ref": default_broker_ref()},
        "delivery": {"retry": 0, "deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    post_when_token_known(&broker, "/channels/team-a/questions", &token, "q0").await;
    subscriber.wait_for(1).await;
    for i in 1..4 {
        let sent = post(
            &broker,
            "/channels/team-a/questions",
            &token,
            &binary(&format!("q{i}"), "note.taken"),
            "{}",
        )
        .await;
        assert_eq!(sent.status, 202, "{}", sent.text);
        subscriber.wait_for(i + 1).await;
    }
    let refused = dead.wait_for(1).await;
    assert_eq!(extension(&refused[0], "knativeerrorcode"), Some("429"));
    assert_eq!(
        extension(&refused[0], "knativeerrordest"),
        Some(format!("{}/team-a/default", broker.events).as_str())
    );
}

#[tokio::test]
async fn a_subscription_sends_its_subscribers_replies_to_spec_reply() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    let subscriber = Sink::start().await;
    subscriber.reply_with_event("answer", "/p", "note.answered");
    let replies = Sink::start().await;
    let via_broker = Sink::start().await;
    channel_in_team_a(&broker, "questions").await;
    subscription_in_team_a(
        &broker,
        "to-uri",
        json!({"channel": channel_ref("questions"),
        "subscriber": {"uri": subscriber.url}, "reply": {"uri": replies.url}}),
    )
    .await;
    subscription_in_team_a(
        &broker,
        "to-broker",
        json!({"channel": channel_ref("questions"),
        "subscriber": {"uri": subscriber.url}, "reply": {"ref": default_broker_ref()}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "answers",
        json!({"filter": {"attributes": {"type": "note.answered"}},
        "subscriber": {"uri": via_broker.url}}),
    )
    .await;
    post_when_token_known(&broker, "/channels/team-a/questions", &token, "q1").await;
    let got = replies.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("answer"));
    assert_eq!(
        got[0].header("prefer"),
        None,
        "a reply URL's answer goes nowhere, so no reply is asked of it"
    );
    assert_eq!(subscriber.received()[0].header("prefer"), Some("reply"));
    let got = via_broker.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("answer"));
}

#[tokio::test]
async fn a_reply_destination_that_fails_fails_the_delivery() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    let subscriber = Sink::start().await;
    subscriber.reply_with_event("answer", "/p", "note.answered");
    let replies = Sink::start().await;
    replies.answer(&[503], "down");
    let dead = Sink::start().await;
    channel_in_team_a(&broker, "questions").await;
    subscription_in_team_a(
        &broker,
        "s",
        json!({"channel": channel_ref("questions"),
        "subscriber": {"uri": subscriber.url}, "reply": {"uri": replies.url},
        "delivery": {"retry": 1, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    post_when_token_known(&broker, "/channels/team-a/questions", &token, "q1").await;
    let dead_letters = dead.wait_for(1).await;
    assert_eq!(dead_letters[0].header("ce-id"), Some("q1"));
    assert_eq!(extension(&dead_letters[0], "knativeerrorcode"), Some("503"));
    assert_eq!(
        extension(&dead_letters[0], "knativeerrordest"),
        Some(replies.url.as_str()),
        "the reply URL refused"
    );
    assert_eq!(subscriber.count(), 2, "the cause is retried");
}

#[tokio::test]
async fn subscribers_that_are_our_own_brokers_and_channels_get_events_in_process() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let end = Sink::start().await;
    let dead = Sink::start().await;
    channel_in_team_a(&broker, "relay").await;
    // Application event → Trigger → Channel relay → Subscription → Broker default
    // again, one TTL hop further → Trigger "end".
    trigger(
        &broker,
        "team-a",
        "to-channel",
        json!({
        "filters": [{"cesql": "type = 'order.created' AND knativebrokerttl = 255"}],
        "subscriber": {"ref": channel_ref("relay")},
        "delivery": {"deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    subscription_in_team_a(
        &broker,
        "relay-to-broker",
        json!({"channel": channel_ref("relay"),
        "subscriber": {"ref": default_broker_ref()}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "end",
        json!({
        "filters": [{"cesql": "knativebrokerttl = 254"}],
        "subscriber": {"uri": end.url}}),
    )
    .await;
    send_order(&broker, &token, "o1").await;
    let got = end.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("o1"));
    assert_eq!(got[0].header("ce-knativebrokerttl"), Some("254"));
    assert_eq!(dead.count(), 0, "no 401 from our own Channel");
}

#[tokio::test]
async fn references_into_another_namespace_are_refused_when_written() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a", "team-b"]).await;
    let token = namespace_token(&broker, "team-a", "team-a").await;
    let mut elsewhere = default_broker_ref();
    elsewhere["namespace"] = json!("team-b");
    let destination = json!({"ref": elsewhere});
    let cases = [
        (
            "triggers",
            json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"},
            "spec": {"broker": "default", "subscriber": destination}}),
            "spec.subscriber.ref.namespace",
        ),
        (
            "triggers",
            json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"},
            "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/"},
                     "delivery": {"deadLetterSink": destination}}}),
            "spec.delivery.deadLetterSink.ref.namespace",
        ),
        (
            "subscriptions",
            json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": "s"},
            "spec": {"channel": channel_ref("c"), "subscriber": destination}}),
            "spec.subscriber.ref.namespace",
        ),
        (
            "subscriptions",
            json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": "s"},
            "spec": {"channel": channel_ref("c"), "subscriber": {"uri": "http://127.0.0.1:9/"}, "reply": destination}}),
            "spec.reply.ref.namespace",
        ),
        (
            "brokers",
            json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "b"},
            "spec": {"delivery": {"deadLetterSink": destination}}}),
            "spec.delivery.deadLetterSink.ref.namespace",
        ),
        (
            "channels",
            json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "c"},
            "spec": {"delivery": {"deadLetterSink": destination}}}),
            "spec.delivery.deadLetterSink.ref.namespace",
        ),
    ];
    for (plural, body, field) in cases {
        let group = if plural == "triggers" || plural == "brokers" {
            "eventing.knative.dev"
        } else {
            "messaging.knative.dev"
        };
        let path = format!("/apis/{group}/v1/namespaces/team-a/{plural}");
        for who in [broker.admin(), broker.with_token(&token)] {
            let reply = who.create(&path, &body).await;
            assert_eq!(reply.status, 422, "{plural}: {}", reply.text);
            assert_eq!(
                reply.body["details"]["causes"][0]["field"], field,
                "{}",
                reply.text
            );
        }
    }
}

#[tokio::test]
async fn only_an_applications_channel_crosses_namespaces_in_the_routing_table() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let theirs = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "victim",
        json!({"subscriber": {"uri": theirs.url}}),
    )
    .await;
    // An administrator may write a Subscription from the integration namespace
    // into team-a (as the provisioner does), but only an Application's Channel
    // with a live instance is routed across; this plain Channel is not.
    let body = json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": "side-door"}, "spec": {}});
    assert_eq!(broker.admin().create(&channels(), &body).await.status, 201);
    ready(&broker, &format!("{}/side-door", channels())).await;
    let mut target = default_broker_ref();
    target["namespace"] = json!("team-a");
    let body = json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": "smuggle"},
        "spec": {"channel": channel_ref("side-door"), "subscriber": {"ref": target}}});
    let reply = broker.admin().create(&subscriptions(), &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    // Once its status is written, the routing table has seen it.
    eventually("the Subscription's status", async || {
        let object = broker
            .admin()
            .find(&format!("{}/smuggle", subscriptions()))
            .await?;
        object["status"]["conditions"]
            .as_array()
            .filter(|c| !c.is_empty())
            .map(|_| ())
    })
    .await;
    let admin = broker.admin_token.clone();
    let path = format!("/channels/{INTEGRATION}/side-door");
    let reply = post(
        &broker,
        &path,
        &admin,
        &binary("smuggled", "note.taken"),
        "{}",
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    // A control event through team-a's own door arrives; the smuggled one never does.
    let own = namespace_token(&broker, "team-a", "team-a").await;
    post_when_token_known(&broker, "/team-a/default", &own, "control").await;
    let got = theirs.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("control"));
    assert_eq!(
        theirs.count(),
        1,
        "the plain Channel did not reach team-a's Broker"
    );
}
#[tokio::test]
async fn a_dead_letter_sink_that_is_our_own_broker_gets_the_event_in_process() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let failing = Sink::start().await;
    failing.answer(&[400], "no");
    let dead_letters = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "fails",
        json!({"filter": {"attributes": {"type": "order.created"}},
        "subscriber": {"uri": failing.url},
        "delivery": {"deadLetterSink": {"ref": default_broker_ref()}}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "dead-letters",
        json!({"filter": {"attributes": {"knativeerrorcode": "400"}},
        "subscriber": {"uri": dead_letters.url}}),
    )
    .await;
    send_order(&broker, &token, "o1").await;
    let got = dead_letters.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("o1"));
    assert_eq!(
        extension(&got[0], "knativeerrordest"),
        Some(failing.url.as_str())
    );
}
