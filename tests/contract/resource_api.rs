//! The Kubernetes-style resource API: CRUD, YAML, selectors, optimistic
//! concurrency, watch, and validation of every kind on write.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::fixtures::*;
use crate::common::{Broker, DEADLINE};

fn trigger(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": name}, "spec": spec})
}

fn good_spec() -> Value {
    json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/sink"}, "filter": {"attributes": {"type": "order.created"}}})
}

#[tokio::test]
async fn objects_are_created_read_replaced_and_deleted() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let admin = broker.admin();
    let created = admin
        .create(&triggers("team-a"), &trigger("t1", good_spec()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let meta = &created.body["metadata"];
    assert_eq!(meta["namespace"], "team-a", "namespace taken from the path");
    assert!(
        meta["uid"].is_string()
            && meta["resourceVersion"].is_string()
            && meta["creationTimestamp"].is_string()
    );
    let again = admin
        .create(&triggers("team-a"), &trigger("t1", good_spec()))
        .await;
    assert_eq!(again.status, 409, "already exists: {}", again.text);
    assert_eq!(again.body["reason"], "AlreadyExists");
    // Who it is about, as Kubernetes names it (client-go and kubectl read it).
    assert_eq!(
        again.body["details"],
        json!({"name": "t1", "group": "eventing.knative.dev", "kind": "triggers"})
    );
    let path = format!("{}/t1", triggers("team-a"));
    // Read it again once the status controller has written its status.
    let mut changed = settled(&broker, &path).await;
    changed["spec"]["subscriber"]["uri"] = json!("http://127.0.0.1:9/other");
    let replaced = admin.put(&path, &changed).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(
        replaced.body["metadata"]["generation"], 2,
        "spec change bumps generation"
    );
    let stale = admin.put(&path, &changed).await;
    assert_eq!(stale.status, 409, "the old resourceVersion is stale now");
    assert_eq!(stale.body["reason"], "Conflict");
    assert_eq!(stale.body["details"]["name"], "t1");
    let deleted = admin.delete(&path).await;
    assert_eq!(deleted.status, 200);
    let gone = admin.get(&path).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["reason"], "NotFound");
    assert_eq!(gone.body["details"]["name"], "t1");
    assert_eq!(gone.body["details"]["kind"], "triggers");
    assert_eq!(admin.delete(&path).await.status, 404);
    // Made in a namespace that does not exist: the namespace is what is missing.
    let no_namespace = admin
        .create(&triggers("nowhere"), &trigger("t1", good_spec()))
        .await;
    assert_eq!(no_namespace.status, 404, "{}", no_namespace.text);
    assert_eq!(
        no_namespace.body["details"],
        json!({"name": "nowhere", "kind": "namespaces"})
    );
    let put_created = admin
        .put(
            &format!("{}/t2", triggers("team-a")),
            &trigger("t2", good_spec()),
        )
        .await;
    assert_eq!(put_created.status, 201, "PUT creates when absent");
}

#[tokio::test]
async fn yaml_goes_in_and_comes_out() {
    let broker = Broker::start().await;
    let reply = broker
        .admin()
        .create_yaml(NAMESPACES, &example("team-a.namespace.yaml"))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let yaml = broker
        .http
        .get(format!("{}{NAMESPACES}/team-a", broker.control))
        .bearer_auth(&broker.admin_token)
        .header("accept", "application/yaml")
        .send()
        .await
        .expect("request");
    assert_eq!(yaml.headers()["content-type"], "application/yaml");
    let text = yaml.text().await.expect("body");
    let parsed: Value = serde_saphyr::from_str(&text).expect("YAML body");
    assert_eq!(parsed["metadata"]["name"], "team-a");
}

#[tokio::test]
async fn yaml_aliases_cannot_make_a_small_body_expensive() {
    // 100,000 nodes from ~400 bytes: within the YAML parser's own default budget,
    // far beyond what a body this size may cost.
    let broker = Broker::start().await;
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: laughs\nextra:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..5 {
        let previous = format!("*l{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        yaml.push_str(&format!("  l{level}: &l{level} [{items}]\n"));
    }
    let reply = broker.admin().create_yaml(NAMESPACES, &yaml).await;
    let said: String = reply.text.chars().take(300).collect();
    assert_eq!(reply.status, 400, "{said}");
    assert!(reply.text.contains("YAML"), "{said}");
    assert!(
        broker
            .admin()
            .find(&format!("{NAMESPACES}/laughs"))
            .await
            .is_none(),
        "nothing created"
    );
    let fine = broker
        .admin()
        .create_yaml(NAMESPACES, &example("team-a.namespace.yaml"))
        .await;
    assert_eq!(fine.status, 201, "{}", fine.text);
}

#[tokio::test]
async fn lists_filter_by_label_selector() {
    let broker = Broker::start().await;
    for (name, labels) in [
        ("a", json!({"tier": "front"})),
        ("b", json!({"tier": "back"})),
        ("c", json!({})),
    ] {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
        assert_eq!(
            broker.admin().create(NAMESPACES, &namespace).await.status,
            201
        );
    }
    let names = |list: Value| -> Vec<String> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let front = broker
        .admin()
        .get(&format!("{NAMESPACES}?labelSelector=tier%3Dfront"))
        .await;
    assert_eq!(names(front.body), vec!["a"]);
    let tiered = broker
        .admin()
        .get(&format!("{NAMESPACES}?labelSelector=tier"))
        .await;
    assert_eq!(names(tiered.body), vec!["a", "b"]);
    // Malformed, or naming what no label can be: refused, not an empty list.
    for bad in [
        "tier%20in%20front",
        "tier%3D%3Dfront%3Dx",
        "tier%20in%20()",
        "tier%3Dfront%2C%2Ca",
    ] {
        let reply = broker
            .admin()
            .get(&format!("{NAMESPACES}?labelSelector={bad}"))
            .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
        assert_eq!(reply.body["reason"], "BadRequest", "{bad}");
    }
}

#[tokio::test]
async fn a_watch_streams_changes_after_a_resource_version() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let list = broker.admin().get(&triggers("team-a")).await;
    let version = list.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string();
    let response = broker
        .http
        .get(format!(
            "{}{}?watch=true&resourceVersion={version}",
            broker.control,
            triggers("team-a")
        ))
        .bearer_auth(&broker.admin_token)
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status(), 200);
    broker
        .admin()
        .create(&triggers("team-a"), &trigger("t1", good_spec()))
        .await;
    broker
        .admin()
        .delete(&format!("{}/t1", triggers("team-a")))
        .await;
    let mut events = WatchEvents::new(response);
    let mut seen: Vec<String> = Vec::new();
    while seen.last().map(String::as_str) != Some("DELETED") {
        let event = events.next().await;
        assert_eq!(event["object"]["metadata"]["name"], "t1");
        seen.push(event["type"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seen.first().map(String::as_str), Some("ADDED"), "{seen:?}");
    assert!(
        seen[1..seen.len() - 1].iter().all(|t| t == "MODIFIED"),
        "status writes in between: {seen:?}"
    );
}

#[tokio::test]
async fn a_namespace_token_does_not_watch_from_before_it_was_issued() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    create_namespace(&broker, "reuse").await;
    let secret = json!({"broker": "default",
        "subscriber": {"uri": "http://127.0.0.1:9/hook?apikey=OLD-TENANT-SECRET"}});
    let created = admin
        .create(&triggers("reuse"), &trigger("old", secret))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let before = admin.get(&triggers("reuse")).await.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string();
    let namespace = format!("{NAMESPACES}/reuse");
    assert_eq!(admin.delete(&namespace).await.status, 200);
    crate::common::eventually("the namespace to be created again", async || {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "reuse"}});
        (admin.create(NAMESPACES, &body).await.status == 201).then_some(())
    })
    .await;
    let token = json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken",
        "metadata": {"name": "new-tenant"}, "spec": {}});
    let issued = admin.create(&access_tokens("reuse"), &token).await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let token = issued.body["status"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let now = crate::common::eventually("the token to work", async || {
        let reply = broker.with_token(&token).get(&triggers("reuse")).await;
        (reply.status == 200).then_some(reply)
    })
    .await;
    let watch = async |from: &str, bearer: &str| {
        let response = broker
            .http
            .get(format!(
                "{}{}?watch=true&resourceVersion={from}",
                broker.control,
                triggers("reuse")
            ))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("watch");
        assert_eq!(response.status(), 200);
        WatchEvents::new(response)
    };
    let refused = watch(&before, &token).await.next().await;
    assert_eq!(refused["type"], "ERROR", "{refused}");
    assert_eq!(refused["object"]["code"], 410, "{refused}");
    let history = watch(&before, &broker.admin_token).await.next().await;
    assert_eq!(
        history["object"]["metadata"]["name"], "old",
        "the administrator reads the log as it is: {history}"
    );
    let from_now = now.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion");
    let mut events = watch(from_now, &token).await;
    let fresh = json!({"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/new"}});
    let created = broker
        .with_token(&token)
        .create(&triggers("reuse"), &trigger("new", fresh))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let added = events.next().await;
    assert_eq!(added["type"], "ADDED", "{added}");
    assert_eq!(added["object"]["metadata"]["name"], "new", "{added}");
}

