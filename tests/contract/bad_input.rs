//! Bad input of every kind is refused with a clear error and changes nothing.

use reqwest::Method;
use serde_json::json;

use crate::common::Broker;
use crate::common::fixtures::*;

#[tokio::test]
async fn malformed_bodies_are_400_and_write_nothing() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    for (content_type, body) in [
        ("application/json", b"{not json".to_vec()),
        ("application/yaml", b"key: [unclosed".to_vec()),
        ("application/json", b"[1, 2]".to_vec()),
        ("application/json", Vec::new()),
    ] {
        let reply = admin.post_raw(NAMESPACES, content_type, body.clone()).await;
        assert_eq!(
            reply.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(&body),
            reply.text
        );
        assert_eq!(reply.body["kind"], "Status");
    }
    assert_eq!(
        admin
            .post_raw(NAMESPACES, "text/plain", b"x".to_vec())
            .await
            .status,
        415
    );
    let list = admin.get(NAMESPACES).await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec![INTEGRATION],
        "only the integration namespace exists"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let broker = Broker::start_with(&["--max-body-bytes", "4096"]).await;
    let big = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "big", "annotations": {"x": "y".repeat(8192)}}});
    let reply = broker.admin().create(NAMESPACES, &big).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert!(
        broker
            .admin()
            .find(&format!("{NAMESPACES}/big"))
            .await
            .is_none()
    );
    commerce_in(&broker, &["team-a"]).await;
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["parameters"] = json!({"padding": "z".repeat(8192)});
    let reply = broker.osb().provision("big", &body, true).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert_eq!(broker.osb().fetch("big").await.status, 404);
}

/// A record nested deeper than the JSON parser reads back (in a list, or
/// with a Kubernetes API server's managedFields) could be written and never
/// read again: such a body is refused whole, on the OSB and the resource API.
#[tokio::test]
async fn a_body_nested_deeper_than_records_are_read_back_is_400_and_writes_nothing() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let mut deep = json!(1);
    for _ in 0..110 {
        deep = json!({"a": deep});
    }
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["parameters"] = deep.clone();
    let reply = broker.osb().provision("deep", &body, true).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.text.contains("deeper than 100 levels"),
        "{}",
        reply.text
    );
    assert_eq!(broker.osb().fetch("deep").await.status, 404);

    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "deep"}, "extra": deep});
    let reply = broker.admin().create(NAMESPACES, &namespace).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.message().contains("deeper than 100 levels"),
        "{}",
        reply.text
    );
    assert!(
        broker
            .admin()
            .find(&format!("{NAMESPACES}/deep"))
            .await
            .is_none()
    );
}

