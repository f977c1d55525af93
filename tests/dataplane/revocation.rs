//! Deleting what a credential rests on revokes it before the DELETE is answered:
//! no request after the 200 gets in with it.

use serde_json::json;

use crate::common::fixtures::*;
use crate::common::mesh::*;
use crate::common::{Broker, eventually};

/// Requests right after a revocation: every one must be refused.
const AFTER: usize = 20;

async fn refused_at_once(broker: &Broker, path: &str, token: &str, what: &str) {
    for i in 0..AFTER {
        let reply = post(
            broker,
            path,
            token,
            &binary(&format!("late-{i}"), "note.taken"),
            "{}",
        )
        .await;
        assert_eq!(
            reply.status, 401,
            "{what}: request {i} after the DELETE: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn deleting_an_application_revokes_its_credentials_at_once() {
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    // A rotated credential, issued by a person rather than at registration.
    let rotated = json!({"apiVersion": "meshbroker.io/v1alpha1", "kind": "AccessToken",
        "metadata": {"name": "commerce-2"}, "spec": {"application": APPLICATION}});
    let reply = broker
        .admin()
        .create(&access_tokens(INTEGRATION), &rotated)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let second = reply.body["status"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    eventually("the rotated credential to work", async || {
        (send_order(&broker, &second, "early").await.status == 202).then_some(())
    })
    .await;
    assert_eq!(send_order(&broker, &token, "early-2").await.status, 202);
    let reply = broker
        .admin()
        .delete(&format!("{APPLICATIONS}/{APPLICATION}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    refused_at_once(
        &broker,
        "/commerce/events",
        &token,
        "registration credential",
    )
    .await;
    refused_at_once(&broker, "/commerce/events", &second, "rotated credential").await;
    let left = broker.admin().get(&access_tokens(INTEGRATION)).await;
    assert_eq!(
        left.body["items"].as_array().map(Vec::len),
        Some(0),
        "{}",
        left.text
    );
}

#[tokio::test]
async fn deleting_an_access_token_or_its_namespace_revokes_it_at_once() {
    let broker = Broker::start().await;
    provisioned(&broker, &["team-a"]).await;
    let token = namespace_token(&broker, "team-a", "sender").await;
    post_when_token_known(&broker, "/team-a/default", &token, "early").await;
    let reply = broker
        .admin()
        .delete(&format!("{}/sender", access_tokens("team-a")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    refused_at_once(&broker, "/team-a/default", &token, "deleted AccessToken").await;

    let other = namespace_token(&broker, "team-a", "other").await;
    post_when_token_known(&broker, "/team-a/default", &other, "early").await;
    let reply = broker.admin().delete(&format!("{NAMESPACES}/team-a")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    refused_at_once(
        &broker,
        "/team-a/default",
        &other,
        "token of a deleted namespace",
    )
    .await;
}