#[tokio::test]
async fn a_watch_ends_after_its_timeout_seconds() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let watch = |timeout: &str| {
        broker
            .http
            .get(format!(
                "{}{}?watch=true&timeoutSeconds={timeout}",
                broker.control,
                triggers("team-a")
            ))
            .bearer_auth(&broker.admin_token)
            .send()
    };
    let response = watch("1").await.expect("watch");
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    let rest = tokio::time::timeout(DEADLINE, response.bytes())
        .await
        .expect("the watch ended by itself")
        .expect("ended cleanly");
    assert!(rest.is_empty(), "nothing changed meanwhile");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    let refused = watch("soon").await.expect("watch");
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn a_watch_from_before_the_change_log_ends_at_once_with_410_expired() {
    let mut broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    broker.restart().await;
    let reply = broker
        .admin()
        .get(&format!(
            "{}?watch=true&resourceVersion=1",
            triggers("team-a")
        ))
        .await;
    // As the API server's watch cache answers: 200, and one ERROR event.
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["type"], "ERROR", "{}", reply.text);
    assert_eq!(reply.body["object"]["code"], 410);
    assert_eq!(reply.body["object"]["reason"], "Expired");
}

#[tokio::test]
async fn status_belongs_to_the_controllers() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let mut body = trigger("t1", good_spec());
    body["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    let created = broker.admin().create(&triggers("team-a"), &body).await;
    assert!(
        created.body["status"].is_null(),
        "a creator cannot set status: {}",
        created.text
    );
    let path = format!("{}/t1", triggers("team-a"));
    let with_status = crate::common::eventually("the Trigger's status", async || {
        let object = broker.admin().find(&path).await?;
        object["status"]["conditions"].is_array().then_some(object)
    })
    .await;
    assert_eq!(
        with_status["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .find(|c| c["type"] == "BrokerReady")
            .expect("BrokerReady")["status"],
        "False",
        "no Broker in team-a"
    );
    let mut replacement = with_status.clone();
    replacement["status"] = json!({"conditions": []});
    let replaced = broker.admin().put(&path, &replacement).await;
    assert_eq!(
        replaced.body["status"], with_status["status"],
        "a replace keeps the controllers' status"
    );
}

#[tokio::test]
async fn a_controller_writes_status_only_leaving_the_spec_and_its_generation() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    // Knative Destination fields meshbroker does not model, and an empty filter
    // its types would write back as `{"attributes": {}}`.
    let spec = json!({"broker": "default", "filter": {},
        "subscriber": {"uri": "http://127.0.0.1:9/sink", "audience": "aud"}});
    let created = broker
        .admin()
        .create(&triggers("team-a"), &trigger("t1", spec.clone()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("{}/t1", triggers("team-a"));
    let observed = crate::common::eventually("the Trigger's status", async || {
        let object = broker.admin().find(&path).await?;
        object["status"]["conditions"].is_array().then_some(object)
    })
    .await;
    assert_eq!(observed["spec"], spec, "{observed}");
    assert_eq!(observed["metadata"]["generation"], 1, "{observed}");
    assert_eq!(observed["status"]["observedGeneration"], 1, "{observed}");
}

#[tokio::test]
async fn every_kind_is_validated_on_write_naming_the_field() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let cases = [
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"prefix": {"type": ""}}]}),
            ),
            422,
            "spec.filters[0].prefix.type",
        ),
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"exact": {"type": "a"}, "suffix": {"type": "b"}}]}),
            ),
            422,
            "spec.filters[0]",
        ),
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"any": []}]}),
            ),
            422,
            "spec.filters[0].any",
        ),
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"cesql": " "}]}),
            ),
            422,
            "spec.filters[0].cesql",
        ),
        (
            // Compiles, but could never pass: a misspelt function.
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"any": [{"cesql": "LOWR(type) = 'a'"}]}]}),
            ),
            422,
            "spec.filters[0].any[0].cesql",
        ),
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"regex": {"type": "a"}}]}),
            ),
            400,
            "spec.filters[0]",
        ),
        (
            trigger("t", json!({"broker": "default", "subscriber": {}})),
            422,
            "spec.subscriber",
        ),
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "not a uri"}}),
            ),
            422,
            "spec.subscriber.uri",
        ),
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "delivery": {"backoffDelay": "2s"}}),
            ),
            422,
            "spec.delivery.backoffDelay",
        ),
        (
            trigger(
                "t",
                json!({"broker": "default", "subscriber": {"uri": "http://x"}, "delivery": {"retry": "three"}}),
            ),
            400,
            "spec.delivery.retry",
        ),
        (
            trigger("t", json!({"subscriber": {"uri": "http://x"}})),
            400,
            "spec",
        ),
        (trigger("Bad_Name", good_spec()), 422, "metadata.name"),
        (
            {
                // Kubernetes' limit: 256 KiB of annotations together.
                let mut body = trigger("t", good_spec());
                body["metadata"]["annotations"] = json!({"note": "x".repeat(300 * 1024)});
                body
            },
            422,
            "metadata.annotations",
        ),
    ];
    for (body, status, field) in cases {
        let reply = broker.admin().create(&triggers("team-a"), &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
        assert_eq!(reply.body["kind"], "Status");
        let named = reply.body["details"]["causes"][0]["field"]
            .as_str()
            .unwrap_or_default();
        assert!(
            named.starts_with(field),
            "expected the field {field}, got {named:?}: {}",
            reply.text
        );
    }
    let application = json!({
        "apiVersion": "applicationconnector.kyma-project.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "app"},
        "spec": {"services": [{"id": "s", "displayName": "S", "entries": [{"type": "Webhook"}]}]}
    });
    let reply = broker.admin().create(APPLICATIONS, &application).await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.body["details"]["causes"][0]["field"],
        "spec.services[0].entries[0].type"
    );
    let listed = broker.admin().get(&triggers("team-a")).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was written");
}

