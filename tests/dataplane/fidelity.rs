//! Events arrive as they were sent: data byte for byte in every combination of
//! ingress mode and delivery format, Content-Type as sent, the implied
//! `application/json`, and only what a Broker may add (`knativearrivaltime`,
//! `knativebrokerttl`, the trace context beside the event).

use std::collections::BTreeMap;

use serde_json::json;
use serde_json::value::RawValue;

use crate::common::Broker;
use crate::common::mesh::*;
use crate::common::sink::{Received, Sink};

/// JSON data that a parse-and-re-encode would change: a number beyond f64,
/// a trailing zero, unsorted keys and spacing.
const DATA: &str = r#"{"z": [1.50, 2],"big":12345678901234567890123, "a":{"orderId":"1"}}"#;

/// A mesh with two catch-all Triggers: one delivering in binary mode, one in
/// structured mode.
async fn two_formats() -> (Broker, String, Sink, Sink) {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let binary_sink = Sink::start().await;
    let structured_sink = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "binary",
        json!({"subscriber": {"uri": binary_sink.url}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "structured",
        json!({"subscriber": {"uri": structured_sink.url},
        "delivery": {"format": "json"}}),
    )
    .await;
    (broker, token, binary_sink, structured_sink)
}

fn by_id<'a>(received: &'a [Received], id: &str) -> &'a Received {
    received
        .iter()
        .find(|r| r.header("ce-id") == Some(id) || member(r, "id").as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no delivery of {id}"))
}

/// A member of a structured delivery exactly as its JSON text was written.
fn raw_member(received: &Received, name: &str) -> Option<String> {
    let members: BTreeMap<String, &RawValue> = serde_json::from_slice(&received.body).ok()?;
    members.get(name).map(|raw| raw.get().to_string())
}

fn member(received: &Received, name: &str) -> Option<String> {
    let text = raw_member(received, name)?;
    serde_json::from_str(&text).ok()
}

fn structured(id: &str, extra: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/s","type":"note.taken"{extra},"data":{DATA}}}"#
    )
}

