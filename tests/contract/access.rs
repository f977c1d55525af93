//! Access control of the resource API: the admin token sees everything; a
//! namespace token only its own namespace; no token, no entry.

use serde_json::json;

use crate::common::Broker;
use crate::common::fixtures::*;

fn trigger(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": name},
        "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9/sink"}}
    })
}

async fn issue_token(broker: &Broker, namespace: &str) -> String {
    let token = json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken", "metadata": {"name": "ci"}, "spec": {"description": "CI"}});
    let reply = broker
        .admin()
        .create(&access_tokens(namespace), &token)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let value = reply.body["status"]["token"]
        .as_str()
        .expect("the token, once")
        .to_string();
    let stored = broker
        .admin()
        .get(&format!("{}/ci", access_tokens(namespace)))
        .await;
    assert!(
        stored.body["status"].get("token").is_none(),
        "the token itself is not stored: {}",
        stored.text
    );
    value
}

#[tokio::test]
async fn without_a_token_the_resource_api_is_401() {
    let broker = Broker::start().await;
    let reply = broker.anonymous().get(NAMESPACES).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["kind"], "Status");
    assert_eq!(
        reply.headers["www-authenticate"], r#"Bearer realm="meshbroker""#,
        "a 401 names its challenge (RFC 7235)"
    );
    assert_eq!(
        broker
            .with_token("not-a-token")
            .get(NAMESPACES)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn a_namespace_token_reads_and_writes_its_namespace_only() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    create_namespace(&broker, "team-b").await;
    let token = issue_token(&broker, "team-a").await;
    let scoped = crate::common::eventually("the token to be accepted", async || {
        let reply = broker.with_token(&token).get(&triggers("team-a")).await;
        (reply.status == 200).then_some(())
    });
    scoped.await;
    let team_a = broker.with_token(&token);
    assert_eq!(
        team_a
            .create(&triggers("team-a"), &trigger("mine"))
            .await
            .status,
        201
    );
    assert_eq!(
        team_a
            .get(&format!("{}/mine", triggers("team-a")))
            .await
            .status,
        200
    );
    let other = team_a.create(&triggers("team-b"), &trigger("theirs")).await;
    assert_eq!(other.status, 403, "{}", other.text);
    assert_eq!(team_a.get(&triggers("team-b")).await.status, 403);
    assert_eq!(
        team_a
            .get("/apis/eventing.knative.dev/v1/triggers")
            .await
            .status,
        403,
        "no cross-namespace lists"
    );
    assert_eq!(
        team_a.get(NAMESPACES).await.status,
        403,
        "no cluster-scoped kinds"
    );
    assert_eq!(team_a.get(APPLICATIONS).await.status, 403);
    assert_eq!(
        team_a.get(&access_tokens("team-a")).await.status,
        403,
        "tokens are the admin's business"
    );
    assert!(
        broker
            .admin()
            .find(&format!("{}/theirs", triggers("team-b")))
            .await
            .is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn a_deleted_token_stops_working() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let token = issue_token(&broker, "team-a").await;
    crate::common::eventually("the token to work", async || {
        (broker
            .with_token(&token)
            .get(&triggers("team-a"))
            .await
            .status
            == 200)
            .then_some(())
    })
    .await;
    assert_eq!(
        broker
            .admin()
            .delete(&format!("{}/ci", access_tokens("team-a")))
            .await
            .status,
        200
    );
    crate::common::eventually("the token to stop working", async || {
        (broker
            .with_token(&token)
            .get(&triggers("team-a"))
            .await
            .status
            == 401)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_deleted_token_ends_the_watches_and_tails_it_opened() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let default = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "default"}, "spec": {}});
    let created = broker.admin().create(&brokers("team-a"), &default).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = issue_token(&broker, "team-a").await;
    crate::common::eventually("the token to work", async || {
        let reply = broker.with_token(&token).get(&triggers("team-a")).await;
        (reply.status == 200).then_some(())
    })
    .await;
    let open = async |path: String| {
        let response = broker
            .http
            .get(format!("{}{path}", broker.control))
            .bearer_auth(&token)
            .send()
            .await
            .expect("stream request");
        assert_eq!(response.status(), 200, "{path}");
        response
    };
    let mut streams = vec![
        open(format!("{}?watch=true", triggers("team-a"))).await,
        open(format!("{}/default/tail", brokers("team-a"))).await,
        open("/console/api/watch".to_string()).await,
    ];
    let deleted = broker
        .admin()
        .delete(&format!("{}/ci", access_tokens("team-a")))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    for stream in &mut streams {
        let url = stream.url().path().to_string();
        // Whatever was under way is read; then the server ends the stream
        // cleanly (the client's own request timeout would be an error instead).
        let ended = loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        assert!(
            ended.is_ok(),
            "{url} was not ended after its token was deleted: {ended:?}"
        );
    }
}

