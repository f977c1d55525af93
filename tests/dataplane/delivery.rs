//! Delivery: which statuses are retried, the backoff between attempts, the
//! dead-letter sink and its extensions, and structured mode on request.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::common::Broker;
use crate::common::mesh::*;
use crate::common::sink::Sink;

async fn mesh_with(spec: serde_json::Value) -> (Broker, String) {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    trigger(&broker, "team-a", "t", spec).await;
    (broker, token)
}

#[tokio::test]
async fn retryable_statuses_are_retried_until_delivered() {
    for status in [404, 408, 409, 429, 500, 503] {
        let sink = Sink::start().await;
        sink.answer(&[status, status, 200], "busy");
        let (broker, token) = mesh_with(json!({"subscriber": {"uri": sink.url},
            "delivery": {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.01S"}}))
        .await;
        send_order(&broker, &token, "r").await;
        let got = sink.wait_for(3).await;
        assert!(
            got.iter().all(|r| r.header("ce-id") == Some("r")),
            "status {status}"
        );
    }
}

#[tokio::test]
async fn other_client_errors_are_not_retried_and_go_to_the_dead_letter_sink() {
    for status in [400, 401, 403, 422] {
        let sink = Sink::start().await;
        sink.answer(&[status], "no thanks");
        let dead = Sink::start().await;
        let (broker, token) = mesh_with(json!({"subscriber": {"uri": sink.url},
            "delivery": {"retry": 5, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dead.url}}})).await;
        send_order(&broker, &token, "once").await;
        let dead_letters = dead.wait_for(1).await;
        assert_eq!(sink.count(), 1, "status {status} is not retried");
        assert_eq!(
            dead_letters[0]
                .header("knativeerrorcode")
                .or(dead_letters[0].header("ce-knativeerrorcode")),
            Some(status.to_string().as_str())
        );
    }
}

#[tokio::test]
async fn the_dead_letter_sink_gets_the_event_with_error_extensions() {
    let sink = Sink::start().await;
    sink.answer(&[500], "database down");
    let dead = Sink::start().await;
    let (broker, token) = mesh_with(json!({"subscriber": {"uri": sink.url},
        "delivery": {"retry": 2, "backoffPolicy": "exponential", "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dead.url}}})).await;
    send_order(&broker, &token, "doomed").await;
    let got = dead.wait_for(1).await;
    assert_eq!(sink.count(), 3, "the first attempt and two retries");
    let letter = &got[0];
    assert_eq!(letter.header("ce-id"), Some("doomed"));
    assert_eq!(
        letter.header("ce-knativeerrordest"),
        Some(sink.url.as_str())
    );
    assert_eq!(letter.header("ce-knativeerrorcode"), Some("500"));
    let data = letter.header("ce-knativeerrordata").expect("error data");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    assert_eq!(decoded, b"database down");
    assert_eq!(
        &letter.body[..],
        br#"{"orderId":"1"}"#,
        "the event's data unchanged"
    );
}

#[tokio::test]
async fn an_unreachable_subscriber_is_retried_then_dead_lettered() {
    let dead = Sink::start().await;
    let closed = "http://127.0.0.1:9/nobody-listens";
    let (broker, token) = mesh_with(json!({"subscriber": {"uri": closed},
        "delivery": {"retry": 1, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dead.url}}}))
    .await;
    // An event dead-lettered before, sent again: its old error attributes go.
    let stale = [
        ("ce-knativeerrorcode", "999"),
        ("ce-knativeerrordata", "b2xk"),
    ];
    let sent = send_order_with(&broker, &token, "lost", &stale).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let got = dead.wait_for(1).await;
    assert_eq!(got[0].header("ce-knativeerrordest"), Some(closed));
    assert!(
        got[0].header("ce-knativeerrorcode").is_none(),
        "no status: the connection failed"
    );
    assert_ne!(got[0].header("ce-knativeerrordata"), Some("b2xk"));
}

#[tokio::test]
async fn backoff_waits_between_attempts() {
    // Linear waits backoffDelay each time, exponential doubles it (Knative's
    // control-plane spec); that linear does not grow is a unit test in
    // mesh/dispatch/retry.rs, as an upper bound on a wait is no black-box test.
    for (policy, second) in [("linear", 290), ("exponential", 590)] {
        let sink = Sink::start().await;
        sink.answer(&[503, 503, 200], "");
        let (broker, token) = mesh_with(json!({"subscriber": {"uri": sink.url},
            "delivery": {"retry": 3, "backoffPolicy": policy, "backoffDelay": "PT0.3S"}}))
        .await;
        send_order(&broker, &token, "slow").await;
        let got = sink.wait_for(3).await;
        let first_gap = got[1].at - got[0].at;
        let second_gap = got[2].at - got[1].at;
        assert!(
            first_gap >= Duration::from_millis(290),
            "{policy}: 300 ms first, got {first_gap:?}"
        );
        assert!(
            second_gap >= Duration::from_millis(second),
            "{policy}: at least {second} ms second, got {second_gap:?}"
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_its_maximum() {
    let sink = Sink::start().await;
    sink.answer(&[429, 200], "");
    let (broker, token) = mesh_with(json!({"subscriber": {"uri": sink.url},
        "delivery": {"retry": 2, "backoffDelay": "PT0.01S", "retryAfterMax": "PT0.5S"}}))
    .await;
    // The sink sends no Retry-After; a 429 with one is covered by unit tests.
    send_order(&broker, &token, "r").await;
    sink.wait_for(2).await;
}

#[tokio::test]
async fn a_trigger_can_ask_for_structured_mode() {
    let sink = Sink::start().await;
    let (broker, token) =
        mesh_with(json!({"subscriber": {"uri": sink.url}, "delivery": {"format": "json"}})).await;
    send_order(&broker, &token, "structured").await;
    let got = sink.wait_for(1).await;
    assert_eq!(
        got[0].header("content-type"),
        Some("application/cloudevents+json")
    );
    let event: serde_json::Value = serde_json::from_slice(&got[0].body).expect("a JSON event");
    assert_eq!(event["id"], "structured");
    assert_eq!(event["source"], "commerce");
    assert_eq!(event["data"], json!({"orderId": "1"}));
}