#[tokio::test]
async fn data_arrives_byte_for_byte_in_every_ingress_mode_and_delivery_format() {
    let (broker, token, binary_sink, structured_sink) = two_formats().await;
    let mut headers = binary("bin", "note.taken");
    headers.retain(|(n, _)| n != "content-type");
    headers.push(("content-type".into(), "application/json".into()));
    assert_eq!(
        post(&broker, "/commerce/events", &token, &headers, DATA)
            .await
            .status,
        202
    );
    let as_structured = structured_mode();
    let body = structured("str", r#","datacontenttype":"application/json""#);
    assert_eq!(
        post(&broker, "/commerce/events", &token, &as_structured, &body)
            .await
            .status,
        202
    );
    let as_batch = vec![(
        "content-type".to_string(),
        "application/cloudevents-batch+json".to_string(),
    )];
    let body = format!(
        "[{}]",
        structured("bat", r#","datacontenttype":"application/json""#)
    );
    assert_eq!(
        post(&broker, "/commerce/events", &token, &as_batch, &body)
            .await
            .status,
        202
    );
    let legacy = format!(
        r#"{{"event-type":"note.taken","event-type-version":"v1","event-id":"8d1f1e0c-8a6d-4c33-9d57-2a3c0a0e7b11","event-time":"2026-11-28T10:00:00Z","data":{DATA}}}"#
    );
    let json_body = vec![("content-type".to_string(), "application/json".to_string())];
    assert_eq!(
        post(&broker, "/commerce/v1/events", &token, &json_body, &legacy)
            .await
            .status,
        200
    );

    let ids = ["bin", "str", "bat", "8d1f1e0c-8a6d-4c33-9d57-2a3c0a0e7b11"];
    let binary_got = binary_sink.wait_for(ids.len()).await;
    let structured_got = structured_sink.wait_for(ids.len()).await;
    for id in ids {
        let delivered = by_id(&binary_got, id);
        assert_eq!(
            std::str::from_utf8(&delivered.body).ok(),
            Some(DATA),
            "{id} in binary mode"
        );
        assert_eq!(
            delivered.header("content-type"),
            Some("application/json"),
            "{id}"
        );
        let delivered = by_id(&structured_got, id);
        assert_eq!(
            raw_member(delivered, "data").as_deref(),
            Some(DATA),
            "{id} in structured mode"
        );
        assert_eq!(raw_member(delivered, "data_base64"), None, "{id}");
    }
}

/// The largest event the ingress takes goes through every delivery mode's
/// store (JetStream's default 1 MiB message could not hold it with its
/// headers, nor in structured mode with base64).
#[tokio::test]
async fn the_largest_event_arrives_whole_in_both_delivery_formats() {
    let (broker, token, binary_sink, structured_sink) = two_formats().await;
    // `--max-event-bytes`' default, all of it data.
    let data = "x".repeat(1 << 20);
    let mut headers = binary("largest", "note.taken");
    headers.retain(|(n, _)| n != "content-type");
    headers.push(("content-type".into(), "application/octet-stream".into()));
    let sent = post(&broker, "/commerce/events", &token, &headers, &data).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let delivered = &binary_sink.wait_for(1).await[0];
    assert_eq!(delivered.body.len(), data.len());
    assert_eq!(
        delivered.header("content-type"),
        Some("application/octet-stream")
    );
    let delivered = &structured_sink.wait_for(1).await[0];
    assert_eq!(member(delivered, "data").map(|d| d.len()), Some(data.len()));
}

#[tokio::test]
async fn content_type_travels_as_sent_not_percent_encoded() {
    let (broker, token, binary_sink, structured_sink) = two_formats().await;
    let cases = [
        ("charset", "application/json; charset=utf-8", DATA),
        (
            "multipart",
            "multipart/mixed; boundary=\"b1\"",
            "--b1\r\n\r\npart\r\n--b1--",
        ),
    ];
    for (id, content_type, body) in cases {
        let mut headers = binary(id, "note.taken");
        headers.retain(|(n, _)| n != "content-type");
        headers.push(("content-type".into(), content_type.into()));
        assert_eq!(
            post(&broker, "/commerce/events", &token, &headers, body)
                .await
                .status,
            202
        );
    }
    let binary_got = binary_sink.wait_for(cases.len()).await;
    let structured_got = structured_sink.wait_for(cases.len()).await;
    for (id, content_type, body) in cases {
        let delivered = by_id(&binary_got, id);
        assert_eq!(delivered.header("content-type"), Some(content_type), "{id}");
        assert_eq!(&delivered.body[..], body.as_bytes(), "{id}");
        let delivered = by_id(&structured_got, id);
        assert_eq!(
            member(delivered, "datacontenttype").as_deref(),
            Some(content_type),
            "{id}"
        );
    }
    let multipart = by_id(&structured_got, "multipart");
    assert_eq!(
        member(multipart, "data").as_deref(),
        Some(cases[1].2),
        "text data stays text"
    );
}

#[tokio::test]
async fn an_event_without_data_is_delivered_with_a_length_of_zero() {
    // RFC 9110 §8.6: a POST normally says Content-Length even for no content;
    // some servers answer one without it with 411.
    let (broker, token, binary_sink, _) = two_formats().await;
    let mut headers = binary("empty", "note.taken");
    headers.retain(|(n, _)| n != "content-type");
    let sent = post(&broker, "/commerce/events", &token, &headers, "").await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let delivered = binary_sink.wait_for(1).await;
    let delivered = by_id(&delivered, "empty");
    assert!(delivered.body.is_empty());
    assert_eq!(delivered.header("content-length"), Some("0"));
}

#[tokio::test]
async fn structured_data_without_datacontenttype_is_delivered_as_application_json() {
    let (broker, token, binary_sink, structured_sink) = two_formats().await;
    let headers = structured_mode();
    assert_eq!(
        post(
            &broker,
            "/commerce/events",
            &token,
            &headers,
            &structured("implied", "")
        )
        .await
        .status,
        202
    );
    let delivered = binary_sink.wait_for(1).await;
    assert_eq!(
        delivered[0].header("content-type"),
        Some("application/json")
    );
    assert_eq!(std::str::from_utf8(&delivered[0].body).ok(), Some(DATA));
    let delivered = structured_sink.wait_for(1).await;
    assert_eq!(
        raw_member(&delivered[0], "datacontenttype"),
        None,
        "no attribute is made up"
    );
    assert_eq!(raw_member(&delivered[0], "data").as_deref(), Some(DATA));
}

#[tokio::test]
async fn ingress_stamps_knativearrivaltime() {
    let (broker, token, binary_sink, structured_sink) = two_formats().await;
    let before = jiff::Timestamp::now();
    let mut headers = binary("arrived", "note.taken");
    headers.push((
        "ce-knativearrivaltime".into(),
        "2001-01-01T00:00:00Z".into(),
    ));
    assert_eq!(
        post(&broker, "/commerce/events", &token, &headers, "{}")
            .await
            .status,
        202
    );
    let delivered = binary_sink.wait_for(1).await;
    let stamped: jiff::Timestamp = delivered[0]
        .header("ce-knativearrivaltime")
        .expect("knativearrivaltime")
        .parse()
        .expect("an RFC 3339 time");
    assert!(
        stamped >= before && stamped <= jiff::Timestamp::now(),
        "{stamped}"
    );
    let delivered = structured_sink.wait_for(1).await;
    assert!(member(&delivered[0], "knativearrivaltime").is_some());
}

/// A TTL of zero or less is refused (the event has no hops left); one that
/// is no integer at all is the sender's mistake, not a loop, and is reset to
/// the mesh's own, as Knative's TTL defaulter does.
#[tokio::test]
async fn a_knativebrokerttl_that_is_not_positive_is_refused_and_one_that_is_no_number_reset() {
    let (broker, token, binary_sink, _) = two_formats().await;
    let namespace = namespace_token(&broker, "team-a", "sender").await;
    for (ttl, status) in [("0", 400), ("-1", 400), ("many", 202), ("3", 202)] {
        let mut headers = binary(&format!("ttl{ttl}"), "note.taken");
        headers.push(("ce-knativebrokerttl".into(), ttl.into()));
        let reply = post(&broker, "/commerce/events", &token, &headers, "{}").await;
        assert_eq!(reply.status, status, "TTL {ttl}: {}", reply.text);
        if status == 400 {
            assert!(reply.text.contains("knativebrokerttl"), "{}", reply.text);
            let reply = crate::common::eventually("the namespace token to be known", async || {
                let reply = post(&broker, "/team-a/default", &namespace, &headers, "{}").await;
                (reply.status != 401).then_some(reply)
            })
            .await;
            assert_eq!(reply.status, 400, "at the Broker too: {}", reply.text);
        }
    }
    let delivered = binary_sink.wait_for(2).await;
    let ttl_of = |id: &str| {
        delivered
            .iter()
            .find(|d| d.header("ce-id") == Some(id))
            .and_then(|d| d.header("ce-knativebrokerttl"))
    };
    assert_eq!(ttl_of("ttl3"), Some("3"));
    assert_eq!(ttl_of("ttlmany"), Some("255"));
}

#[tokio::test]
async fn trace_context_reaches_every_delivery_and_replies_continue_it() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let processor = Sink::start().await;
    processor.reply_with_event("reply-1", "/processor", "order.processed");
    let audit = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "process",
        json!({"filter": {"attributes": {"type": "order.created"}},
        "subscriber": {"uri": processor.url}}),
    )
    .await;
    trigger(
        &broker,
        "team-a",
        "audit",
        json!({"filter": {"attributes": {"type": "order.processed"}},
        "subscriber": {"uri": audit.url}}),
    )
    .await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let trace = [
        ("traceparent", traceparent),
        ("tracestate", "meshbroker=t1"),
    ];
    let reply = send_order_with(&broker, &token, "traced", &trace).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let first = processor.wait_for(1).await;
    assert_eq!(first[0].header("traceparent"), Some(traceparent));
    assert_eq!(first[0].header("tracestate"), Some("meshbroker=t1"));
    let replies = audit.wait_for(1).await;
    assert_eq!(replies[0].header("ce-id"), Some("reply-1"));
    assert_eq!(
        replies[0].header("traceparent"),
        Some(traceparent),
        "the reply continues its cause's trace"
    );
}