#[tokio::test]
async fn the_osb_password_does_not_open_the_resource_api() {
    let broker = Broker::start().await;
    let request = broker
        .http
        .get(format!("{}{NAMESPACES}", broker.control))
        .basic_auth("meshbroker", Some(&broker.osb_password));
    let reply = broker.anonymous().send(request, "get", NAMESPACES).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn application_mappings_are_granted_by_an_administrator_and_only_read_by_the_namespace() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let token = issue_token(&broker, "team-a").await;
    let mapping = json!({"apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
        "kind": "ApplicationMapping", "metadata": {"name": "commerce"}, "spec": {}});
    let namespace = broker.with_token(&token);
    let reply = namespace.create(&mappings("team-a"), &mapping).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert!(reply.text.contains("administrator"), "{}", reply.text);
    assert_eq!(
        broker
            .admin()
            .create(&mappings("team-a"), &mapping)
            .await
            .status,
        201
    );
    let path = format!("{}/commerce", mappings("team-a"));
    assert_eq!(namespace.get(&path).await.status, 200, "reading is allowed");
    assert_eq!(namespace.get(&mappings("team-a")).await.status, 200);
    let mut changed = broker.admin().get(&path).await.body;
    changed["spec"] = json!({"services": [{"id": "x"}]});
    assert_eq!(namespace.put(&path, &changed).await.status, 403);
    assert_eq!(namespace.delete(&path).await.status, 403);
    assert_eq!(broker.admin().get(&path).await.status, 200, "still there");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_everything_secret_in_it_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let mut broker = Broker::start().await;
    let dir = broker.data_dir().to_path_buf();
    let files = ["store.db", "events.db", "admin-token", "osb-password"];
    // As an older version left them: world-readable. A start makes them private.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for file in files {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    broker.restart().await;
    assert_eq!(mode(&dir), 0o700, "the data directory");
    let companions = [
        "store.db-wal",
        "store.db-shm",
        "events.db-wal",
        "events.db-shm",
    ];
    for file in files.iter().chain(&companions) {
        let path = dir.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
}

#[tokio::test]
async fn an_access_token_with_a_field_it_does_not_know_is_refused_and_not_issued() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    // A misspelt `application` would otherwise issue a namespace token.
    let token = json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken", "metadata": {"name": "typo"}, "spec": {"applicaton": "commerce"}});
    let reply = broker
        .admin()
        .create(&access_tokens("team-a"), &token)
        .await;
    // Refused whatever `fieldValidation` asks: dropped, it would widen the grant.
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.text.contains("spec.applicaton"), "{}", reply.text);
    assert!(reply.body["status"].get("token").is_none());
    let stored = broker
        .admin()
        .get(&format!("{}/typo", access_tokens("team-a")))
        .await;
    assert_eq!(stored.status, 404, "nothing issued: {}", stored.text);
}

