//! A Broker's live tail (`…/brokers/{name}/tail`): what arrives at the Broker,
//! which Triggers each event passes, and how each delivery ended — the same in
//! every delivery mode; only for the administrator and the Broker's namespace.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fixtures::*;
use crate::common::mesh::*;
use crate::common::sink::Sink;
use crate::common::{Broker, eventually};

/// An open tail: its lines as JSON, read as they come.
struct Tail {
    response: reqwest::Response,
    buffered: Vec<u8>,
}

impl Tail {
    async fn open(broker: &Broker, namespace: &str, token: &str) -> Self {
        let url = format!("{}{}/default/tail", broker.control, brokers(namespace));
        // A token just made is known to the listener a moment later.
        let response = eventually("the tail to open with a new token", async || {
            let response = broker
                .http
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .expect("tail request");
            (response.status() == 200).then_some(response)
        })
        .await;
        assert_eq!(response.headers()["content-type"], "application/x-ndjson");
        let mut tail = Self {
            response,
            buffered: Vec::new(),
        };
        let first = tail.next().await;
        assert_eq!(first["type"], "TAILING", "{first}");
        tail
    }

    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffered.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                return serde_json::from_slice(&line).expect("a JSON line");
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("a tail line within the deadline")
                .expect("the tail goes on")
                .expect("the tail is not over");
            self.buffered.extend_from_slice(&chunk);
        }
    }

    /// Lines until every one of `wanted` (type, trigger) was seen; all of them.
    async fn until(&mut self, wanted: &[(&str, &str)]) -> Vec<Value> {
        let mut seen = Vec::new();
        while !wanted.iter().all(|(ty, trigger)| {
            seen.iter()
                .any(|l: &Value| l["type"] == *ty && l.get("trigger").is_none_or(|t| t == trigger))
        }) {
            seen.push(self.next().await);
        }
        seen
    }
}

#[tokio::test]
async fn the_tail_shows_arrivals_their_triggers_and_how_each_delivery_ended() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    let failing = Sink::start().await;
    failing.answer(&[500; 8], "out of stock");
    let dead = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "orders",
        json!({
        "filter": {"attributes": {"type": "order.created"}},
        "subscriber": {"uri": sink.url}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "stock",
        json!({
        "filters": [{"cesql": "type = 'order.created' AND id LIKE 'o-%'"}],
        "subscriber": {"uri": failing.url},
        "delivery": {"retry": 0, "deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "notes",
        json!({
        "filter": {"attributes": {"type": "note.taken"}},
        "subscriber": {"uri": sink.url}}),
    )
    .await;
    let namespace_token = namespace_token(&broker, "team-a", "viewer").await;
    let mut tail = Tail::open(&broker, "team-a", &namespace_token).await;

    assert_eq!(send_order(&broker, &token, "o-1").await.status, 202);
    let lines = tail
        .until(&[
            ("RECEIVED", ""),
            ("DELIVERED", "orders"),
            ("DEAD_LETTERED", "stock"),
        ])
        .await;
    let received = lines
        .iter()
        .find(|l| l["type"] == "RECEIVED")
        .expect("received");
    assert_eq!(
        received["via"],
        format!("channel {INTEGRATION}/{APPLICATION}"),
        "{received}"
    );
    assert_eq!(received["event"]["id"], "o-1");
    assert_eq!(received["event"]["data"], json!({"orderId": "1"}));
    let mut matched: Vec<&str> = received["triggers"]
        .as_array()
        .expect("triggers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    matched.sort();
    assert_eq!(matched, ["orders", "stock"], "notes filters it out");
    let delivered = lines
        .iter()
        .find(|l| l["type"] == "DELIVERED")
        .expect("delivered");
    assert_eq!(delivered["id"], "o-1");
    assert_eq!(delivered["status"], 200);
    let dead_lettered = lines
        .iter()
        .find(|l| l["type"] == "DEAD_LETTERED")
        .expect("dead-lettered");
    assert_eq!(dead_lettered["knativeerrorcode"], 500);
    assert_eq!(dead_lettered["knativeerrordest"], failing.url);
    assert_eq!(dead_lettered["sink"], dead.url);
    dead.wait_for(1).await;

    // The Broker's own ingress, seen as such.
    let reply = post(
        &broker,
        "/team-a/default",
        &namespace_token,
        &binary("n-1", "note.taken"),
        "{}",
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let lines = tail
        .until(&[("RECEIVED", ""), ("DELIVERED", "notes")])
        .await;
    let received = lines
        .iter()
        .find(|l| l["type"] == "RECEIVED")
        .expect("received");
    assert_eq!(received["via"], "ingress");
    assert_eq!(received["triggers"], json!(["notes"]));
}

#[tokio::test]
async fn only_the_administrator_and_the_brokers_namespace_may_tail_it() {
    let broker = Broker::start().await;
    let application_token = provisioned(&broker, &["team-a", "team-b"]).await;
    let other = namespace_token(&broker, "team-b", "other").await;
    let tail = async |token: String, path: String| {
        let reply = broker.with_token(&token).get(&path).await;
        (reply.status, reply.body)
    };
    let team_a = format!("{}/default/tail", brokers("team-a"));
    let (status, body) = tail(other.clone(), team_a.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("team-a")),
        "{body}"
    );
    let (status, body) = tail(application_token, team_a.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = tail("wrong".into(), team_a).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = tail(other.clone(), format!("{}/nope/tail", brokers("team-b"))).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = tail(other, format!("{}/default/tail", triggers("team-b"))).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("only Brokers")),
        "{body}"
    );
    // The administrator may tail any Broker.
    Tail::open(&broker, "team-b", &broker.admin_token).await;
}
