//! Several replicas on one API server (`--leader-elect`): one leader at a time
//! holds the Lease and runs controllers and operations; any replica takes OSB
//! requests; the leader killed mid-operation, another takes the Lease and
//! finishes what it left. With one nats-server too (`--delivery jetstream`):
//! events sent to all three arrive once each, and a replica killed mid-burst
//! loses nothing it acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::fixtures::*;
use crate::common::kube::{Cluster, LEASE_NAMESPACE};
use crate::common::mesh::{catch_all, namespace_token, provisioned};
use crate::common::nats::NatsServer;
use crate::common::sink::Sink;
use crate::common::{Broker, within};

const ADMIN_TOKEN: &str = "replicas-admin-token-0123456789";
const OSB_PASSWORD: &str = "replicas-osb-password-0123456789";
/// A failover waits a lease duration (15 s) and a retry (2–4.4 s) at most,
/// then the new leader's start: well within this.
const FAILOVER: Duration = Duration::from_secs(60);

/// `count` replicas electing a leader, each started with `extra` flags too.
async fn replicas(cluster: &Cluster, count: usize, extra: &[&str]) -> Vec<Broker> {
    cluster.grant_own_namespace().await;
    let mut replicas = Vec::new();
    for i in 0..count {
        let identity = format!("replica-{i}");
        let mut args = vec![
            "--leader-elect",
            "--leader-election-namespace",
            LEASE_NAMESPACE,
            "--leader-election-identity",
            identity.as_str(),
        ];
        args.extend_from_slice(extra);
        replicas.push(Broker::replica_of(cluster, ADMIN_TOKEN, OSB_PASSWORD, &args).await);
    }
    replicas
}

fn index_of(identity: &str) -> usize {
    identity
        .strip_prefix("replica-")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("a replica's identity: {identity}"))
}

#[tokio::test]
async fn the_leader_killed_mid_operation_another_replica_takes_the_lease_and_finishes_it() {
    let cluster = Cluster::start().await;
    let mut replicas = replicas(&cluster, 3, &[]).await;
    let leader = within(FAILOVER, "a leader", async || cluster.leader().await).await;
    let first = index_of(&leader);
    let follower = (first + 1) % replicas.len();

    // Asked of a follower, run by the leader: it waits for the Channel.
    commerce_with_unready_channel(&replicas[follower], &["team-a"]).await;
    let started = replicas[follower]
        .osb()
        .provision("orders", &provision_body(ORDER_SERVICE, "team-a"), true)
        .await;
    assert_eq!(started.status, 202, "{}", started.text);
    let operation = started.body["operation"]
        .as_str()
        .expect("operation")
        .to_string();
    within(FAILOVER, "the leader to run the operation", async || {
        let reply = replicas[follower]
            .osb()
            .last_operation("orders", Some(&operation))
            .await;
        (reply.body["state"] == "in progress" && reply.message().contains("waiting")).then_some(())
    })
    .await;

    replicas[first].kill();
    make_channel_ready(&replicas[follower]).await;
    let next = within(FAILOVER, "another replica to take the Lease", async || {
        cluster.leader().await.filter(|holder| *holder != leader)
    })
    .await;
    assert_ne!(index_of(&next), first);
    let done = within(FAILOVER, "the operation to finish", async || {
        let reply = replicas[follower]
            .osb()
            .last_operation("orders", Some(&operation))
            .await;
        (reply.body["state"] != "in progress").then_some(reply)
    })
    .await;
    assert_eq!(
        done.body["state"],
        "succeeded",
        "{}\n{}",
        done.text,
        replicas[index_of(&next)].log()
    );
}

#[tokio::test]
async fn a_leader_that_stops_cleanly_hands_the_lease_over_at_once() {
    let cluster = Cluster::start().await;
    let mut replicas = replicas(&cluster, 2, &[]).await;
    let leader = within(FAILOVER, "a leader", async || cluster.leader().await).await;
    let first = index_of(&leader);
    let stopped_at = Instant::now();
    assert!(replicas[first].terminate().await, "a clean stop");
    let next = within(FAILOVER, "the other replica to lead", async || {
        cluster.leader().await.filter(|holder| *holder != leader)
    })
    .await;
    assert_eq!(index_of(&next), 1 - first);
    assert!(
        stopped_at.elapsed() < Duration::from_secs(10),
        "the Lease was given up, not left to expire: {:?}",
        stopped_at.elapsed()
    );
    // The new leader runs what is asked now, through either replica.
    let survivor = &replicas[1 - first];
    commerce_in(survivor, &["team-a"]).await;
    survivor
        .osb()
        .provision_and_wait("orders", &provision_body(ORDER_SERVICE, "team-a"))
        .await;
}