#[tokio::test]
async fn paths_and_bodies_must_agree() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let mut elsewhere = trigger("t1", good_spec());
    elsewhere["metadata"]["namespace"] = json!("team-b");
    assert_eq!(
        broker
            .admin()
            .create(&triggers("team-a"), &elsewhere)
            .await
            .status,
        400
    );
    let renamed = trigger("other", good_spec());
    assert_eq!(
        broker
            .admin()
            .put(&format!("{}/t1", triggers("team-a")), &renamed)
            .await
            .status,
        400
    );
    assert_eq!(
        broker
            .admin()
            .get("/apis/eventing.knative.dev/v1/namespaces/team-a/widgets")
            .await
            .status,
        404
    );
    assert_eq!(
        broker
            .admin()
            .create(&triggers("nowhere"), &trigger("t1", good_spec()))
            .await
            .status,
        404,
        "namespace must exist"
    );
    assert_eq!(
        broker
            .admin()
            .create(
                "/apis/eventing.knative.dev/v1/triggers",
                &trigger("t1", good_spec())
            )
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn the_integration_namespace_may_not_be_deleted() {
    let broker = Broker::start().await;
    let reply = broker
        .admin()
        .delete(&format!("{NAMESPACES}/{INTEGRATION}"))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(reply.body["kind"], "Status");
    assert!(
        broker
            .admin()
            .find(&format!("{NAMESPACES}/{INTEGRATION}"))
            .await
            .is_some(),
        "still there"
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_what_is_in_it() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    broker
        .admin()
        .create(&triggers("team-a"), &trigger("t1", good_spec()))
        .await;
    assert_eq!(
        broker
            .admin()
            .delete(&format!("{NAMESPACES}/team-a"))
            .await
            .status,
        200
    );
    assert_eq!(
        broker
            .admin()
            .get("/apis/eventing.knative.dev/v1/triggers")
            .await
            .body["items"],
        json!([])
    );
}

/// What kubectl and client-go ask before anything else: the groups, versions
/// and kinds served, in the legacy discovery form.
#[tokio::test]
async fn discovery_names_every_kind_with_its_verbs() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    let core = admin.get("/api").await;
    assert_eq!(core.status, 200, "{}", core.text);
    assert_eq!(core.body["versions"], json!(["v1"]));
    let core_kinds = admin.get("/api/v1").await;
    assert_eq!(core_kinds.body["resources"][0]["name"], "namespaces");
    assert_eq!(core_kinds.body["resources"][0]["shortNames"], json!(["ns"]));

    let groups = admin.get("/apis").await;
    assert_eq!(groups.status, 200, "{}", groups.text);
    let names: Vec<&str> = groups.body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for group in [
        "eventing.knative.dev",
        "messaging.knative.dev",
        "meshbroker.io",
    ] {
        assert!(names.contains(&group), "{group} missing: {names:?}");
    }
    let eventing = admin.get("/apis/eventing.knative.dev").await;
    assert_eq!(
        eventing.body["preferredVersion"]["groupVersion"],
        "eventing.knative.dev/v1"
    );

    let v1 = admin.get("/apis/eventing.knative.dev/v1").await;
    assert_eq!(v1.body["groupVersion"], "eventing.knative.dev/v1");
    let triggers = v1.body["resources"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == "triggers"))
        .expect("triggers listed");
    assert_eq!(triggers["kind"], "Trigger");
    assert_eq!(triggers["namespaced"], true);
    assert!(
        triggers["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("patch")) && v.contains(&json!("watch"))),
        "{triggers}"
    );
    let tokens = admin.get("/apis/meshbroker.io/v1alpha1").await;
    let access_tokens = tokens.body["resources"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == "accesstokens"))
        .expect("accesstokens listed");
    assert!(
        !access_tokens["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("update")) || v.contains(&json!("patch"))),
        "an AccessToken is never changed: {access_tokens}"
    );
    assert_eq!(admin.get("/apis/example.com").await.status, 404);
    assert_eq!(admin.get("/apis/eventing.knative.dev/v9").await.status, 404);
    let version = admin.get("/version").await;
    assert!(
        version.body["gitVersion"]
            .as_str()
            .is_some_and(|v| v.contains("meshbroker")),
        "{}",
        version.text
    );
    assert_eq!(broker.anonymous().get("/apis").await.status, 401);
}

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

/// PATCH as `kubectl patch` and client-side `kubectl apply` send it: the
/// patched object goes through every rule a replace does.
#[tokio::test]
async fn a_patch_is_applied_to_the_stored_object_and_checked_like_a_replace() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let admin = broker.admin();
    let created = admin
        .create(&triggers("team-a"), &trigger("t1", good_spec()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("{}/t1", triggers("team-a"));

    let merged = admin
        .patch(
            &path,
            MERGE,
            &json!({"spec": {"filter": {"attributes": {"type": "order.paid"}}}}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    assert_eq!(
        merged.body["spec"]["filter"]["attributes"]["type"],
        "order.paid"
    );
    assert_eq!(merged.body["spec"]["subscriber"], good_spec()["subscriber"]);
    assert_eq!(merged.body["metadata"]["generation"], 2);

    let moved = admin
        .patch(
            &path,
            JSON_PATCH,
            &json!([{"op": "replace", "path": "/spec/subscriber/uri", "value": "http://127.0.0.1:9/other"}]),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        moved.body["spec"]["subscriber"]["uri"],
        "http://127.0.0.1:9/other"
    );

    // A JSON Patch that does not apply changes nothing, not even its first step.
    let failed = admin
        .patch(
            &path,
            JSON_PATCH,
            &json!([{"op": "replace", "path": "/spec/subscriber/uri", "value": "http://127.0.0.1:9/third"},
                    {"op": "test", "path": "/spec/broker", "value": "elsewhere"}]),
        )
        .await;
    assert_eq!(failed.status, 422, "{}", failed.text);
    let now = admin.get(&path).await;
    assert_eq!(
        now.body["spec"]["subscriber"]["uri"],
        "http://127.0.0.1:9/other"
    );
    assert_eq!(now.body["metadata"]["generation"], 3);

    let immutable = admin
        .patch(&path, MERGE, &json!({"spec": {"broker": "other"}}))
        .await;
    assert_eq!(immutable.status, 422, "{}", immutable.text);
    assert_eq!(
        immutable.body["details"]["causes"][0]["field"],
        "spec.broker"
    );
    let invalid = admin
        .patch(&path, MERGE, &json!({"spec": {"subscriber": null}}))
        .await;
    assert!(
        invalid.status == 400 || invalid.status == 422,
        "{}",
        invalid.text
    );

    let stale = admin
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"resourceVersion": "1"}, "spec": {"delivery": {"retry": 1}}}),
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.text);

    let strategic = admin
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            &json!({"spec": {}}),
        )
        .await;
    assert_eq!(strategic.status, 415, "{}", strategic.text);
    assert!(
        strategic.text.contains("--type merge"),
        "{}",
        strategic.text
    );
    let not_json = admin.patch(&path, MERGE, &json!("a string")).await;
    assert_eq!(not_json.status, 400, "{}", not_json.text);
    let missing = admin
        .patch(&format!("{}/absent", triggers("team-a")), MERGE, &json!({}))
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    // Spec and generation as they were; a controller may have written the
    // Trigger's status meanwhile, which moves its resourceVersion.
    let unchanged = admin.get(&path).await;
    assert_eq!(unchanged.body["spec"], now.body["spec"]);
    assert_eq!(
        unchanged.body["metadata"]["generation"],
        now.body["metadata"]["generation"]
    );

    // What a patch may make of an object is bounded as a body is: no deeper
    // than the parser reads back, no larger than the body limit, however many
    // patches it takes.
    let mut nested = json!({});
    for _ in 0..90 {
        nested = json!({ "a": nested });
    }
    let deep = admin
        .patch(
            &path,
            JSON_PATCH,
            &json!([{"op": "add", "path": "/spec/x", "value": nested.clone()},
                    {"op": "replace", "path": format!("/spec/x{}", "/a".repeat(80)), "value": nested}]),
        )
        .await;
    assert_eq!(deep.status, 422, "{}", deep.text);
    let half = "x".repeat(600 * 1024);
    let first = admin
        .patch(
            &path,
            MERGE,
            &json!({"spec": {"filter": {"attributes": {"a": half}}}}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = admin
        .patch(
            &path,
            MERGE,
            &json!({"spec": {"filter": {"attributes": {"b": half}}}}),
        )
        .await;
    assert_eq!(second.status, 422, "{}", second.text);
    assert!(second.text.contains("larger than"), "{}", second.text);
    let read = admin.get(&path).await;
    assert_eq!(read.status, 200, "still readable: {}", read.text.len());
    assert!(read.body["spec"]["filter"]["attributes"].get("a").is_some());
    assert!(read.body["spec"]["filter"]["attributes"].get("b").is_none());

    // A Namespace merges alike, so kubectl's default (strategic) patch is taken.
    let labelled = admin
        .patch(
            "/api/v1/namespaces/team-a",
            "application/strategic-merge-patch+json",
            &json!({"metadata": {"labels": {"team": "a"}}}),
        )
        .await;
    assert_eq!(labelled.status, 200, "{}", labelled.text);
    assert_eq!(labelled.body["metadata"]["labels"]["team"], "a");
    // Its directives are not served, and would otherwise be stored as fields.
    let directive = admin
        .patch(
            "/api/v1/namespaces/team-a",
            "application/strategic-merge-patch+json",
            &json!({"metadata": {"annotations": {"$patch": "replace", "team": "b"}}}),
        )
        .await;
    assert_eq!(directive.status, 400, "{}", directive.text);
    assert!(directive.text.contains("$patch"), "{}", directive.text);
    let unchanged = admin.get("/api/v1/namespaces/team-a").await;
    assert!(
        unchanged.body["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get("$patch").is_none()),
        "{}",
        unchanged.text
    );

    let token = admin
        .create(
            &access_tokens("team-a"),
            &json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken", "metadata": {"name": "ci"}, "spec": {}}),
        )
        .await;
    assert_eq!(token.status, 201, "{}", token.text);
    let changed = admin
        .patch(
            &format!("{}/ci", access_tokens("team-a")),
            MERGE,
            &json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
    assert_eq!(changed.status, 405, "{}", changed.text);
}

fn channel(name: &str) -> Value {
    json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "metadata": {"name": name}})
}

fn channels_in(namespace: &str) -> String {
    format!("/apis/messaging.knative.dev/v1/namespaces/{namespace}/channels")
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// `kubectl delete --field-selector` deletes what the list answers: a
/// selector ignored would delete everything.
#[tokio::test]
async fn lists_filter_by_field_selector_and_refuse_unsupported_fields() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    create_namespace(&broker, "team-a").await;
    for name in ["ch1", "ch2"] {
        let reply = admin.create(&channels_in("team-a"), &channel(name)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let listed = async |selector: &str| {
        let reply = admin
            .get(&format!(
                "{}?fieldSelector={selector}",
                channels_in("team-a")
            ))
            .await;
        assert_eq!(reply.status, 200, "{selector}: {}", reply.text);
        names(&reply.body)
    };
    assert_eq!(listed("metadata.name%3Dch1").await, vec!["ch1"]);
    assert_eq!(listed("metadata.name%3D%3Dch2").await, vec!["ch2"]);
    assert_eq!(listed("metadata.name!%3Dch1").await, vec!["ch2"]);
    assert_eq!(
        listed("metadata.name%3Dch1,metadata.namespace%3Dteam-a").await,
        vec!["ch1"]
    );
    assert!(listed("metadata.namespace%3Dteam-b").await.is_empty());
    assert_eq!(listed("").await, vec!["ch1", "ch2"]);
    let across = admin
        .get("/apis/messaging.knative.dev/v1/channels?fieldSelector=metadata.namespace%3Dteam-a")
        .await;
    assert_eq!(names(&across.body), vec!["ch1", "ch2"]);
    let namespaces = admin
        .get(&format!(
            "{NAMESPACES}?fieldSelector=metadata.name%3Dteam-a"
        ))
        .await;
    assert_eq!(names(&namespaces.body), vec!["team-a"]);

    for (selector, says) in [
        ("garbage", "garbage"),
        ("spec.bogus%3Dx", "field label not supported: spec.bogus"),
        ("metadata.name%3Da%3Db", "must be escaped"),
    ] {
        let reply = admin
            .get(&format!(
                "{}?fieldSelector={selector}",
                channels_in("team-a")
            ))
            .await;
        assert_eq!(reply.status, 400, "{selector}: {}", reply.text);
        assert_eq!(reply.body["kind"], "Status");
        assert_eq!(reply.body["reason"], "BadRequest");
        assert!(reply.message().contains(says), "{}", reply.text);
        let watch = admin
            .get(&format!(
                "{}?watch=true&fieldSelector={selector}",
                channels_in("team-a")
            ))
            .await;
        assert_eq!(watch.status, 400, "watch {selector}: {}", watch.text);
    }
}

#[tokio::test]
async fn a_watch_sends_only_the_objects_its_field_selector_names() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    create_namespace(&broker, "team-a").await;
    for name in ["ch1", "ch2"] {
        admin.create(&channels_in("team-a"), &channel(name)).await;
    }
    let response = broker
        .http
        .get(format!(
            "{}{}?watch=true&fieldSelector=metadata.name%3Dch2",
            broker.control,
            channels_in("team-a")
        ))
        .bearer_auth(&broker.admin_token)
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status(), 200);
    // A change to another Channel, then the end of the selected one.
    admin.create(&channels_in("team-a"), &channel("ch3")).await;
    admin
        .delete(&format!("{}/ch1", channels_in("team-a")))
        .await;
    admin
        .delete(&format!("{}/ch2", channels_in("team-a")))
        .await;
    let mut events = WatchEvents::new(response);
    let mut seen: Vec<String> = Vec::new();
    while seen.last().map(String::as_str) != Some("DELETED") {
        let event = events.next().await;
        assert_eq!(event["object"]["metadata"]["name"], "ch2", "{event}");
        seen.push(event["type"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seen.first().map(String::as_str), Some("ADDED"), "{seen:?}");
}

/// A list is answered whole; a `limit` that is not a count, or a
/// `resourceVersion` that is no revision, is refused rather than ignored.
#[tokio::test]
async fn a_list_limit_is_a_count_and_its_resource_version_a_revision() {
    let broker = Broker::start().await;
    for limit in ["abc", "-1", "1.5"] {
        let reply = broker
            .admin()
            .get(&format!("{NAMESPACES}?limit={limit}"))
            .await;
        assert_eq!(reply.status, 400, "{limit}: {}", reply.text);
        assert_eq!(reply.body["reason"], "BadRequest");
    }
    for limit in ["0", "500"] {
        let reply = broker
            .admin()
            .get(&format!("{NAMESPACES}?limit={limit}"))
            .await;
        assert_eq!(reply.status, 200, "{limit}: {}", reply.text);
    }
    // A list is read at the latest revision, never older than one asked for;
    // a resourceVersion that is no revision is refused, as a watch refuses it.
    let reply = broker
        .admin()
        .get(&format!("{NAMESPACES}?resourceVersion=abc"))
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.body["details"]["causes"][0]["field"],
        "resourceVersion"
    );
    let reply = broker
        .admin()
        .get(&format!("{NAMESPACES}?watch=maybe"))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.message().contains("watch"), "{}", reply.text);
    for version in ["", "0", "1"] {
        let reply = broker
            .admin()
            .get(&format!("{NAMESPACES}?resourceVersion={version}"))
            .await;
        assert_eq!(reply.status, 200, "{version:?}: {}", reply.text);
    }
}

/// `resourceVersionMatch` and `continue` as a Kubernetes API server reads them.
#[tokio::test]
async fn a_list_reads_resource_version_match_and_refuses_a_continue_it_never_gave() {
    let broker = Broker::start().await;
    // Revisions past 1, so one before the current is not "0".
    create_namespace(&broker, "team-a").await;
    let admin = broker.admin();
    let current = admin.get(NAMESPACES).await.body["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a list's revision");
    let status = async |query: String| admin.get(&format!("{NAMESPACES}?{query}")).await;
    for refused in [
        "resourceVersionMatch=Exact".to_string(),
        "resourceVersionMatch=NotOlderThan".to_string(),
        "resourceVersion=0&resourceVersionMatch=Exact".to_string(),
        format!("resourceVersion={current}&resourceVersionMatch=exact"),
    ] {
        let reply = status(refused.clone()).await;
        assert_eq!(reply.status, 422, "{refused}: {}", reply.text);
        assert_eq!(
            reply.body["details"]["causes"][0]["field"],
            "resourceVersionMatch"
        );
    }
    for served in [
        format!("resourceVersion={current}&resourceVersionMatch=Exact"),
        format!(
            "resourceVersion={}&resourceVersionMatch=NotOlderThan",
            current - 1
        ),
        "resourceVersion=0&resourceVersionMatch=NotOlderThan".to_string(),
    ] {
        let reply = status(served.clone()).await;
        assert_eq!(reply.status, 200, "{served}: {}", reply.text);
    }
    // An older revision exactly is gone; one not yet reached is a timeout.
    let gone = status(format!(
        "resourceVersion={}&resourceVersionMatch=Exact",
        current - 1
    ))
    .await;
    assert_eq!(gone.status, 410, "{}", gone.text);
    assert_eq!(gone.body["reason"], "Expired");
    let ahead = status(format!("resourceVersion={}", current + 1000)).await;
    assert_eq!(ahead.status, 504, "{}", ahead.text);
    assert_eq!(ahead.body["reason"], "Timeout");
    assert!(
        ahead.message().contains("Too large resource version"),
        "{}",
        ahead.text
    );
    // What client-go's reflector reads to list again from the latest revision.
    assert_eq!(
        ahead.body["details"]["causes"][0]["reason"], "ResourceVersionTooLarge",
        "{}",
        ahead.text
    );
    assert_eq!(ahead.body["details"]["retryAfterSeconds"], 1);
    // A watch takes no resourceVersionMatch, nor a revision not reached yet.
    let watch_match = status(format!(
        "watch=true&resourceVersion={current}&resourceVersionMatch=NotOlderThan"
    ))
    .await;
    assert_eq!(watch_match.status, 422, "{}", watch_match.text);
    let watch_ahead = status(format!("watch=true&resourceVersion={}", current + 1000)).await;
    assert_eq!(watch_ahead.status, 504, "{}", watch_ahead.text);
    let continued = status("limit=1&continue=abc".to_string()).await;
    assert_eq!(continued.status, 400, "{}", continued.text);
    assert!(
        continued.message().contains("continue"),
        "{}",
        continued.text
    );
}

/// `kubectl --dry-run=server`: every check runs and the answer is the real
/// one's, but nothing is stored.
#[tokio::test]
async fn a_dry_run_answers_as_the_write_would_and_stores_nothing() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dry-ns"}});

    let created = admin
        .create(&format!("{NAMESPACES}?dryRun=All"), &namespace)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["metadata"]["name"], "dry-ns");
    assert!(created.body["metadata"]["uid"].is_string());
    assert!(admin.find(&format!("{NAMESPACES}/dry-ns")).await.is_none());

    create_namespace(&broker, "dry-ns").await;
    let collection = triggers("dry-ns");
    let trigger_path = format!("{collection}/t1");
    let dry_trigger = admin
        .create(
            &format!("{collection}?dryRun=All"),
            &trigger("t1", good_spec()),
        )
        .await;
    assert_eq!(dry_trigger.status, 201, "{}", dry_trigger.text);
    assert!(admin.find(&trigger_path).await.is_none(), "not stored");
    let invalid = json!({"broker": "default", "subscriber": {"uri": "http://x"}, "filters": [{"cesql": " "}]});
    let refused = admin
        .create(&format!("{collection}?dryRun=All"), &trigger("t1", invalid))
        .await;
    assert_eq!(refused.status, 422, "validation runs: {}", refused.text);
    let elsewhere = admin
        .create(
            &format!("{}?dryRun=All", triggers("no-such-ns")),
            &trigger("t1", good_spec()),
        )
        .await;
    assert_eq!(
        elsewhere.status, 404,
        "the store's checks run: {}",
        elsewhere.text
    );

    admin.create(&collection, &trigger("t1", good_spec())).await;
    let stored = settled(&broker, &trigger_path).await;
    let again = admin
        .create(
            &format!("{collection}?dryRun=All"),
            &trigger("t1", good_spec()),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);

    let mut changed = stored.clone();
    changed["spec"]["subscriber"]["uri"] = json!("http://127.0.0.1:9/other");
    let replaced = admin
        .put(&format!("{trigger_path}?dryRun=All"), &changed)
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(
        replaced.body["spec"]["subscriber"]["uri"],
        "http://127.0.0.1:9/other"
    );
    assert_eq!(replaced.body["metadata"]["generation"], 2);
    let put_created = admin
        .put(
            &format!("{collection}/t2?dryRun=All"),
            &trigger("t2", good_spec()),
        )
        .await;
    assert_eq!(put_created.status, 201, "{}", put_created.text);
    assert!(admin.find(&format!("{collection}/t2")).await.is_none());

    let patched = admin
        .patch(
            &format!("{trigger_path}?dryRun=All"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"dry": "yes"}}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["metadata"]["labels"]["dry"], "yes");

    let deleted = admin
        .delete(&format!("{NAMESPACES}/dry-ns?dryRun=All"))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body["metadata"]["name"], "dry-ns");
    let deleted_trigger = admin.delete(&format!("{trigger_path}?dryRun=All")).await;
    assert_eq!(deleted_trigger.status, 200, "{}", deleted_trigger.text);

    assert!(admin.find(&format!("{NAMESPACES}/dry-ns")).await.is_some());
    let now = admin.find(&trigger_path).await.expect("the Trigger stays");
    assert_eq!(now["spec"], stored["spec"], "neither replaced nor patched");
    assert!(now["metadata"]["labels"]["dry"].is_null(), "{now}");
    assert_eq!(now["metadata"]["uid"], stored["metadata"]["uid"]);

    let integration = admin
        .delete(&format!("{NAMESPACES}/{INTEGRATION}?dryRun=All"))
        .await;
    assert_eq!(
        integration.status, 403,
        "the same refusal: {}",
        integration.text
    );
    // As a Kubernetes API server answers an unsupported option value: 422.
    for value in ["all", "None", ""] {
        let path = format!("{trigger_path}?dryRun={value}");
        assert_eq!(admin.delete(&path).await.status, 422, "DELETE {value}");
        assert_eq!(admin.put(&path, &stored).await.status, 422, "PUT {value}");
        let patch = json!({"metadata": {"labels": {"x": "y"}}});
        let reply = admin
            .patch(&path, "application/merge-patch+json", &patch)
            .await;
        assert_eq!(reply.status, 422, "PATCH {value}");
        let reply = admin
            .create(
                &format!("{collection}?dryRun={value}"),
                &trigger("t3", good_spec()),
            )
            .await;
        assert_eq!(reply.status, 422, "POST {value}");
        assert_eq!(reply.body["reason"], "Invalid");
        assert!(reply.message().contains("dryRun"), "{}", reply.text);
    }
    assert!(admin.find(&trigger_path).await.is_some());
    assert!(admin.find(&format!("{collection}/t3")).await.is_none());
}

