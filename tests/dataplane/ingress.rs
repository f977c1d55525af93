//! The ingress: every mode, every error path, legacy conversion, schema checks
//! and access.

use reqwest::Method;
use serde_json::json;

use crate::common::Broker;
use crate::common::fixtures::*;
use crate::common::mesh::*;
use crate::common::sink::Sink;

async fn with_sink() -> (Broker, String, Sink) {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sink = catch_all(&broker, "team-a").await;
    (broker, token, sink)
}

#[tokio::test]
async fn an_application_event_reaches_a_triggered_subscriber_unchanged() {
    let (broker, token, sink) = with_sink().await;
    let mut headers = binary("order-1", "order.created");
    headers.push(("ce-eventtypeversion".into(), "v1".into()));
    headers.push(("ce-subject".into(), "caf%C3%A9 order".into()));
    let reply = post(
        &broker,
        "/commerce/events",
        &token,
        &headers,
        r#"{"orderId": "1", "total":9.5}"#,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let got = sink.wait_for(1).await;
    let event = &got[0];
    assert_eq!(event.header("ce-id"), Some("order-1"));
    assert_eq!(event.header("ce-type"), Some("order.created"));
    assert_eq!(
        event.header("ce-source"),
        Some("commerce"),
        "source is the Application"
    );
    assert_eq!(
        event.header("ce-subject"),
        Some("caf%C3%A9%20order"),
        "decoded, then encoded again on the way out"
    );
    assert_eq!(event.header("ce-eventtypeversion"), Some("v1"));
    assert_eq!(event.header("content-type"), Some("application/json"));
    assert_eq!(event.header("prefer"), Some("reply"));
    assert_eq!(
        event.header("accept-encoding"),
        Some("identity"),
        "a compressed reply would be refused"
    );
    assert_eq!(
        &event.body[..],
        br#"{"orderId": "1", "total":9.5}"#,
        "data byte for byte"
    );
}

/// Knative's conformance (`knconf.AcceptsCEVersions`) sends 0.3 and 1.0 to a
/// Broker's ingress; a 0.3 event goes on as 1.0 (`schemaurl` → `dataschema`,
/// base64 `datacontentencoding` decoded).
#[tokio::test]
async fn cloudevents_0_3_is_accepted_at_a_broker_and_delivered_as_1_0() {
    let (broker, _, sink) = with_sink().await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    let headers: Vec<(String, String)> = [
        ("ce-specversion", "0.3"),
        ("ce-id", "v03-binary"),
        ("ce-source", "http://example.com/source"),
        ("ce-type", "order.created"),
        ("ce-schemaurl", "http://example.com/schema"),
        ("content-type", "text/json"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let reply = post(&broker, "/team-a/default", &token, &headers, r#""hello""#).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let encoded: Vec<(String, String)> = [
        ("ce-specversion", "0.3"),
        ("ce-id", "v03-encoded"),
        ("ce-source", "/x"),
        ("ce-type", "order.created"),
        ("ce-datacontentencoding", "base64"),
        ("content-type", "text/plain"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let reply = post(&broker, "/team-a/default", &token, &encoded, "aGVsbG8=").await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let structured = json!({"specversion": "0.3", "id": "v03-structured", "source": "/x",
        "type": "order.created", "datacontenttype": "text/plain",
        "datacontentencoding": "base64", "data": "aGVsbG8="});
    let headers = structured_mode();
    let reply = post(
        &broker,
        "/team-a/default",
        &token,
        &headers,
        &structured.to_string(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let got = sink.wait_for(3).await;
    let by_id = |id: &str| {
        got.iter()
            .find(|r| r.header("ce-id") == Some(id))
            .unwrap_or_else(|| panic!("{id} delivered"))
    };
    let binary = by_id("v03-binary");
    assert_eq!(binary.header("ce-specversion"), Some("1.0"));
    assert_eq!(
        binary.header("ce-dataschema"),
        Some("http://example.com/schema")
    );
    assert_eq!(binary.header("ce-schemaurl"), None);
    assert_eq!(&binary.body[..], br#""hello""#);
    let structured = by_id("v03-structured");
    assert_eq!(structured.header("ce-specversion"), Some("1.0"));
    assert_eq!(structured.header("content-type"), Some("text/plain"));
    assert_eq!(&structured.body[..], b"hello", "base64 decoded");
    let encoded = by_id("v03-encoded");
    assert_eq!(encoded.header("ce-specversion"), Some("1.0"));
    assert_eq!(encoded.header("ce-datacontentencoding"), None);
    assert_eq!(
        &encoded.body[..],
        b"hello",
        "base64 decoded in binary mode too"
    );
}

#[tokio::test]
async fn structured_and_batched_events_are_accepted_too() {
    let (broker, token, sink) = with_sink().await;
    let structured = json!({"specversion": "1.0", "id": "s1", "source": "/x", "type": "order.created", "eventtypeversion": "v1",
        "datacontenttype": "application/json", "data": {"orderId": "2"}});
    let headers = structured_mode();
    let reply = post(
        &broker,
        "/commerce/events",
        &token,
        &headers,
        &structured.to_string(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let batch = json!([
        {"specversion": "1.0", "id": "b1", "source": "/x", "type": "order.cancelled", "data": {"orderId": "3"}},
        {"specversion": "1.0", "id": "b2", "source": "/x", "type": "order.cancelled", "data": {"orderId": "4"}}
    ]);
    let headers = vec![(
        "content-type".to_string(),
        "application/cloudevents-batch+json".to_string(),
    )];
    let reply = post(
        &broker,
        "/commerce/v2/events",
        &token,
        &headers,
        &batch.to_string(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let got = sink.wait_for(3).await;
    let mut ids: Vec<&str> = got.iter().filter_map(|r| r.header("ce-id")).collect();
    ids.sort();
    assert_eq!(ids, vec!["b1", "b2", "s1"]);
    let s1 = got
        .iter()
        .find(|r| r.header("ce-id") == Some("s1"))
        .expect("s1");
    assert_eq!(s1.header("ce-source"), Some("commerce"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&s1.body).expect("json"),
        json!({"orderId": "2"})
    );
}

/// "Intermediaries MUST forward events of a size of 64 KiB or less"
/// (CloudEvents, Size Limits): an event with more attributes, or more
/// attribute text, than binary mode's headers can carry is taken and
/// delivered in structured mode; one that fits goes in binary mode.
#[tokio::test]
async fn an_event_too_large_for_binary_mode_is_taken_and_delivered_structured() {
    let (broker, token, sink) = with_sink().await;
    let event =
        |id: &str| json!({"specversion": "1.0", "id": id, "source": "/s", "type": "order.created"});
    // Four attributes of its own, 87 extensions, and the two the mesh adds:
    // past the 90 binary mode carries.
    let mut many = event("many");
    for i in 0..87 {
        many[format!("x{i}")] = json!("v");
    }
    // 25,000 bytes, but 75,000 once percent-encoded for a header.
    let mut long = event("long");
    long["subject"] = json!(" ".repeat(25_000));
    // 84 extensions: 90 attributes with the mesh's two.
    let mut fits = event("fits");
    for i in 0..84 {
        fits[format!("x{i}")] = json!("v");
    }
    for body in [&many, &long, &fits] {
        let reply = post(
            &broker,
            "/commerce/events",
            &token,
            &structured_mode(),
            &body.to_string(),
        )
        .await;
        assert_eq!(reply.status, 202, "{}", reply.text);
    }
    // The same 62,000-byte subject in binary mode: 62 KB of headers.
    let mut headers = binary("wide", "order.created");
    headers.push(("ce-subject".into(), "s".repeat(62_000)));
    let reply = post(&broker, "/commerce/events", &token, &headers, "{}").await;
    assert_eq!(reply.status, 202, "{}", reply.text);

    let got = sink.wait_for(4).await;
    let delivered = |id: &str| {
        got.iter()
            .find(|r| {
                r.header("ce-id") == Some(id)
                    || serde_json::from_slice::<serde_json::Value>(&r.body)
                        .is_ok_and(|body| body["id"] == id)
            })
            .unwrap_or_else(|| panic!("{id} delivered"))
    };
    for (id, checked, value) in [
        ("many", "x86", json!("v")),
        ("long", "subject", json!(" ".repeat(25_000))),
        // Past the 60 KiB of `ce-` headers binary mode carries.
        ("wide", "subject", json!("s".repeat(62_000))),
    ] {
        let received = delivered(id);
        assert_eq!(
            received.header("content-type"),
            Some("application/cloudevents+json"),
            "{id} in structured mode"
        );
        let body: serde_json::Value = serde_json::from_slice(&received.body).expect("JSON");
        assert_eq!(body[checked], value, "{id}");
    }
    assert_eq!(delivered("fits").header("ce-x83"), Some("v"), "binary mode");
}

/// A Trigger delivering to another meshbroker Broker's address over HTTP: an
/// event with as many attributes as the first Broker took, and the two the
/// mesh adds, is taken by the second (it goes in structured mode), not
/// refused and dead-lettered.
#[tokio::test]
async fn a_delivery_to_another_broker_is_taken_whatever_its_attributes() {
    let broker = Broker::start_with(&["--anonymous-senders"]).await;
    let token = provisioned(&broker, &["team-a"]).await;
    let second = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
        "metadata": {"name": "second"}, "spec": {}});
    let created = broker.admin().create(&brokers("team-a"), &second).await;
    assert_eq!(created.status, 201, "{}", created.text);
    ready(&broker, &format!("{}/second", brokers("team-a"))).await;
    let sink = Sink::start().await;
    let dead = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "from-second",
        json!({"broker": "second", "subscriber": {"uri": sink.url}}),
    )
    .await;
    let hop = format!("{}/team-a/second", broker.events);
    trigger(
        &broker,
        "team-a",
        "to-second",
        json!({"subscriber": {"uri": hop},
            "delivery": {"retry": 0, "deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    // 86 extensions: 90 attributes as sent, 92 once the mesh stamped its two.
    let mut event =
        json!({"specversion": "1.0", "id": "wide", "source": "/s", "type": "order.created"});
    for i in 0..86 {
        event[format!("x{i}")] = json!("v");
    }
    let reply = post(
        &broker,
        "/commerce/events",
        &token,
        &structured_mode(),
        &event.to_string(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let got = sink.wait_for(1).await;
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("structured");
    assert_eq!(body["id"], "wide");
    assert_eq!(body["x85"], "v");
    assert_eq!(dead.count(), 0, "nothing dead-lettered");
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_a_named_problem() {
    let broker = Broker::start_with(&["--max-event-bytes", "2048"]).await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sink = catch_all(&broker, "team-a").await;

    let get = request(&broker, Method::GET, "/commerce/events", &token).await;
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST, OPTIONS"));
    let options = request(&broker, Method::OPTIONS, "/commerce/events", &token).await;
    assert_eq!(options.status, 204);
    assert_eq!(options.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(options.header("webhook-allowed-origin"), None, "not asked");
    // CloudEvents' webhook validation handshake (HTTP webhook §4): consent
    // for the origin that asks, at any rate.
    let handshake = broker
        .http
        .request(Method::OPTIONS, format!("{}/team-a/default", broker.events))
        .header("WebHook-Request-Origin", "eventemitter.example.com")
        .header("WebHook-Request-Rate", "120")
        .send()
        .await
        .expect("request");
    assert_eq!(handshake.status(), 204);
    let header = |name: &str| {
        handshake
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(
        header("webhook-allowed-origin").as_deref(),
        Some("eventemitter.example.com")
    );
    assert_eq!(header("webhook-allowed-rate").as_deref(), Some("*"));
    assert_eq!(header("allow").as_deref(), Some("POST, OPTIONS"));
    let nowhere = broker
        .http
        .post(format!("{}/a/b/c/d", broker.events))
        .send()
        .await
        .expect("request");
    assert_eq!(nowhere.status(), 404);
    let body: serde_json::Value = nowhere.json().await.expect("a JSON body names it");
    assert_eq!(body["error"], "NotFound", "{body}");

    let mut no_id = binary("x", "order.created");
    no_id.retain(|(n, _)| n != "ce-id");
    let invalid = post(&broker, "/commerce/events", &token, &no_id, "{}").await;
    assert_eq!(invalid.status, 400);
    assert!(invalid.message().contains("id"), "{}", invalid.text);
    let bad_json = post(
        &broker,
        "/commerce/events",
        &token,
        &[("content-type".into(), "application/cloudevents+json".into())],
        "{",
    )
    .await;
    assert_eq!(bad_json.status, 400);
    // A compressed body is not taken as the event's data.
    let mut gzipped = binary("gz", "order.created");
    gzipped.push(("content-encoding".into(), "gzip".into()));
    let refused = post(
        &broker,
        "/commerce/events",
        &token,
        &gzipped,
        "\u{1f}\u{8b}",
    )
    .await;
    assert_eq!(refused.status, 415, "{}", refused.text);
    assert_eq!(refused.header("accept-encoding"), Some("identity"));
    assert_eq!(refused.body["error"], "UnsupportedMediaType");
    let xml = post(
        &broker,
        "/commerce/events",
        &token,
        &[("content-type".into(), "application/cloudevents+xml".into())],
        "<event/>",
    )
    .await;
    assert_eq!(xml.status, 415, "{}", xml.text);
    assert!(xml.message().contains("cloudevents+xml"), "{}", xml.text);
    // A newline in an attribute (CloudEvents' String disallows control
    // characters) would let a sender write lines of its own into the logs.
    let forged = binary("inj%0A2026-12-03T21:00:00Z ERROR forged", "order.created");
    let refused = post(&broker, "/commerce/events", &token, &forged, "{}").await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.message().contains("U+000A"), "{}", refused.text);
    // datacontenttype "MUST adhere to the format specified in RFC 2046", in
    // either mode (binary mode's comes from Content-Type).
    let mut untyped = binary("ct", "order.created");
    untyped.retain(|(n, _)| n != "content-type");
    untyped.push(("content-type".into(), "not a type".into()));
    let structured = serde_json::json!({"specversion": "1.0", "id": "ct2", "source": "/s",
        "type": "order.created", "datacontenttype": "json", "data": {}})
    .to_string();
    for (headers, body) in [
        (untyped, "{}".to_string()),
        (
            vec![("content-type".into(), "application/cloudevents+json".into())],
            structured,
        ),
    ] {
        let refused = post(&broker, "/commerce/events", &token, &headers, &body).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(
            refused.message().contains("datacontenttype") && refused.message().contains("RFC 2046"),
            "{}",
            refused.text
        );
    }

    let unknown = post(
        &broker,
        "/nobody/events",
        &broker.admin_token,
        &binary("1", "t"),
        "{}",
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let foreign = post(&broker, "/nobody/events", &token, &binary("1", "t"), "{}").await;
    assert_eq!(
        foreign.status, 403,
        "another Application's credential learns nothing: {}",
        foreign.text
    );
    let too_large = post(
        &broker,
        "/commerce/events",
        &token,
        &binary("1", "t"),
        &"x".repeat(4096),
    )
    .await;
    assert_eq!(too_large.status, 413);
    assert_eq!(sink.count(), 0, "nothing refused was delivered");
}

#[tokio::test]
async fn the_application_ingress_needs_that_applications_credential() {
    let (broker, token, sink) = with_sink().await;
    let anonymous = broker
        .http
        .post(format!("{}/commerce/events", broker.events))
        .header("ce-specversion", "1.0")
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        post(
            &broker,
            "/commerce/events",
            "not-a-token",
            &binary("1", "t"),
            "{}"
        )
        .await
        .status,
        401
    );
    let namespace = namespace_token(&broker, "team-a", "sender").await;
    let refused = crate::common::eventually("the namespace token to be known", async || {
        let reply = post(
            &broker,
            "/commerce/events",
            &namespace,
            &binary("1", "t"),
            "{}",
        )
        .await;
        (reply.status != 401).then_some(reply)
    })
    .await;
    assert_eq!(
        refused.status, 403,
        "a namespace token is not the Application's credential"
    );
    let other = broker
        .admin()
        .create_yaml(APPLICATIONS, "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\nmetadata:\n  name: other\nspec: {}\n")
        .await;
    let other_token = other.body["status"]["credential"]["token"]
        .as_str()
        .expect("credential")
        .to_string();
    let wrong = crate::common::eventually("the other credential to be known", async || {
        let reply = post(
            &broker,
            "/commerce/events",
            &other_token,
            &binary("1", "t"),
            "{}",
        )
        .await;
        (reply.status != 401).then_some(reply)
    })
    .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(send_order(&broker, &token, "ok").await.status, 202);
    sink.wait_for(1).await;
}

/// An AccessToken an administrator made for an Application in the
/// integration namespace, and its token.
async fn credential_of(broker: &Broker, name: &str, application: &str) -> String {
    access_token(
        broker,
        INTEGRATION,
        name,
        json!({"application": application}),
    )
    .await
}

async fn register(broker: &Broker, name: &str) -> crate::common::Reply {
    let application = format!(
        "apiVersion: applicationconnector.kyma-project.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec: {{}}\n"
    );
    broker.admin().create_yaml(APPLICATIONS, &application).await
}

#[tokio::test]
async fn registering_an_application_neither_takes_anothers_credential_nor_leaves_the_replaced_one_working()
 {
    let (broker, _token, sink) = with_sink().await;
    // An administrator's second credential for commerce, named like an
    // Application registered later.
    let rotated = credential_of(&broker, "ghost", APPLICATION).await;
    crate::common::eventually("the rotated credential to be known", async || {
        (send_order(&broker, &rotated, "by-rotated").await.status == 202).then_some(())
    })
    .await;
    let taken = register(&broker, "ghost").await;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert!(
        taken
            .message()
            .contains("AccessToken kyma-integration/ghost"),
        "{}",
        taken.text
    );
    let ghost = format!("{APPLICATIONS}/ghost");
    assert!(
        broker.admin().find(&ghost).await.is_none(),
        "nothing registered"
    );
    assert_eq!(send_order(&broker, &rotated, "still").await.status, 202);

    // A credential made before its Application is replaced by the one
    // registering issues, before the registration is answered.
    let early = credential_of(&broker, "later", "later").await;
    let registered = register(&broker, "later").await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let issued = registered.body["status"]["credential"]["token"]
        .as_str()
        .expect("credential")
        .to_string();
    let event = binary("1", "t");
    assert_eq!(
        post(&broker, "/later/events", &early, &event, "{}")
            .await
            .status,
        401,
        "the replaced credential"
    );
    crate::common::eventually("the issued credential to be known", async || {
        let reply = post(&broker, "/later/events", &issued, &event, "{}").await;
        (reply.status != 401).then_some(())
    })
    .await;
    let credential = format!("{}/later", access_tokens(INTEGRATION));
    assert_eq!(broker.admin().delete(&credential).await.status, 200);
    for token in [&early, &issued] {
        let reply = post(&broker, "/later/events", token, &event, "{}").await;
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    sink.wait_for(2).await;
}

#[tokio::test]
async fn an_application_created_by_a_put_gets_its_credential_too() {
    let (broker, _token, _sink) = with_sink().await;
    let application = json!({"apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
        "kind": "Application", "metadata": {"name": "put-made"}, "spec": {}});
    let created = broker
        .admin()
        .put(&format!("{APPLICATIONS}/put-made"), &application)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let issued = created.body["status"]["credential"]["token"]
        .as_str()
        .expect("a credential, as a POST gets")
        .to_string();
    crate::common::eventually("the credential to be known", async || {
        let reply = post(
            &broker,
            "/put-made/events",
            &issued,
            &binary("1", "t"),
            "{}",
        )
        .await;
        (reply.status != 401).then_some(())
    })
    .await;
}

#[tokio::test]
async fn legacy_kyma_events_are_converted() {
    let (broker, token, sink) = with_sink().await;
    let legacy = json!({"event-type": "order.created", "event-type-version": "v1", "event-time": "2026-11-28T10:00:00Z", "data": {"orderId": "9"}});
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    let reply = post(
        &broker,
        "/commerce/v1/events",
        &token,
        &headers,
        &legacy.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.body["event-id"]
        .as_str()
        .expect("event-id")
        .to_string();
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some(id.as_str()));
    assert_eq!(got[0].header("ce-type"), Some("order.created"));
    assert_eq!(got[0].header("ce-eventtypeversion"), Some("v1"));
    assert_eq!(got[0].header("ce-time"), Some("2026-11-28T10:00:00Z"));
    assert_eq!(got[0].header("ce-source"), Some("commerce"));
    let invalid =
        json!({"event-type": "order.created", "event-time": "2026-11-28T10:00:00Z", "data": {}});
    let reply = post(
        &broker,
        "/commerce/v1/events",
        &token,
        &headers,
        &invalid.to_string(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body["details"][0]["field"], "event-type-version",
        "Kyma's error body: {}",
        reply.text
    );
    assert_eq!(reply.body["details"][0]["type"], "missing_field");
    // A payload the event type's schema refuses: Kyma's error body too.
    let unfit = json!({"event-type": "order.created", "event-type-version": "v1",
        "event-time": "2026-11-28T10:00:00Z", "data": {"total": 1}});
    let reply = post(
        &broker,
        "/commerce/v1/events",
        &token,
        &headers,
        &unfit.to_string(),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.body["status"], 400,
        "Kyma's error body: {}",
        reply.text
    );
    assert_eq!(reply.body["details"][0]["field"], "data");
    assert_eq!(reply.body["details"][0]["type"], "invalid_field");
    assert!(
        reply.body["moreInfo"]
            .as_str()
            .is_some_and(|m| m.contains("orderId")),
        "says what is wrong: {}",
        reply.text
    );
    assert_eq!(sink.count(), 1, "only the valid event was delivered");
    // An event type longer than binary mode's headers carry is taken (and
    // delivered in structured mode).
    let long = json!({"event-type": "a".repeat(70_000), "event-type-version": "v1",
        "event-time": "2026-11-28T10:00:00Z", "data": {"orderId": "9"}});
    let reply = post(
        &broker,
        "/commerce/v1/events",
        &token,
        &headers,
        &long.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let got = sink.wait_for(2).await;
    let body: serde_json::Value = serde_json::from_slice(&got[1].body).expect("structured");
    assert_eq!(body["type"], json!("a".repeat(70_000)));
}

#[tokio::test]
async fn payloads_are_checked_against_the_asyncapi_schema() {
    let (broker, token, sink) = with_sink().await;
    let mut headers = binary("bad", "order.created");
    headers.push(("ce-eventtypeversion".into(), "v1".into()));
    let reply = post(
        &broker,
        "/commerce/events",
        &token,
        &headers,
        r#"{"total": 1}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.message().contains("orderId"),
        "says what is wrong: {}",
        reply.text
    );
    let reply = post(
        &broker,
        "/commerce/events",
        &token,
        &headers,
        r#"{"orderId": 5}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.message().contains("/orderId"),
        "says where: {}",
        reply.text
    );
    // Valid JSON, too deep to check: the answer says why, not "must be JSON".
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let reply = post(&broker, "/commerce/events", &token, &headers, &deep).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.message().contains("recursion limit"),
        "says why: {}",
        reply.text
    );
    let versioned_type = binary("typed", "order.created.v1");
    assert_eq!(
        post(&broker, "/commerce/events", &token, &versioned_type, "[]")
            .await
            .status,
        400,
        "version from the type suffix"
    );
    assert_eq!(send_order(&broker, &token, "good").await.status, 202);
    let unknown_type = binary("free", "order.shipped");
    assert_eq!(
        post(
            &broker,
            "/commerce/events",
            &token,
            &unknown_type,
            "not json"
        )
        .await
        .status,
        202,
        "no schema, no check"
    );
    sink.wait_for(2).await;
}

#[tokio::test]
async fn the_broker_ingress_takes_events_from_its_namespace_only() {
    let (broker, _, sink) = with_sink().await;
    create_namespace(&broker, "team-b").await;
    let team_a = namespace_token(&broker, "team-a", "sender").await;
    let team_b = namespace_token(&broker, "team-b", "sender").await;
    let accepted = crate::common::eventually("the namespace token to be known", async || {
        let reply = post(
            &broker,
            "/team-a/default",
            &team_a,
            &binary("in-ns", "internal.thing"),
            "{}",
        )
        .await;
        (reply.status != 401).then_some(reply)
    })
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let got = sink.wait_for(1).await;
    assert_eq!(
        got[0].header("ce-source"),
        Some("/sender"),
        "the broker ingress keeps the source"
    );
    let foreign = crate::common::eventually("the other token to be known", async || {
        let reply = post(&broker, "/team-a/default", &team_b, &binary("x", "t"), "{}").await;
        (reply.status != 401).then_some(reply)
    })
    .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(
        post(&broker, "/team-a/nothing", &team_a, &binary("x", "t"), "{}")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn an_applications_channel_takes_its_events_only_through_the_application() {
    let (broker, _, sink) = with_sink().await;
    // No namespace token for the integration namespace: its holder could read
    // every Application's events and hand forged ones into their Channels.
    let insider = json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken",
        "metadata": {"name": "insider"}, "spec": {}});
    let refused = broker
        .admin()
        .create(&access_tokens(INTEGRATION), &insider)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("spec.application"),
        "{}",
        refused.text
    );
    // A token of a namespace the Application reaches does not open its Channel.
    let team_a = namespace_token(&broker, "team-a", "outsider").await;
    let refused = crate::common::eventually("the token to be known", async || {
        let reply = post(
            &broker,
            &format!("/channels/{INTEGRATION}/{APPLICATION}"),
            &team_a,
            &binary("x", "t"),
            "{}",
        )
        .await;
        (reply.status != 401).then_some(reply)
    })
    .await;
    assert_eq!(
        refused.status, 403,
        "no way around the credential, source and schema: {}",
        refused.text
    );
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn a_batch_larger_than_a_subscriber_queue_is_413_naming_the_limit() {
    let broker = Broker::start_with(&["--subscriber-queue", "3"]).await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sink = catch_all(&broker, "team-a").await;
    let batch = |n: usize| {
        let events: Vec<_> = (0..n)
            .map(|i| json!({"specversion": "1.0", "id": format!("b{i}"), "source": "/s", "type": "note.taken"}))
            .collect();
        serde_json::to_string(&events).expect("json")
    };
    let headers = vec![(
        "content-type".to_string(),
        "application/cloudevents-batch+json".to_string(),
    )];
    let reply = post(&broker, "/commerce/events", &token, &headers, &batch(4)).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert!(reply.text.contains("at most 3 events"), "{}", reply.text);
    let reply = post(&broker, "/commerce/events", &token, &headers, &batch(3)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    sink.wait_for(3).await;
}

/// A sender without a token: refused by default; let in by the administrator's
/// `--anonymous-senders` into a namespace's Brokers and Channels (Knative: a
/// Ready Broker's address "accepts all valid CloudEvents"), never into the
/// integration namespace, and a token that is sent is still checked.
#[tokio::test]
async fn anonymous_senders_get_in_only_when_the_administrator_lets_them() {
    let anonymous = async |broker: &Broker, path: &str, id: &str| {
        let mut request = broker
            .http
            .post(format!("{}{path}", broker.events))
            .body("{}");
        for (name, value) in binary(id, "order.created") {
            request = request.header(name, value);
        }
        request
            .send()
            .await
            .expect("events request")
            .status()
            .as_u16()
    };

    let closed = Broker::start().await;
    provisioned(&closed, &["team-a"]).await;
    assert_eq!(anonymous(&closed, "/team-a/default", "o0").await, 401);

    let open = Broker::start_with(&["--anonymous-senders"]).await;
    provisioned(&open, &["team-a"]).await;
    let sink = Sink::start().await;
    trigger(
        &open,
        "team-a",
        "orders",
        json!({"filter": {"attributes": {"type": "order.created"}}, "subscriber": {"uri": sink.url}}),
    )
    .await;
    assert_eq!(anonymous(&open, "/team-a/default", "o1").await, 202);
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("o1"));
    let mut console = open
        .http
        .post(format!(
            "{}/console/api/brokers/team-a/default/events",
            open.control
        ))
        .body("{}");
    for (name, value) in binary("o4", "order.created") {
        console = console.header(name, value);
    }
    let console = console.send().await.expect("console request");
    assert_eq!(
        console.status().as_u16(),
        401,
        "the console's copy of the ingress on the control listener stays closed"
    );
    assert_eq!(
        anonymous(
            &open,
            &format!("/channels/{INTEGRATION}/{APPLICATION}"),
            "o2"
        )
        .await,
        401,
        "an Application's Channel takes no anonymous events"
    );
    let forged = post(
        &open,
        "/team-a/default",
        "not-a-token",
        &binary("o3", "order.created"),
        "{}",
    )
    .await;
    assert_eq!(forged.status, 401, "{}", forged.text);
}