/// Sends `id` to the Broker ingress at `events`; the answer's status, None
/// when there was no answer.
async fn send(http: &reqwest::Client, events: &str, token: &str, id: &str) -> Option<u16> {
    let sent = http
        .post(format!("{events}/team-a/default"))
        .bearer_auth(token)
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/replicas")
        .header("ce-type", "note.taken")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    sent.ok().map(|r| r.status().as_u16())
}

/// Event ids the sink took, with how often.
fn taken(sink: &Sink) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for request in sink.received() {
        if let Some(id) = request.header("ce-id") {
            *ids.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    ids
}

#[tokio::test]
async fn events_sent_round_robin_to_three_replicas_arrive_once_each_and_a_killed_replica_loses_none()
 {
    let cluster = Cluster::start().await;
    let nats = NatsServer::start();
    let jetstream = ["--delivery", "jetstream", "--nats-url", nats.url.as_str()];
    let mut replicas = replicas(&cluster, 3, &jetstream).await;
    provisioned(&replicas[0], &["team-a"]).await;
    let sink = catch_all(&replicas[0], "team-a").await;
    let token = namespace_token(&replicas[0], "team-a", "sender").await;
    // Each replica routes the Broker once its own table has it.
    for (i, replica) in replicas.iter().enumerate() {
        within(FAILOVER, "every replica to route the Broker", async || {
            let status = send(
                &replica.http,
                &replica.events,
                &token,
                &format!("hello-{i}"),
            )
            .await;
            (status == Some(202)).then_some(())
        })
        .await;
    }
    let mut sent = HashSet::new();
    for n in 0..300 {
        let id = format!("rr-{n}");
        let replica = &replicas[n % 3];
        let status = send(&replica.http, &replica.events, &token, &id).await;
        assert_eq!(status, Some(202), "{id}");
        sent.insert(id);
    }
    let counts = within(FAILOVER, "300 events delivered", async || {
        let counts = taken(&sink);
        sent.iter()
            .all(|id| counts.contains_key(id))
            .then_some(counts)
    })
    .await;
    let twice: Vec<_> = sent.iter().filter(|id| counts[*id] > 1).collect();
    assert!(
        twice.is_empty(),
        "no replica died, so no duplicates: {twice:?}"
    );

    // A burst to all three, one killed with -9 part-way.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let victim = 2;
    let mut senders = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        let (events, token, acked) = (replica.events.clone(), token.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            let http = crate::common::http_client();
            for n in 0..400 {
                let id = format!("burst-{i}-{n}");
                match send(&http, &events, &token, &id).await {
                    Some(202) => {
                        acked.lock().expect("lock").insert(id);
                    }
                    _ if i == victim => return,
                    other => panic!("{id}: {other:?}"),
                }
            }
        }));
    }
    within(FAILOVER, "the burst under way", async || {
        (acked.lock().expect("lock").len() > 200).then_some(())
    })
    .await;
    replicas[victim].kill();
    for sender in senders {
        sender.await.expect("a sender");
    }
    let acked = acked.lock().expect("lock").clone();
    let counts = within(FAILOVER, "every acknowledged event delivered", async || {
        let counts = taken(&sink);
        acked
            .iter()
            .all(|id| counts.contains_key(id))
            .then_some(counts)
    })
    .await;
    let duplicates: usize = acked.iter().map(|id| counts[id] - 1).sum();
    eprintln!(
        "{} acknowledged in the burst, all delivered; {duplicates} delivered twice (what the killed replica held)",
        acked.len()
    );
    assert!(
        duplicates <= 256,
        "duplicates are bounded by what one replica holds: {duplicates}"
    );
}