/// Watches are bounded in all and per caller (each holds a connection and a
/// stream): past the bound a watch is 429 with `Retry-After`, another caller
/// still gets one, and a place comes back once its watcher has gone.
#[tokio::test]
async fn watches_are_bounded_per_caller_and_come_back_when_their_watchers_go() {
    let broker = Broker::start().await;
    create_namespace(&broker, "team-a").await;
    let token = issue_token(&broker, "team-a").await;
    let watch = |token: &str| {
        broker
            .http
            .get(format!(
                "{}{}?watch=true&timeoutSeconds=600",
                broker.control,
                triggers("team-a")
            ))
            .bearer_auth(token)
            .send()
    };
    crate::common::eventually("the token to be accepted", async || {
        let reply = broker.with_token(&token).get(&triggers("team-a")).await;
        (reply.status == 200).then_some(())
    })
    .await;
    let open: Vec<reqwest::Response> = futures::future::join_all((0..128).map(|_| watch(&token)))
        .await
        .into_iter()
        .map(|response| response.expect("watch"))
        .collect();
    assert!(open.iter().all(|r| r.status() == 200));

    let refused = watch(&token).await.expect("watch");
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let status: serde_json::Value = refused.json().await.expect("a Status");
    assert_eq!(status["reason"], "TooManyRequests", "{status}");
    assert_eq!(status["details"]["retryAfterSeconds"], 1, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("128")),
        "{status}"
    );
    // A Broker's tail is held open as a watch is, and counts as one.
    let default_broker = json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
        "metadata": {"name": "default"}});
    let created = broker
        .admin()
        .create(&brokers("team-a"), &default_broker)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let tail = |token: &str| {
        broker
            .http
            .get(format!(
                "{}{}/default/tail",
                broker.control,
                brokers("team-a")
            ))
            .bearer_auth(token)
            .send()
    };
    let refused = tail(&token).await.expect("tail");
    assert_eq!(refused.status(), 429, "a tail past the caller's bound");
    // Lists have places of their own (a slow reader's list holds its copy
    // until taken): a caller with every watch open still lists.
    let list = broker.with_token(&token).get(&triggers("team-a")).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let admins = watch(&broker.admin_token).await.expect("watch");
    assert_eq!(admins.status(), 200, "another caller's bound");

    // The watchers go; the server finds out when it next writes to them.
    drop(open);
    let created = broker
        .admin()
        .create(&triggers("team-a"), &trigger("wake"))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    crate::common::eventually("a place for the namespace again", async || {
        let response = watch(&token).await.expect("watch");
        (response.status() == 200).then_some(())
    })
    .await;
}

/// A namespace token creates nothing past its namespace's quota (objects,
/// and bytes as stored); the admin still does, and room comes back as
/// objects go.
#[tokio::test]
async fn a_namespace_tokens_creates_stop_at_its_namespaces_quota() {
    let broker = Broker::start_with(&[
        // The namespace's AccessToken and three Triggers.
        "--namespace-object-quota",
        "4",
        "--namespace-bytes-quota",
        "100000",
    ])
    .await;
    create_namespace(&broker, "team-a").await;
    let token = issue_token(&broker, "team-a").await;
    crate::common::eventually("the token to be accepted", async || {
        let reply = broker.with_token(&token).get(&triggers("team-a")).await;
        (reply.status == 200).then_some(())
    })
    .await;
    let tenant = broker.with_token(&token);
    let mut large = trigger("large");
    large["metadata"]["annotations"] = json!({"note": "x".repeat(120_000)});
    let refused = tenant.create(&triggers("team-a"), &large).await;
    assert_eq!(refused.status, 403, "past the bytes: {}", refused.text);
    for name in ["t1", "t2", "t3"] {
        let created = tenant.create(&triggers("team-a"), &trigger(name)).await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let refused = tenant.create(&triggers("team-a"), &trigger("t4")).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.message().contains("exceeded quota"),
        "{}",
        refused.text
    );
    let by_put = tenant
        .put(&format!("{}/t4", triggers("team-a")), &trigger("t4"))
        .await;
    assert_eq!(by_put.status, 403, "a PUT that creates: {}", by_put.text);
    let admins = broker
        .admin()
        .create(&triggers("team-a"), &trigger("by-admin"))
        .await;
    assert_eq!(
        admins.status, 201,
        "the admin is not refused: {}",
        admins.text
    );
    for name in ["t1", "by-admin"] {
        let path = format!("{}/{name}", triggers("team-a"));
        assert_eq!(tenant.delete(&path).await.status, 200);
    }
    let room = tenant.create(&triggers("team-a"), &trigger("t4")).await;
    assert_eq!(room.status, 201, "room again: {}", room.text);
}
