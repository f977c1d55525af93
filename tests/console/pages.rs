//! What people do in the console, checked in the browser and, where access is
//! concerned, against the API directly too.

use serde_json::json;

use crate::browser::Browser;
use crate::common::fixtures::{ORDER_SERVICE, brokers, commerce_in, triggers};
use crate::common::mesh::{namespace_token, provisioned, send_order};
use crate::common::sink::Sink;
use crate::common::{Broker, eventually};

async fn rates(broker: &Broker, token: &str) -> serde_json::Value {
    let response = broker
        .http
        .get(format!("{}/console/api/rates", broker.control))
        .bearer_auth(token)
        .send()
        .await
        .expect("rates request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

async fn sign_in(browser: &Browser, broker: &Broker, token: &str) {
    browser.goto(&format!("{}/console/", broker.control)).await;
    browser.type_into("#token", token).await;
    browser.click("#signin").await;
}

#[tokio::test]
async fn people_sign_in_see_the_flow_and_create_a_trigger_with_a_cesql_filter() {
    let broker = Broker::start().await;
    let browser = Browser::start(1280).await;

    sign_in(&browser, &broker, "not-a-token").await;
    let refused = browser.text_until("#signin-error", |t| !t.is_empty()).await;
    assert!(
        refused.contains("not valid"),
        "the server's message: {refused}"
    );

    sign_in(&browser, &broker, &broker.admin_token).await;
    browser.text_until("#who", |t| t == "admin").await;
    provisioned(&broker, &["shop"]).await;
    // The flow appears by itself, no reload: Application → Channel →
    // Subscription → the namespace's Broker.
    let flow = browser
        .text_until(r#"tr[data-flow="commerce/shop/default"]"#, |t| {
            t.matches("Ready").count() >= 4 && !t.contains("Not ready")
        })
        .await;
    assert!(flow.contains("commerce"), "{flow}");
    browser.screenshot("mesh-provisioned").await;

    let sink = Sink::start().await;
    browser.click(r#"a[data-page="triggers"]"#).await;
    browser
        .find(r#"#trigger-namespace option[value="shop"]"#)
        .await;
    browser.select("#trigger-namespace", "shop").await;
    browser.type_into("#trigger-name", "big-orders").await;
    browser
        .type_into("#trigger-cesql", "type = 'order.created' AND")
        .await;
    let error = browser
        .text_until("#cesql-error", |t| t.contains("column"))
        .await;
    assert!(
        error.contains("column 27"),
        "the error names where: {error}"
    );
    browser
        .type_into(
            "#trigger-cesql",
            "type = 'order.created' AND eventtypeversion = 'v1'",
        )
        .await;
    browser.text_until("#cesql-error", str::is_empty).await;
    browser.type_into("#trigger-subscriber", &sink.url).await;
    browser.click("#trigger-create").await;
    let row = browser
        .text_until(r#"tr[data-trigger="shop/big-orders"]"#, |t| {
            t.contains("Ready") && !t.contains("Not ready")
        })
        .await;
    assert!(row.contains("CESQL: type = 'order.created'"), "{row}");
    let stored = broker
        .admin()
        .find(&format!("{}/big-orders", triggers("shop")))
        .await
        .expect("the Trigger is stored");
    assert_eq!(
        stored["spec"]["filters"][0]["cesql"],
        "type = 'order.created' AND eventtypeversion = 'v1'"
    );
    browser.screenshot("triggers").await;

    // "Test this filter" against a sample event, decided by the server.
    browser.click("#filter-test summary").await;
    let sample = |version: &str| {
        json!({"specversion": "1.0", "id": "s", "source": "commerce", "type": "order.created",
               "eventtypeversion": version})
        .to_string()
    };
    browser
        .type_into(
            "#trigger-cesql",
            "type = 'order.created' AND eventtypeversion = 'v1'",
        )
        .await;
    browser.type_into("#sample-event", &sample("v1")).await;
    browser.click("#filter-test-run").await;
    browser
        .text_until(r#"#filter-test-result[data-passes="true"]"#, |t| {
            t.starts_with("Passes")
        })
        .await;
    browser.type_into("#sample-event", &sample("v2")).await;
    browser.click("#filter-test-run").await;
    browser
        .text_until(r#"#filter-test-result[data-passes="false"]"#, |t| {
            t.starts_with("Filtered out")
        })
        .await;

    // Edit: a prefix attribute (the Subscriptions API's dialect) and delivery options.
    browser
        .click(r#"button[data-edit="shop/big-orders"]"#)
        .await;
    browser
        .text_until("#trigger-form-title", |t| {
            t == "Edit Trigger shop/big-orders"
        })
        .await;
    browser.click("#filter-add").await;
    browser.type_into(".filter-row .attribute", "source").await;
    browser.select(".filter-row .match", "prefix").await;
    browser.type_into(".filter-row .wanted", "comm").await;
    browser
        .text_until("#filter-preview", |t| {
            t.contains("\"prefix\"") && t.contains("\"cesql\"")
        })
        .await;
    browser.click("#delivery-options summary").await;
    browser.type_into("#delivery-retry", "2").await;
    browser.click("#trigger-create").await;
    browser
        .text_until("#trigger-form-title", |t| t == "New Trigger")
        .await;
    let edited = broker
        .admin()
        .find(&format!("{}/big-orders", triggers("shop")))
        .await
        .expect("the Trigger is stored");
    assert_eq!(
        edited["spec"]["filters"],
        json!([{"prefix": {"source": "comm"}},
               {"cesql": "type = 'order.created' AND eventtypeversion = 'v1'"}]),
        "{edited}"
    );
    assert_eq!(edited["spec"]["delivery"]["retry"], 2, "{edited}");
    browser
        .text_until(r#"tr[data-trigger="shop/big-orders"]"#, |t| {
            t.contains("source starts with") || t.contains("prefix")
        })
        .await;
    browser.click(r#"a[data-page="mesh"]"#).await;
    browser
        .text_until(r#"li[data-mesh-trigger="shop/big-orders"]"#, |t| {
            t.contains("Ready") && !t.contains("Not ready")
        })
        .await;
    browser.screenshot("mesh").await;
    browser.click(r#"a[data-page="triggers"]"#).await;

    // The Applications page: the declared events, and a new credential that works.
    browser.click(r#"a[data-page="applications"]"#).await;
    let declared = browser
        .text_until(r#"li[data-event-type="commerce/order.created/v1"]"#, |t| {
            !t.is_empty()
        })
        .await;
    assert!(declared.contains("order.created v1"), "{declared}");
    browser.click(r#"button[data-issue="commerce"]"#).await;
    let token = browser
        .text_until("#new-credential-token", |t| t.starts_with("mbapp_"))
        .await;
    browser.screenshot("applications").await;
    eventually(
        "the new credential to open commerce's ingress",
        async || {
            (send_order(&broker, &token, "from-console-credential")
                .await
                .status
                == 202)
                .then_some(())
        },
    )
    .await;

    // Events: tail shop's Broker, send a test event as the Application, see
    // it arrive, pass big-orders and be delivered — and reach the subscriber.
    browser.click(r#"a[data-page="events"]"#).await;
    browser
        .find(r#"#tail-broker option[value="shop/default"]"#)
        .await;
    browser.select("#tail-broker", "shop/default").await;
    browser.click("#tail-toggle").await;
    browser
        .text_until(r#"li[data-tail="TAILING"]"#, |t| t.contains("shop/default"))
        .await;
    browser.select("#send-to", "application:commerce").await;
    browser.type_into("#send-type", "order.created").await;
    browser.type_into("#send-version", "v1").await;
    browser
        .type_into("#send-data", r#"{"orderId": "console-1"}"#)
        .await;
    browser.click("#send").await;
    browser
        .text_until("#send-result", |t| t.contains("accepted"))
        .await;
    let received = browser
        .text_until(r#"li[data-tail="RECEIVED"]"#, |t| t.contains("big-orders"))
        .await;
    assert!(
        received.contains("source=commerce") && received.contains("console-1"),
        "{received}"
    );
    browser
        .text_until(r#"li[data-tail="DELIVERED"]"#, |t| {
            t.contains("big-orders (200)")
        })
        .await;
    // The credential check above sent one order too.
    let got = sink.wait_for(2).await;
    assert!(
        got.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("console-1")),
        "the subscriber got the test event"
    );
    browser.screenshot("events").await;
    // A refusal at the ingress shows the server's words: the schema wants orderId.
    browser.type_into("#send-data", r#"{"total": 1}"#).await;
    browser.click("#send").await;
    let invalid = browser.text_until("#send-error", |t| !t.is_empty()).await;
    assert!(invalid.contains("orderId"), "{invalid}");
    browser.click("#tail-toggle").await;

    // The Mesh page's edge rates come from the server's delivery counts.
    // The sink may hold an event before the broker has counted its answer.
    let counts = eventually("both deliveries counted", async || {
        let counts = rates(&broker, &broker.admin_token).await;
        (counts["triggers"]["shop/big-orders"] == json!([2, 0])).then_some(counts)
    })
    .await;
    assert_eq!(
        counts["channels"]["kyma-integration/commerce"],
        json!([2, 0]),
        "what commerce's Channel took (the refused event is not counted): {counts}"
    );
    browser.click(r#"a[data-page="mesh"]"#).await;
    browser
        .text_until(r#"span[data-rate="shop/big-orders"]"#, |t| {
            t.ends_with("/s")
        })
        .await;
    browser
        .text_until(
            r#"span[data-rate="channel:kyma-integration/commerce"]"#,
            |t| t.ends_with("/s"),
        )
        .await;
    browser.click(r#"a[data-page="triggers"]"#).await;

    // A refusal shows the server's own message where it happened.
    browser.select("#trigger-namespace", "shop").await;
    browser.type_into("#trigger-name", "big-orders").await;
    browser.type_into("#trigger-subscriber", &sink.url).await;
    browser.click("#trigger-create").await;
    let refusal = browser
        .text_until("#trigger-error", |t| !t.is_empty())
        .await;
    assert!(refusal.contains("already exists"), "{refusal}");
}

#[tokio::test]
async fn a_namespace_token_sees_and_changes_only_its_namespace() {
    let broker = Broker::start().await;
    provisioned(&broker, &["shop", "other"]).await;
    let shop_trigger = json!({
        "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
        "metadata": {"name": "shop-only"},
        "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/"}},
    });
    let created = broker
        .admin()
        .create(&triggers("shop"), &shop_trigger)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let other_token = namespace_token(&broker, "other", "console").await;

    let browser = Browser::start(390).await;
    sign_in(&browser, &broker, &other_token).await;
    browser.text_until("#who", |t| t == "namespace other").await;
    browser.click(r#"a[data-page="triggers"]"#).await;
    let namespaces = browser
        .text_until("#trigger-namespace", |t| !t.is_empty())
        .await;
    assert_eq!(
        namespaces.trim(),
        "other",
        "only its own namespace is offered"
    );
    browser.find(r#"tr[data-flow="other/default"]"#).await;
    assert!(
        !browser.has(r#"tr[data-trigger="shop/shop-only"]"#).await
            && !browser.has(r#"tr[data-flow="shop/default"]"#).await,
        "nothing of namespace shop is shown"
    );
    browser.screenshot("namespace-phone-width").await;

    // A subscriber given as a reference: the namespace's own Broker.
    browser.type_into("#trigger-name", "to-broker").await;
    browser.select("#trigger-subscriber-kind", "Broker").await;
    browser.type_into("#trigger-subscriber", "default").await;
    browser.type_into("#trigger-type", "order.shipped").await;
    browser.click("#trigger-create").await;
    let stored = eventually("the Trigger with a reference", async || {
        broker
            .admin()
            .find(&format!("{}/to-broker", triggers("other")))
            .await
    })
    .await;
    assert_eq!(
        stored["spec"]["subscriber"],
        json!({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "default"}}),
        "{stored}"
    );

    // The server refuses it, whatever a page would show or hide.
    let listed = broker.with_token(&other_token).get(&triggers("shop")).await;
    assert_eq!(listed.status, 403, "{}", listed.text);
    let written = broker
        .with_token(&other_token)
        .create(&triggers("shop"), &shop_trigger)
        .await;
    assert_eq!(written.status, 403, "{}", written.text);
    let tailed = broker
        .with_token(&other_token)
        .get(&format!("{}/default/tail", brokers("shop")))
        .await;
    assert_eq!(tailed.status, 403, "{}", tailed.text);
    let sent = broker
        .http
        .post(format!(
            "{}/console/api/brokers/shop/default/events",
            broker.control
        ))
        .bearer_auth(&other_token)
        .header("content-type", "application/cloudevents+json")
        .body(r#"{"specversion":"1.0","id":"x","source":"s","type":"t"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(sent.status(), 403);
    let as_application = broker
        .http
        .post(format!(
            "{}/console/api/applications/commerce/events",
            broker.control
        ))
        .bearer_auth(&other_token)
        .header("content-type", "application/cloudevents+json")
        .body(r#"{"specversion":"1.0","id":"x","source":"s","type":"order.created"}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(as_application.status(), 403);
    // "Test this filter" on the API: the same answers the page shows.
    let test = async |body: serde_json::Value| {
        let response = broker
            .http
            .post(format!("{}/console/api/filter-test", broker.control))
            .bearer_auth(&other_token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (
            status,
            response.json::<serde_json::Value>().await.expect("JSON"),
        )
    };
    let event = json!({"specversion": "1.0", "id": "1", "source": "erp", "type": "order.created"});
    let (status, body) =
        test(json!({"filters": [{"prefix": {"source": "er"}}], "event": event})).await;
    assert_eq!((status, &body["passes"]), (200, &json!(true)), "{body}");
    let (status, body) =
        test(json!({"filter": {"attributes": {"type": "x"}}, "event": event})).await;
    assert_eq!((status, &body["passes"]), (200, &json!(false)), "{body}");
    let (status, body) =
        test(json!({"filters": [{"exact": {"type": "order.created"}}, {"cesql": "type ="}], "event": event})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["description"]
            .as_str()
            .is_some_and(|d| d.contains("spec.filters[1].cesql")),
        "the field is named: {body}"
    );
    let (status, body) = test(json!({"filters": []})).await;
    assert_eq!(status, 400, "{body}");
    // A misspelt function parses, but a Trigger's write refuses it: so does
    // the check.
    let checked: serde_json::Value = broker
        .http
        .post(format!("{}/console/api/cesql", broker.control))
        .bearer_auth(&other_token)
        .json(&json!({"expression": "type = 'a' AND lowr(subject) = 'b'"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(checked["valid"], false, "{checked}");
    assert_eq!(checked["column"], 16, "where LOWR is written: {checked}");
    assert!(
        checked["error"]
            .as_str()
            .is_some_and(|e| e.contains("LOWR")),
        "{checked}"
    );
    // What a Trigger's write refuses, the test refuses too.
    let (status, body) =
        test(json!({"filter": {"attributes": {"Type": "x"}}, "event": event})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["description"]
            .as_str()
            .is_some_and(|d| d.contains("spec.filter.attributes")),
        "the field is named: {body}"
    );
    // Rates come from the dataplane, which holds a Trigger once its controller ran.
    eventually("the dataplane to hold both Triggers", async || {
        let all = rates(&broker, &broker.admin_token).await;
        let triggers = all["triggers"].as_object()?;
        (triggers.contains_key("shop/shop-only") && triggers.contains_key("other/to-broker"))
            .then_some(())
    })
    .await;
    let counts = rates(&broker, &other_token).await;
    let labels: Vec<&String> = counts["triggers"]
        .as_object()
        .expect("triggers")
        .keys()
        .collect();
    assert_eq!(
        labels,
        ["other/to-broker"],
        "only its own Triggers: {counts}"
    );
    assert_eq!(counts["subscriptions"], json!({}), "{counts}");
    assert_eq!(counts["channels"], json!({}), "{counts}");
    eventually(
        "the console's own endpoint to answer for the token",
        async || {
            let who = broker
                .http
                .get(format!("{}/console/api/whoami", broker.control))
                .bearer_auth(&other_token)
                .send()
                .await
                .ok()?;
            let body: serde_json::Value = who.json().await.ok()?;
            (body["namespace"] == "other").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_catalog_page_provisions_and_deprovisions_showing_each_step() {
    let broker = Broker::start().await;
    commerce_in(&broker, &["team-a"]).await;
    let browser = Browser::start(1280).await;
    sign_in(&browser, &broker, &broker.admin_token).await;
    browser.text_until("#who", |t| t == "admin").await;
    browser.click(r#"a[data-page="catalog"]"#).await;
    browser
        .find(r#"#catalog-namespace option[value="team-a"]"#)
        .await;
    browser.select("#catalog-namespace", "team-a").await;
    let class = broker.osb_in("team-a").catalog().await.body["services"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["id"] == ORDER_SERVICE)
                .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        })
        .expect("the order service is offered to team-a");
    browser
        .click(&format!(r#"button[data-provision="{class}"]"#))
        .await;
    let done = browser
        .text_until(r#"#operation li[data-state="succeeded"]"#, |t| {
            !t.is_empty()
        })
        .await;
    assert!(done.starts_with("provision "), "{done}");
    let steps = browser.text_until("#operation", |t| !t.is_empty()).await;
    let instance = format!("{class}-team-a").to_lowercase();
    browser
        .text_until(&format!(r#"tr[data-instance="{instance}"]"#), |t| {
            t.contains("provision succeeded")
        })
        .await;
    browser.screenshot("catalog").await;
    // Provisioning wired the namespace: its Broker exists.
    let broker_object = broker
        .admin()
        .get(&format!("{}/default", brokers("team-a")))
        .await;
    assert_eq!(broker_object.status, 200, "after steps: {steps}");

    browser
        .click(&format!(r#"button[data-deprovision="{instance}"]"#))
        .await;
    browser
        .text_until(r#"#operation li[data-state="succeeded"]"#, |t| {
            t.starts_with("deprovision ")
        })
        .await;
    eventually("the instance to leave the page", async || {
        (!browser
            .has(&format!(r#"tr[data-instance="{instance}"]"#))
            .await)
            .then_some(())
    })
    .await;
}
