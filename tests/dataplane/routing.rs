//! Where events go: only to namespaces that provisioned the Application, only to
//! Triggers whose filters match, once per Trigger; replies re-enter the Broker.

use serde_json::json;

use crate::common::fixtures::*;
use crate::common::mesh::*;
use crate::common::sink::Sink;
use crate::common::{Broker, eventually};

#[tokio::test]
async fn a_namespace_that_did_not_provision_the_application_receives_nothing() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    create_namespace(&broker, "team-b").await;
    map_commerce(&broker, "team-b", &[]).await;
    // team-b is in the mesh (labelled, with a Broker), but has no instance.
    let path = format!("{NAMESPACES}/team-b");
    let mut namespace = broker.admin().find(&path).await.expect("namespace");
    namespace["metadata"]["labels"] = json!({"knative-eventing-injection": "enabled"});
    assert_eq!(broker.admin().put(&path, &namespace).await.status, 200);
    let mine = Sink::start().await;
    let theirs = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "all",
        json!({"subscriber": {"uri": mine.url}}),
    )
    .await;
    ready(&broker, &format!("{}/default", brokers("team-b"))).await;
    trigger(
        &broker,
        "team-b",
        "all",
        json!({"subscriber": {"uri": theirs.url}}),
    )
    .await;
    // Even a Subscription someone wires by hand does not route without an instance.
    let rogue = json!({
        "apiVersion": "messaging.knative.dev/v1", "kind": "Subscription", "metadata": {"name": "rogue"},
        "spec": {"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "name": APPLICATION},
                 "subscriber": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default", "namespace": "team-b"}}}
    });
    assert_eq!(
        broker.admin().create(&subscriptions(), &rogue).await.status,
        201
    );
    // Its status says so rather than claiming it is added to the Channel.
    let path = format!("{}/rogue", subscriptions());
    let added = eventually("the rogue Subscription's AddedToChannel", async || {
        let object = broker.admin().find(&path).await?;
        let conditions = object["status"]["conditions"].as_array()?.clone();
        conditions
            .into_iter()
            .find(|c| c["type"] == "AddedToChannel" && c["status"] == "False")
    })
    .await;
    assert_eq!(added["reason"], "NotRoutable", "{added}");
    assert!(
        added["message"]
            .as_str()
            .is_some_and(|m| m.contains("team-b")),
        "{added}"
    );
    for i in 0..5 {
        assert_eq!(
            send_order(&broker, &token, &format!("o{i}")).await.status,
            202
        );
    }
    mine.wait_for(5).await;
    assert_eq!(theirs.count(), 0, "team-b holds no instance of commerce");
}

#[tokio::test]
async fn deprovisioning_stops_delivery_to_the_namespace() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a", "team-b"]).await;
    let a = Sink::start().await;
    let b = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "all",
        json!({"subscriber": {"uri": a.url}}),
    )
    .await;
    trigger(
        &broker,
        "team-b",
        "all",
        json!({"subscriber": {"uri": b.url}}),
    )
    .await;
    send_order(&broker, &token, "first").await;
    a.wait_for(1).await;
    b.wait_for(1).await;
    broker
        .osb()
        .deprovision_and_wait("orders-team-b", ORDER_SERVICE, &plan_of(ORDER_SERVICE))
        .await;
    eventually("team-b's route to go", async || {
        send_order(&broker, &token, "probe").await;
        let before = b.count();
        send_order(&broker, &token, "after").await;
        a.wait_for(a.count()).await;
        (b.count() == before).then_some(())
    })
    .await;
}

#[tokio::test]
async fn each_matching_trigger_gets_one_delivery_and_filters_decide() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let sinks = [
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
    ];
    let specs = [
        json!({"filter": {"attributes": {"type": "order.created"}}}),
        json!({"filters": [{"prefix": {"type": "order."}}]}),
        json!({"filters": [{"cesql": "type = 'order.created' AND source = 'commerce'"}]}),
        json!({"filters": [{"not": {"exact": {"type": "order.created"}}}]}),
        json!({"filter": {"attributes": {"type": "order.created"}}, "filters": [{"exact": {"type": "never"}}]}),
    ];
    for (i, (sink, spec)) in sinks.iter().zip(specs).enumerate() {
        let mut spec = spec;
        spec["subscriber"] = json!({"uri": sink.url});
        trigger(&broker, "team-a", &format!("t{i}"), spec).await;
    }
    assert_eq!(send_order(&broker, &token, "once").await.status, 202);
    sinks[0].wait_for(1).await;
    sinks[1].wait_for(1).await;
    sinks[2].wait_for(1).await;
    // A later event proves the earlier one is not still on its way to the others.
    let mut marker = binary("marker", "order.marker");
    marker.push(("ce-eventtypeversion".into(), "v1".into()));
    post(&broker, "/commerce/events", &token, &marker, "{}").await;
    sinks[3].wait_for(1).await;
    assert_eq!(
        sinks[3].received()[0].header("ce-id"),
        Some("marker"),
        "not matched the order"
    );
    for sink in &sinks[..3] {
        assert_eq!(
            sink.received()
                .iter()
                .filter(|r| r.header("ce-id") == Some("once"))
                .count(),
            1,
            "exactly once"
        );
    }
    assert_eq!(sinks[4].count(), 0, "filters override filter");
}