/// A DELETE's `DeleteOptions` body: preconditions hold or nothing is deleted,
/// a body that is not one is refused.
#[tokio::test]
async fn a_delete_honours_its_delete_options() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    create_namespace(&broker, "pre-ns").await;
    let path = format!("{NAMESPACES}/pre-ns");
    let options = |extra: Value| {
        let mut body = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body.to_string().into_bytes()
    };
    let json = "application/json";

    let wrong_uid =
        options(json!({"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}}));
    let reply = admin.delete_with_body(&path, json, wrong_uid).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert_eq!(reply.body["reason"], "Conflict");
    assert!(reply.message().contains("uid"), "{}", reply.text);

    let stale = options(json!({"preconditions": {"resourceVersion": "1"}}));
    let reply = admin.delete_with_body(&path, json, stale).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert!(
        reply.message().contains("resourceVersion"),
        "{}",
        reply.text
    );

    for (body, what) in [
        (b"not json".to_vec(), "not JSON"),
        (b"[1, 2]".to_vec(), "not an object"),
        (
            json!({"kind": "Pod", "apiVersion": "v1"})
                .to_string()
                .into_bytes(),
            "a wrong kind",
        ),
        (
            options(json!({"gracePeriodSeconds": "soon"})),
            "a grace period",
        ),
    ] {
        let reply = admin.delete_with_body(&path, json, body).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        assert_eq!(reply.body["kind"], "Status");
    }
    for (body, what) in [
        (
            options(json!({"propagationPolicy": "Sideways"})),
            "a policy",
        ),
        (options(json!({"dryRun": ["Maybe"]})), "a dryRun value"),
    ] {
        let reply = admin.delete_with_body(&path, json, body).await;
        assert_eq!(reply.status, 422, "{what}: {}", reply.text);
        assert_eq!(reply.body["reason"], "Invalid");
    }
    let dry = options(json!({"dryRun": ["All"]}));
    assert_eq!(admin.delete_with_body(&path, json, dry).await.status, 200);
    assert!(admin.find(&path).await.is_some(), "nothing deleted so far");

    let current = admin.find(&path).await.expect("the namespace");
    let held = options(json!({
        "preconditions": {"uid": current["metadata"]["uid"], "resourceVersion": current["metadata"]["resourceVersion"]},
        "propagationPolicy": "Foreground",
        "gracePeriodSeconds": 0,
    }));
    let reply = admin.delete_with_body(&path, json, held).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(admin.find(&path).await.is_none());
}

/// As a Kubernetes API server: a write that changes nothing is not made (no
/// new resourceVersion, no watch event), and a different `metadata.uid` is
/// refused, not quietly replaced.
#[tokio::test]
async fn a_write_that_changes_nothing_is_not_made_and_uid_is_immutable() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    let path = format!("{NAMESPACES}/quiet");
    let created = admin
        .create(
            NAMESPACES,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "quiet", "labels": {"a": "1"}}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let version = created.body["metadata"]["resourceVersion"].clone();
    let merge = "application/merge-patch+json";
    for patch in [json!({}), json!({"metadata": {"labels": {"a": "1"}}})] {
        let reply = admin.patch(&path, merge, &patch).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(
            reply.body["metadata"]["resourceVersion"], version,
            "{patch}"
        );
    }
    let same = admin.put(&path, &created.body).await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.body["metadata"]["resourceVersion"], version);

    let mut watch = broker
        .http
        .get(format!(
            "{}{NAMESPACES}?watch=true&resourceVersion={}&fieldSelector=metadata.name=quiet",
            broker.control,
            version.as_str().expect("a resourceVersion")
        ))
        .bearer_auth(&broker.admin_token)
        .send()
        .await
        .expect("watch");
    assert_eq!(admin.patch(&path, merge, &json!({})).await.status, 200);
    let changed = admin
        .patch(&path, merge, &json!({"metadata": {"labels": {"a": "2"}}}))
        .await;
    assert_ne!(changed.body["metadata"]["resourceVersion"], version);
    let chunk = tokio::time::timeout(DEADLINE, watch.chunk())
        .await
        .expect("an event in time")
        .expect("readable")
        .expect("the stream stays open");
    let first: Value = serde_json::from_slice(chunk.split(|b| *b == b'\n').next().unwrap_or(&[]))
        .expect("a JSON event");
    assert_eq!(first["type"], "MODIFIED");
    assert_eq!(
        first["object"]["metadata"]["labels"]["a"], "2",
        "the no-op patch sent no event: {first}"
    );

    let mut other = changed.body.clone();
    other["metadata"]["uid"] = json!("0b7c1f0e-0000-4000-8000-000000000000");
    let refused = admin.put(&path, &other).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(
        refused.body["details"]["causes"][0]["field"],
        "metadata.uid"
    );
}

