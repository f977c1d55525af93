//! `/metrics` on the control listener describes the events listener: every answer
//! by route template and status (refusals and unknown paths included), and how long
//! deliveries took, by outcome.

use reqwest::Method;
use serde_json::json;

use crate::common::mesh::*;
use crate::common::sink::Sink;
use crate::common::{Broker, eventually};

#[tokio::test]
async fn events_listener_answers_are_counted_by_route_template_and_status() {
    let broker = Broker::start_with(&["--max-event-bytes", "2048"]).await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sink = catch_all(&broker, "team-a").await;

    assert_eq!(send_order(&broker, &token, "counted").await.status, 202);
    let mut no_id = binary("x", "order.created");
    no_id.retain(|(n, _)| n != "ce-id");
    let invalid = post(&broker, "/commerce/events", &token, &no_id, "{}").await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    let stranger = post(
        &broker,
        "/commerce/events",
        "not-a-token",
        &binary("1", "t"),
        "{}",
    )
    .await;
    assert_eq!(stranger.status, 401, "{}", stranger.text);
    let unknown = post(
        &broker,
        "/nobody/events",
        &broker.admin_token,
        &binary("1", "t"),
        "{}",
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let too_large = post(
        &broker,
        "/commerce/events",
        &token,
        &binary("1", "t"),
        &"x".repeat(4096),
    )
    .await;
    assert_eq!(too_large.status, 413, "{}", too_large.text);
    let get = request(&broker, Method::GET, "/commerce/events", &token).await;
    assert_eq!(get.status, 405, "{}", get.text);
    // No route takes this path: the fallback answers, and the raw path must not
    // become a label value (callers could create any number of them).
    let nowhere = broker
        .http
        .post(format!("{}/no/such/route-1234", broker.events))
        .send()
        .await
        .expect("events request");
    assert_eq!(nowhere.status(), 404);

    let text = broker.metrics().await;
    for (route, method, status) in [
        ("/{application}/events", "POST", 202),
        ("/{application}/events", "POST", 400),
        ("/{application}/events", "POST", 401),
        ("/{application}/events", "POST", 404),
        ("/{application}/events", "POST", 413),
        ("/{application}/events", "GET", 405),
        ("unmatched", "POST", 404),
    ] {
        let line = format!(
            r#"meshbroker_http_requests_total{{listener="events",route="{route}",method="{method}",status="{status}"}} 1"#
        );
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    assert!(
        !text.contains("route-1234"),
        "an unknown path is not a label value:\n{text}"
    );

    sink.wait_for(1).await;
    eventually("the delivery to be timed", async || {
        let text = broker.metrics().await;
        text.contains(r#"meshbroker_delivery_duration_seconds_count{outcome="delivered"} 1"#)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_dead_lettered_delivery_is_timed_under_its_outcome() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    sink.answer(&[400], "no thanks");
    let dead = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "refusing",
        json!({"subscriber": {"uri": sink.url},
            "delivery": {"retry": 2, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    assert_eq!(send_order(&broker, &token, "refused").await.status, 202);
    dead.wait_for(1).await;
    let text = eventually("the dead-lettered delivery to be timed", async || {
        let text = broker.metrics().await;
        text.contains(r#"meshbroker_delivery_duration_seconds_count{outcome="dead_lettered"} 1"#)
            .then_some(text)
    })
    .await;
    assert!(
        text.contains(r#"meshbroker_delivery_duration_seconds_count{outcome="delivered"} 0"#),
        "a refused event is not counted delivered:\n{text}"
    );
}