#[tokio::test]
async fn a_reply_re_enters_the_broker_and_the_loop_guard_stops_loops() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let processor = Sink::start().await;
    processor.reply_with(
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "reply-1"),
            ("ce-source", "/processor"),
            ("ce-type", "order.processed"),
            ("content-type", "application/json"),
        ],
        r#"{"ok":true}"#,
    );
    let audit = Sink::start().await;
    trigger(&broker, "team-a", "process", json!({"filter": {"attributes": {"type": "order.created"}}, "subscriber": {"uri": processor.url}})).await;
    trigger(&broker, "team-a", "audit", json!({"filter": {"attributes": {"type": "order.processed"}}, "subscriber": {"uri": audit.url}})).await;
    send_order(&broker, &token, "o1").await;
    let got = audit.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("reply-1"));
    assert_eq!(&got[0].body[..], br#"{"ok":true}"#);
    assert_eq!(
        got[0].header("ce-knativebrokerttl"),
        Some("254"),
        "one step closer to the guard"
    );

    let echo = Sink::start().await;
    echo.reply_with(
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "loop"),
            ("ce-source", "/echo"),
            ("ce-type", "ping"),
            ("content-type", "application/json"),
        ],
        "{}",
    );
    trigger(
        &broker,
        "team-a",
        "echo",
        json!({"filter": {"attributes": {"type": "ping"}}, "subscriber": {"uri": echo.url}}),
    )
    .await;
    let namespace = namespace_token(&broker, "team-a", "pinger").await;
    let mut headers = binary("ping-0", "ping");
    headers.push(("ce-knativebrokerttl".into(), "5".into()));
    eventually("the namespace token to be known", async || {
        (post(&broker, "/team-a/default", &namespace, &headers, "{}")
            .await
            .status
            == 202)
            .then_some(())
    })
    .await;
    echo.wait_for(5).await;
    let metrics = broker.metrics().await;
    eventually("the loop guard to trip", async || {
        let text = broker
            .http
            .get(format!("{}/metrics", broker.control))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains(r#"meshbroker_events_total{outcome="reply_looped"} 1"#)
            .then_some(())
    })
    .await;
    assert_eq!(
        echo.count(),
        5,
        "TTL 5 allows the event and four replies, then stops: {metrics}"
    );
}

#[tokio::test]
async fn trigger_status_says_whether_delivery_works() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let sink = Sink::start().await;
    let ready_trigger = trigger(&broker, "team-a", "ok", json!({
        "subscriber": {"uri": sink.url},
        "delivery": {"deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}}}
    }))
    .await;
    let conditions = ready_trigger["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .clone();
    for condition in [
        "BrokerReady",
        "SubscriberResolved",
        "DeadLetterSinkResolved",
        "Ready",
    ] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == condition && c["status"] == "True"),
            "{condition}: {conditions:?}"
        );
    }
    assert_eq!(ready_trigger["status"]["subscriberUri"], json!(sink.url));
    let body = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "dangling"},
        "spec": {"broker": "missing", "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "x"}}}});
    broker.admin().create(&triggers("team-a"), &body).await;
    let path = format!("{}/dangling", triggers("team-a"));
    let status = eventually("the dangling Trigger's status", async || {
        let object = broker.admin().find(&path).await?;
        object["status"]["conditions"].as_array().cloned()
    })
    .await;
    let get = |t: &str| {
        status
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["status"].clone())
    };
    assert_eq!(get("BrokerReady"), Some(json!("False")));
    assert_eq!(get("SubscriberResolved"), Some(json!("False")));
    assert_eq!(get("Ready"), Some(json!("False")));
    // A kind meshbroker does not serve is read as an Addressable, on a cluster
    // that serves it; here there is none, and the condition says which.
    let why = status
        .iter()
        .find(|c| c["type"] == "SubscriberResolved")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default();
    assert!(why.contains("Service of serving.knative.dev/v1"), "{why}");
}

#[tokio::test]
async fn names_whose_address_would_collide_with_another_route_are_refused() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let body = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "events"}, "spec": {}});
    let reply = broker.admin().create(&brokers("team-a"), &body).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.body["details"]["causes"][0]["field"], "metadata.name",
        "{}",
        reply.text
    );
    let mut application: serde_json::Value =
        serde_saphyr::from_str(&example("order-service.application.yaml")).expect("example");
    application["metadata"]["name"] = json!("channels");
    let reply = broker.admin().create(APPLICATIONS, &application).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(reply.text.contains("/channels/v1/events"), "{}", reply.text);
    // Any other Broker name is served at the address it publishes.
    let body = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "v1"}, "spec": {}});
    assert_eq!(
        broker
            .admin()
            .create(&brokers("team-a"), &body)
            .await
            .status,
        201
    );
    let ready_broker = ready(&broker, &format!("{}/v1", brokers("team-a"))).await;
    let address = ready_broker["status"]["address"]["url"]
        .as_str()
        .expect("address")
        .to_string();
    let sink = Sink::start().await;
    trigger(
        &broker,
        "team-a",
        "on-v1",
        json!({"broker": "v1", "subscriber": {"uri": sink.url}}),
    )
    .await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    let path = address
        .strip_prefix(&broker.events)
        .expect("on the events listener")
        .to_string();
    eventually("the namespace token to be known", async || {
        (post(&broker, &path, &token, &binary("x", "note.taken"), "{}")
            .await
            .status
            == 202)
            .then_some(())
    })
    .await;
    sink.wait_for(1).await;
}