#[tokio::test]
async fn an_object_with_only_a_generate_name_gets_a_name_of_its_own() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let mut names = Vec::new();
    for _ in 0..2 {
        let mut body = trigger("ignored", good_spec());
        body["metadata"] = json!({"generateName": "gen-"});
        let created = broker.admin().create(&triggers("team-a"), &body).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let name = created.body["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_string();
        assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
        let path = format!("{}/{name}", triggers("team-a"));
        assert!(broker.admin().find(&path).await.is_some());
        names.push(name);
    }
    assert_ne!(names[0], names[1]);
}

/// The `Warning` headers of an answer, as text.
fn warnings(reply: &crate::common::Reply) -> Vec<String> {
    reply
        .headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect()
}

/// A field a JSON body gives twice is named as Kubernetes names one: a
/// warning by default (the last value is the one written), part of the 400
/// under `Strict`, nothing under `Ignore`.
#[tokio::test]
async fn fields_a_body_gives_twice_are_named_or_refused() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let admin = broker.admin();
    let collection = triggers("team-a");
    let body = |name: &str| {
        format!(
            r#"{{"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {{"name": "{name}"}},
            "spec": {{"broker": "default", "subscriber": {{"uri": "http://127.0.0.1:9/first"}},
                      "subscriber": {{"uri": "http://127.0.0.1:9/last"}}}}}}"#
        )
    };
    let send = async |query: &str, name: &str| {
        let path = format!("{collection}{query}");
        let request = admin
            .request(Method::POST, &path)
            .header("Content-Type", "application/json")
            .body(body(name));
        admin.send(request, "post", &collection).await
    };

    let warned = send("", "d1").await;
    assert_eq!(warned.status, 201, "{}", warned.text);
    assert_eq!(
        warnings(&warned),
        [r#"299 - "duplicate field \"spec.subscriber\"""#]
    );
    assert_eq!(
        warned.body["spec"]["subscriber"]["uri"],
        "http://127.0.0.1:9/last"
    );

    let strict = send("?fieldValidation=Strict", "d2").await;
    assert_eq!(strict.status, 400, "{}", strict.text);
    assert!(
        strict
            .text
            .contains(r#"duplicate field \"spec.subscriber\""#),
        "{}",
        strict.text
    );
    assert_eq!(admin.get(&format!("{collection}/d2")).await.status, 404);

    let ignored = send("?fieldValidation=Ignore", "d3").await;
    assert_eq!(ignored.status, 201, "{}", ignored.text);
    assert!(warnings(&ignored).is_empty());

    // A merge patch has the object's shape: alike.
    let patch = |query: &str| {
        let path = format!("{collection}/d1{query}");
        let request = admin
            .request(Method::PATCH, &path)
            .header("Content-Type", "application/merge-patch+json")
            .body(r#"{"metadata": {"labels": {"z": "1", "z": "2"}}}"#);
        (request, path)
    };
    let (request, path) = patch("?fieldValidation=Strict");
    let strict = admin.send(request, "patch", &path).await;
    assert_eq!(strict.status, 400, "{}", strict.text);
    assert!(
        strict
            .text
            .contains(r#"duplicate field \"metadata.labels.z\""#),
        "{}",
        strict.text
    );
    let (request, path) = patch("");
    let warned = admin.send(request, "patch", &path).await;
    assert_eq!(warned.status, 200, "{}", warned.text);
    assert_eq!(
        warnings(&warned),
        [r#"299 - "duplicate field \"metadata.labels.z\"""#]
    );
    assert_eq!(warned.body["metadata"]["labels"]["z"], "2");
}

#[tokio::test]
async fn fields_a_kind_does_not_declare_are_warned_about_ignored_or_refused_and_never_stored() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let admin = broker.admin();
    let collection = triggers("team-a");
    let mut typo = good_spec();
    typo["fitler"] = json!({"attributes": {"type": "other"}});
    let warned = r#"299 - "unknown field \"spec.fitler\"""#;

    // Warn, the default: written without the field, which the answer names.
    let created = admin
        .create(&collection, &trigger("t1", typo.clone()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(warnings(&created), [warned]);
    assert!(
        created.body["spec"].get("fitler").is_none(),
        "{}",
        created.text
    );
    let stored = admin.get(&format!("{collection}/t1")).await;
    assert!(
        stored.body["spec"].get("fitler").is_none(),
        "{}",
        stored.text
    );
    assert_eq!(stored.body["spec"]["filter"], good_spec()["filter"]);

    // Strict, as kubectl asks: refused, nothing written.
    let strict = admin
        .create(
            &format!("{collection}?fieldValidation=Strict"),
            &trigger("t2", typo.clone()),
        )
        .await;
    assert_eq!(strict.status, 400, "{}", strict.text);
    assert_eq!(strict.body["reason"], "BadRequest");
    let message = strict.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(r#"unknown field "spec.fitler""#),
        "{message}"
    );
    assert_eq!(admin.get(&format!("{collection}/t2")).await.status, 404);

    // Ignore: written without the field, and without a word.
    let ignored = admin
        .create(
            &format!("{collection}?fieldValidation=Ignore"),
            &trigger("t3", typo.clone()),
        )
        .await;
    assert_eq!(ignored.status, 201, "{}", ignored.text);
    assert!(warnings(&ignored).is_empty());
    assert!(ignored.body["spec"].get("fitler").is_none());

    // A replace and a patch are pruned and answered the same way.
    let mut replacement = trigger("t1", typo.clone());
    replacement["metadata"]["resourceVersion"] = stored.body["metadata"]["resourceVersion"].clone();
    let refused = admin
        .put(
            &format!("{collection}/t1?fieldValidation=Strict"),
            &replacement,
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    // Its spec and generation as they were (a controller may have written its
    // status meanwhile, which moves the resourceVersion).
    let unchanged = admin.get(&format!("{collection}/t1")).await;
    assert_eq!(unchanged.body["spec"], stored.body["spec"]);
    assert_eq!(
        unchanged.body["metadata"]["generation"],
        stored.body["metadata"]["generation"]
    );
    let patch = json!({"spec": {"subscriber": {"uri": "http://127.0.0.1:9/other", "url": "x"}}});
    let refused = admin
        .patch(
            &format!("{collection}/t1?fieldValidation=Strict"),
            "application/merge-patch+json",
            &patch,
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("spec.subscriber.url"),
        "{}",
        refused.text
    );
    let patched = admin
        .patch(
            &format!("{collection}/t1"),
            "application/merge-patch+json",
            &patch,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        warnings(&patched),
        [r#"299 - "unknown field \"spec.subscriber.url\"""#]
    );
    assert_eq!(
        patched.body["spec"]["subscriber"]["uri"],
        "http://127.0.0.1:9/other"
    );
    assert!(patched.body["spec"]["subscriber"].get("url").is_none());

    // Kubernetes spells the three values one way only.
    let unsupported = admin
        .create(
            &format!("{collection}?fieldValidation=strict"),
            &trigger("t4", good_spec()),
        )
        .await;
    assert_eq!(unsupported.status, 422, "{}", unsupported.text);
    assert!(
        unsupported.text.contains("fieldValidation"),
        "{}",
        unsupported.text
    );
}

/// A watch's events, one JSON object per line, each awaited with a deadline.
struct WatchEvents {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl WatchEvents {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).expect("a JSON event per line");
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("readable")
                .expect("the stream stays open");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

#[tokio::test]
async fn a_watch_by_label_sees_objects_enter_and_leave_its_selection() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    create_namespace(&broker, "team-a").await;
    let collection = channels_in("team-a");
    let before = admin.get(&collection).await.body["metadata"]["resourceVersion"].clone();
    let selected = |from: &str| {
        let request = broker
            .http
            .get(format!(
                "{}{collection}?watch=true&labelSelector=team%3Da{from}",
                broker.control
            ))
            .bearer_auth(&broker.admin_token)
            .send();
        async move {
            let response = request.await.expect("watch");
            assert_eq!(response.status(), 200);
            WatchEvents::new(response)
        }
    };
    let mut live = selected("").await;
    let mut labelled = channel("ch1");
    labelled["metadata"]["labels"] = json!({"team": "a"});
    let created = admin.create(&collection, &labelled).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("{collection}/ch1");
    let relabel = |team: &'static str| {
        let admin = broker.admin();
        let path = path.clone();
        async move {
            let patch = json!({"metadata": {"labels": {"team": team}}});
            let reply = admin
                .patch(&path, "application/merge-patch+json", &patch)
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.body["metadata"]["resourceVersion"].clone()
        }
    };
    let left_at = relabel("b").await;
    relabel("a").await;
    admin.delete(&path).await;

    // Live, and replayed from before the Channel was made: the same story.
    let mut replayed = selected(&format!(
        "&resourceVersion={}",
        before.as_str().unwrap_or("0")
    ))
    .await;
    for events in [&mut live, &mut replayed] {
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let event = events.next().await;
            assert_eq!(event["object"]["metadata"]["name"], "ch1", "{event}");
            match event["type"].as_str().unwrap_or_default() {
                // The controllers' status writes while it matches.
                "MODIFIED" => continue,
                "DELETED" if seen.len() == 1 => {
                    // As it last matched, at the revision that took it out.
                    assert_eq!(
                        event["object"]["metadata"]["labels"]["team"], "a",
                        "{event}"
                    );
                    assert_eq!(event["object"]["metadata"]["resourceVersion"], left_at);
                }
                _ => {}
            }
            seen.push(event["type"].as_str().unwrap_or_default().to_string());
        }
        assert_eq!(seen, ["ADDED", "DELETED", "ADDED", "DELETED"]);
    }
}

#[tokio::test]
async fn a_namespace_is_active_and_null_labels_are_no_labels() {
    let broker = Broker::start().await;
    let admin = broker.admin();
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-n", "labels": null, "annotations": null}});
    let created = admin.create(NAMESPACES, &namespace).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let stored = admin.get(&format!("{NAMESPACES}/team-n")).await;
    assert_eq!(stored.body["status"]["phase"], "Active", "{}", stored.text);
    assert_eq!(
        stored.body["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "team-n"})
    );
    let mut trigger = trigger("t1", good_spec());
    trigger["metadata"]["labels"] = Value::Null;
    let created = admin.create(&triggers("team-n"), &trigger).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        created.body["metadata"].get("labels").is_none(),
        "{}",
        created.text
    );
}

#[tokio::test]
async fn a_replace_must_name_the_resource_version_it_read_except_a_namespaces() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let admin = broker.admin();
    let path = format!("{}/t1", triggers("team-a"));
    let created = admin
        .create(&triggers("team-a"), &trigger("t1", good_spec()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let mut changed = trigger("t1", good_spec());
    changed["spec"]["subscriber"]["uri"] = json!("http://127.0.0.1:9/other");
    let blind = admin.put(&path, &changed).await;
    assert_eq!(blind.status, 422, "{}", blind.text);
    assert_eq!(
        blind.body["details"]["causes"][0]["field"],
        "metadata.resourceVersion"
    );
    let unchanged = admin.get(&path).await;
    assert_eq!(
        unchanged.body["spec"]["subscriber"],
        good_spec()["subscriber"]
    );
    changed["metadata"]["resourceVersion"] = unchanged.body["metadata"]["resourceVersion"].clone();
    let replaced = admin.put(&path, &changed).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);

    // A Namespace, built in, may be replaced blind, as on Kubernetes.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"team": "a"}}});
    let relabelled = admin.put(&format!("{NAMESPACES}/team-a"), &namespace).await;
    assert_eq!(relabelled.status, 200, "{}", relabelled.text);
}