/// No listener decodes a content coding: a compressed body is refused for
/// what it is, not read as JSON that is not there (nor, as it once was on the
/// control listener, taken as the plain body it claims not to be).
#[tokio::test]
async fn a_body_in_a_content_coding_is_415_and_writes_nothing() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let admin = broker.admin();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gz"}});
    let create = async |coding: &str| {
        let request = admin
            .request(Method::POST, NAMESPACES)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", coding)
            .body(namespace.to_string());
        admin.send(request, "post", NAMESPACES).await
    };
    let reply = create("gzip").await;
    assert_eq!(reply.status, 415, "{}", reply.text);
    assert_eq!(reply.body["reason"], "UnsupportedMediaType");
    assert_eq!(reply.header("accept-encoding"), Some("identity"));
    assert!(reply.message().contains("gzip"), "{}", reply.text);
    assert!(admin.find(&format!("{NAMESPACES}/gz")).await.is_none());
    // Refused where the body is read, once the caller is known: an anonymous
    // one gets 401, as from the API server, whatever its body.
    let anonymous = broker
        .http
        .post(format!("{}{NAMESPACES}", broker.control))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(namespace.to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status().as_u16(), 401);

    let osb = broker.osb();
    let body = provision_body(ORDER_SERVICE, "team-a");
    let path = "/v2/service_instances/gz?accepts_incomplete=true";
    let template = "/v2/service_instances/{instance_id}";
    let reply = osb
        .send(
            osb.request(Method::PUT, path)
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "deflate, identity")
                .header("X-Broker-API-Request-Identity", "rid-415")
                .body(body.to_string()),
            "put",
            template,
        )
        .await;
    assert_eq!(reply.status, 415, "{}", reply.text);
    assert_eq!(reply.body["error"], "UnsupportedMediaType");
    assert_eq!(reply.header("accept-encoding"), Some("identity"));
    assert_eq!(
        reply.header("x-broker-api-request-identity"),
        Some("rid-415"),
        "echoed as on every OSB answer"
    );
    assert_eq!(osb.fetch("gz").await.status, 404, "nothing recorded");
    // The OSB API's 401 comes first, whatever the body: "MUST return a 401
    // Unauthorized response if the authentication fails".
    let anonymous = broker
        .http
        .put(osb.url(path))
        .header("X-Broker-API-Version", "2.17")
        .header("Content-Encoding", "gzip")
        .body(body.to_string());
    let reply = osb.send(anonymous, "put", template).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    // Identity is no coding at all.
    let reply = create("identity").await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    // A coding names how a body is sent: a request without one is served.
    let path = format!("{NAMESPACES}/gz");
    let read = admin
        .request(Method::GET, &path)
        .header("Content-Encoding", "gzip");
    let reply = admin.send(read, "get", &path).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn malformed_osb_bodies_are_400_naming_the_problem() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let osb = broker.osb();
    let template = "/v2/service_instances/{instance_id}";
    let not_json = osb
        .request(
            reqwest::Method::PUT,
            "/v2/service_instances/x?accepts_incomplete=true",
        )
        .body("{oops");
    let reply = osb.send(not_json, "put", template).await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().contains("JSON"), "{}", reply.text);
    let mut wrong_type = provision_body(ORDER_SERVICE, "team-a");
    wrong_type["service_id"] = json!(42);
    let reply = osb.provision("x", &wrong_type, true).await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().contains("service_id"), "{}", reply.text);
    let mut parameters = provision_body(ORDER_SERVICE, "team-a");
    parameters["parameters"] = json!("not an object");
    assert_eq!(osb.provision("x", &parameters, true).await.status, 400);
    // An array holding the fields in order is no body (serde would take it).
    let as_array = json!([
        ORDER_SERVICE,
        plan_of(ORDER_SERVICE),
        "org",
        "team-a",
        {"platform": "kubernetes", "namespace": "team-a"},
        null,
        null
    ]);
    let reply = osb.provision("x", &as_array, true).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.message().contains("JSON object"), "{}", reply.text);
    // What follows the object makes the body malformed, not the object alone.
    let body = provision_body(ORDER_SERVICE, "team-a").to_string();
    for trailing in ["xyz", "}", ",", "{}"] {
        let followed = osb
            .request(
                reqwest::Method::PUT,
                "/v2/service_instances/x?accepts_incomplete=true",
            )
            .header("content-type", "application/json")
            .body(format!("{body}{trailing}"));
        let reply = osb.send(followed, "put", template).await;
        assert_eq!(reply.status, 400, "{trailing}: {}", reply.text);
        assert!(
            reply.message().contains("after its JSON object"),
            "{}",
            reply.text
        );
    }
    let bad_flag = osb
        .request(
            reqwest::Method::PUT,
            "/v2/service_instances/x?accepts_incomplete=maybe",
        )
        .json(&provision_body(ORDER_SERVICE, "team-a"));
    assert_eq!(osb.send(bad_flag, "put", template).await.status, 400);
    assert_eq!(osb.fetch("x").await.status, 404, "nothing was recorded");
    assert!(
        broker
            .admin()
            .find(&format!("{}/default", brokers("team-a")))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn destination_uris_that_cannot_be_requested_are_422() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let admin = broker.admin();
    for bad in [
        "http://[::1",
        "http://h:1/a b",
        "http://h:1/a\r\nInjected: 1",
        "http://h/\n",
        // A port that is none: taken as no port, it would have dialled 80.
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:0/",
    ] {
        let shapes = [
            (json!({"subscriber": {"uri": bad}}), "spec.subscriber.uri"),
            (
                json!({"subscriber": {"uri": "http://127.0.0.1:9/"}, "delivery": {"deadLetterSink": {"uri": bad}}}),
                "spec.delivery.deadLetterSink.uri",
            ),
        ];
        for (mut spec, field) in shapes {
            spec["broker"] = json!("default");
            let body = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
                "metadata": {"name": "t"}, "spec": spec});
            let reply = admin.create(&triggers("team-a"), &body).await;
            assert_eq!(reply.status, 422, "{bad:?}: {}", reply.text);
            assert_eq!(
                reply.body["details"]["causes"][0]["field"], field,
                "{}",
                reply.text
            );
        }
        let body = json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription",
            "metadata": {"name": "s"}, "spec": {"channel": {"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "name": "c"},
            "subscriber": {"uri": "http://127.0.0.1:9/"}, "reply": {"uri": bad}}});
        let path = "/apis/messaging.knative.dev/v1/namespaces/team-a/subscriptions";
        let reply = admin.create(path, &body).await;
        assert_eq!(reply.status, 422, "{bad:?}: {}", reply.text);
        assert_eq!(
            reply.body["details"]["causes"][0]["field"], "spec.reply.uri",
            "{}",
            reply.text
        );
    }
    let listed = admin.get(&triggers("team-a")).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(0),
        "nothing written"
    );
}

