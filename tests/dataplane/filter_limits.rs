//! What a CESQL filter may cost: an expression over a size limit is refused when
//! its Trigger is written; filtering even the largest event against the most
//! adversarial pattern allowed does not hold up the server; and an evaluation
//! that goes over a limit does not match, and is counted.

use serde_json::json;

use crate::common::fixtures::triggers;
use crate::common::mesh::*;
use crate::common::sink::Sink;
use crate::common::{Broker, Reply, eventually};

/// A structured-mode event with a large `subject`, sent by the Application.
async fn send_with_subject(broker: &Broker, token: &str, id: &str, subject: &str) -> Reply {
    let event = json!({
        "specversion": "1.0", "id": id, "source": "/sender", "type": "order.probe",
        "subject": subject, "datacontenttype": "application/json", "data": {},
    });
    post(
        broker,
        "/commerce/events",
        token,
        &[("content-type".into(), "application/cloudevents+json".into())],
        &event.to_string(),
    )
    .await
}

/// A Trigger's spec delivering to `sink` in structured mode: a large subject
/// would not fit in an HTTP header.
fn to(sink: &Sink, filters: serde_json::Value) -> serde_json::Value {
    json!({"subscriber": {"uri": sink.url}, "delivery": {"format": "json"}, "filters": filters})
}

/// The ids of the events `sink` received.
fn ids(sink: &Sink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON event");
            event["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn an_expression_over_a_size_limit_is_refused_naming_the_field_and_the_limit() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let cases = [
        // The issue's CONCAT with 3000 arguments.
        (
            format!("CONCAT({}) = ''", vec!["subject"; 3000].join(", ")),
            "the limit is 8192 bytes",
        ),
        // The issue's 20,000-character LIKE pattern.
        (
            format!("subject LIKE '{}b'", "%a".repeat(10_000)),
            "the limit is 8192 bytes",
        ),
        (
            format!("{}TRUE", "NOT ".repeat(100)),
            "nested more than 64 levels deep",
        ),
        (
            format!("id IN ({})", vec!["1"; 1100].join(",")),
            "more than 1024 operands",
        ),
    ];
    for (i, (expression, limit)) in cases.iter().enumerate() {
        let body = json!({
            "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": format!("costly-{i}")},
            "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/"},
                "filters": [{"cesql": expression}]},
        });
        let reply = broker.admin().create(&triggers("team-a"), &body).await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        let cause = &reply.body["details"]["causes"][0];
        assert_eq!(cause["field"], "spec.filters[0].cesql", "{}", reply.text);
        let message = cause["message"].as_str().unwrap_or_default();
        assert!(message.contains(limit), "{limit:?} not in {message:?}");
        assert!(reply.message().contains(limit), "{}", reply.text);
    }
}

#[tokio::test]
async fn filtering_the_largest_event_against_adversarial_patterns_does_not_stall_the_server() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let matching = Sink::start().await;
    let others = Sink::start().await;
    // The backtracking matcher took pattern × text steps for each of these:
    // about 5 × 10⁸ against this subject, per Trigger and event, far beyond any
    // deadline; with linear matching they take a few passes over the subject.
    let run = "a".repeat(8_150);
    let specs = [
        ("long-literal", format!("subject LIKE 'a%{run}b%'"), &others),
        (
            "long-literal-found",
            format!("subject LIKE 'a%{run}%'"),
            &matching,
        ),
        (
            "wildcards",
            format!("subject LIKE '{}%b%'", "%a_".repeat(2_700)),
            &others,
        ),
        (
            "wildcard-segment",
            format!("subject LIKE '%{}b%'", "a_".repeat(31)),
            &others,
        ),
    ];
    for (name, expression, sink) in &specs {
        // Every Trigger also takes the marker event, below.
        let filter = json!([{"any": [{"exact": {"id": "marker"}}, {"cesql": expression}]}]);
        trigger(&broker, "team-a", name, to(sink, filter)).await;
    }
    // Close to the longest attribute binary mode carries (60 KiB of `ce-`
    // header text in all).
    let subject = "a".repeat(60_000);
    // As many events at once as the machine has cores, and then some: each
    // keeps a runtime thread busy while it is filtered.
    let sends = (0..4).map(|i| {
        let (broker, token, subject) = (&broker, &token, &subject);
        async move { send_with_subject(broker, token, &format!("big-{i}"), subject).await }
    });
    let health = async {
        broker
            .http
            .get(format!("{}/healthz", broker.control))
            .send()
            .await
            .expect("/healthz answers within the deadline while events are filtered")
            .status()
    };
    let (replies, health) = tokio::join!(futures::future::join_all(sends), health);
    assert_eq!(health, 200);
    for reply in replies {
        assert_eq!(reply.status, 202, "{}", reply.text);
    }
    let events_health = broker
        .http
        .get(format!("{}/healthz", broker.events))
        .send()
        .await
        .expect("the events listener's /healthz answers");
    assert_eq!(events_health.status(), 200);

    matching.wait_for(4).await;
    // A later event every Trigger takes proves the big ones are not still on
    // their way to the others.
    assert_eq!(
        send_with_subject(&broker, &token, "marker", "b")
            .await
            .status,
        202
    );
    others.wait_for(3).await;
    assert_eq!(
        ids(&others),
        ["marker"; 3],
        "the big events match none of the three others"
    );
    assert!(
        !broker
            .metrics()
            .await
            .contains("meshbroker_filter_errors_total{"),
        "no adversarial pattern went over a limit"
    );
}

#[tokio::test]
async fn a_concat_over_the_string_limit_does_not_match_and_is_counted() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let everything = Sink::start().await;
    let concat = Sink::start().await;
    let everything_spec = to(&everything, json!([{"prefix": {"type": "order."}}]));
    trigger(&broker, "team-a", "everything", everything_spec).await;
    // Twenty copies of a 60,000-byte subject would be 1.2 MB: over the 1 MiB limit.
    let copies = vec!["subject"; 20].join(", ");
    let concat_spec = to(
        &concat,
        json!([{"not": {"cesql": format!("CONCAT({copies}) = ''")}}]),
    );
    trigger(&broker, "team-a", "concat", concat_spec).await;

    let reply = send_with_subject(&broker, &token, "blow-up", &"s".repeat(60_000)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    everything.wait_for(1).await;
    let counted = eventually("the filter error to be counted", async || {
        let text = broker.metrics().await;
        text.contains(r#"meshbroker_filter_errors_total{reason="string_length"} 1"#)
            .then_some(text)
    })
    .await;
    assert!(
        !counted.contains(r#"reason="work""#),
        "only the string limit was hit:\n{counted}"
    );
    // A small event passes the same filter, and proves the big one is not
    // still on its way: even under `not`, an undecided filter does not match.
    assert_eq!(
        send_with_subject(&broker, &token, "small", "s")
            .await
            .status,
        202
    );
    concat.wait_for(1).await;
    assert_eq!(ids(&concat), ["small"]);
    assert!(
        broker
            .log()
            .contains("a CESQL filter went over a limit; the event does not match the Trigger"),
        "the error is logged"
    );
}