#[tokio::test]
async fn delivery_parameters_the_resource_api_would_refuse_are_refused_by_provisioning() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let mut body = provision_body(ORDER_SERVICE, "team-a");
    body["parameters"] = json!({"delivery": {"backoffDelay": "P99999999999Y"}});
    let reply = broker.osb().provision("huge", &body, true).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.text.contains("backoffDelay"), "{}", reply.text);
    assert_eq!(
        broker.osb().fetch("huge").await.status,
        404,
        "nothing recorded"
    );
}

#[tokio::test]
async fn payload_schemas_that_do_not_compile_or_are_too_large_are_refused_naming_the_schema() {
    let broker = Broker::start().await;
    let example: serde_json::Value =
        serde_saphyr::from_str(&example("order-service.application.yaml")).expect("example");
    let payload = "/spec/services/0/entries/0/specification/channels/order.created.v1/subscribe/message/payload";
    let huge: Vec<String> = (0..20_000).map(|i| format!("value-{i}")).collect();
    for (schema, says) in [
        (
            json!({"$ref": "https://schemas.example.com/order.json"}),
            "does not compile",
        ),
        (json!({"type": "not-a-type"}), "does not compile"),
        // Look-around needs a backtracking engine, whose cost an event's
        // strings multiply: patterns run on a linear-time engine only.
        (
            json!({"type": "array", "items": {"type": "string", "pattern": "^(?:(?:a(?=a)|a)*c|.*)$"}}),
            "does not compile",
        ),
        (json!({"enum": huge}), "at most 65536"),
    ] {
        let mut application = example.clone();
        *application.pointer_mut(payload).expect("payload") = schema;
        let reply = broker.admin().create(APPLICATIONS, &application).await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert_eq!(
            reply.body["details"]["causes"][0]["field"],
            "spec.services[0].entries[0].specification",
            "{}",
            reply.text
        );
        assert!(reply.text.contains("order.created v1"), "{}", reply.text);
        assert!(reply.text.contains(says), "{}", reply.text);
    }
    assert_eq!(
        broker
            .admin()
            .get(&format!("{APPLICATIONS}/commerce"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn no_namespace_name_makes_an_osb_route_unreachable() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    // Every word a route of the control listener is made of.
    for word in [
        "api",
        "apis",
        "v1",
        "v2",
        "healthz",
        "readyz",
        "metrics",
        "namespaces",
        "catalog",
    ] {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": word}});
        let reply = broker.admin().create(NAMESPACES, &namespace).await;
        if reply.status == 422 {
            assert!(
                reply.text.contains("/v2/"),
                "{word}: refused for its routes: {}",
                reply.text
            );
            continue;
        }
        assert_eq!(reply.status, 201, "{word}: {}", reply.text);
        let osb = broker.osb_in(word);
        let catalog = osb.catalog().await;
        assert_eq!(catalog.status, 200, "{word}: {}", catalog.text);
        assert!(
            catalog.body["services"].is_array(),
            "{word}: {}",
            catalog.text
        );
        let fetch = osb.fetch("nothing-here").await;
        assert_eq!(fetch.status, 404, "{word}: {}", fetch.text);
        assert_ne!(
            fetch.body["kind"], "Status",
            "{word}: answered by the OSB API: {}",
            fetch.text
        );
    }
}

#[tokio::test]
async fn errors_axum_would_answer_as_text_are_json() {
    let broker = Broker::start().await;
    let osb = broker.osb();
    // A repeated query parameter, to the OSB API and to the resource API.
    let reply = osb
        .send(
            osb.request(
                reqwest::Method::PUT,
                "/v2/service_instances/x?accepts_incomplete=true&accepts_incomplete=false",
            )
            .json(&provision_body(ORDER_SERVICE, "team-a")),
            "put",
            "/v2/service_instances/{instance_id}",
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.body["description"].is_string(), "{}", reply.text);
    let watch = broker
        .http
        .get(format!(
            "{}{NAMESPACES}?watch=true&watch=false",
            broker.control
        ))
        .bearer_auth(&broker.admin_token)
        .send()
        .await
        .expect("request");
    assert_eq!(watch.status(), 400);
    let body: serde_json::Value = watch.json().await.expect("JSON");
    assert_eq!(body["kind"], "Status", "{body}");
    // Request headers over the limit.
    let reply = broker
        .http
        .get(format!("{}{NAMESPACES}", broker.control))
        .bearer_auth(&broker.admin_token)
        .header("x-padding", "p".repeat(70 * 1024))
        .send()
        .await
        .expect("request");
    assert_eq!(reply.status(), 431);
    let body: serde_json::Value = reply.json().await.expect("JSON");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("65536")),
        "{body}"
    );
}

#[tokio::test]
async fn an_osb_query_parameter_given_twice_is_refused_and_changes_nothing() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let osb = broker.osb();
    osb.provision_and_wait("twice", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
    let plan = plan_of(ORDER_SERVICE);
    // The last value is the instance's own: taking it would deprovision.
    let path = format!(
        "/v2/service_instances/twice?service_id=other&service_id={ORDER_SERVICE}&plan_id={plan}"
    );
    let reply = osb
        .send(
            osb.request(reqwest::Method::DELETE, &path),
            "delete",
            "/v2/service_instances/{instance_id}",
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply
            .message()
            .contains("service_id is given more than once"),
        "{}",
        reply.text
    );
    assert_eq!(osb.fetch("twice").await.status, 200, "still provisioned");
}

#[tokio::test]
async fn a_wrong_method_on_the_events_listener_is_405_in_json() {
    let broker = Broker::start().await;
    for path in ["/healthz", "/v1/applications/certificates"] {
        let reply = broker
            .http
            .put(format!("{}{path}", broker.events))
            .send()
            .await
            .expect("request");
        assert_eq!(reply.status(), 405, "{path}");
        let body: serde_json::Value = reply.json().await.expect("a JSON body");
        if path == "/healthz" {
            assert_eq!(body["error"], "MethodNotAllowed", "{path}: {body}");
        } else {
            // The Connector answers in Kyma's shape.
            assert_eq!(body["code"], 405, "{path}: {body}");
        }
    }
}

/// The console's "test this filter" reads its event as the ingress does: an
/// event the ingress would refuse passes no filter there either.
#[tokio::test]
async fn the_consoles_filter_test_refuses_an_event_the_ingress_would() {
    let broker = Broker::start().await;
    let test = async |event: serde_json::Value| {
        let response = broker
            .http
            .post(format!("{}/console/api/filter-test", broker.control))
            .bearer_auth(&broker.admin_token)
            .json(&json!({"filters": [{"exact": {"type": "t"}}], "event": event}))
            .send()
            .await
            .expect("filter test");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.expect("JSON");
        (status, body)
    };
    let mut event = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"});
    let (status, body) = test(event.clone()).await;
    assert_eq!((status, &body["passes"]), (200, &json!(true)), "{body}");
    event["datacontenttype"] = json!("no media type");
    let (status, body) = test(event).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("datacontenttype"), "{body}");
}
