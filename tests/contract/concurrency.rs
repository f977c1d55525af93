//! Many OSB operations at once, over several namespaces and both services of one
//! Application, in a random (seeded) interleaving: afterwards the store holds exactly
//! what the sequence of answers says — every instance the answers leave provisioned
//! is an owner of its namespace's Subscription, every deprovisioned one is not, a
//! Subscription exists exactly while it has owners, and a namespace keeps the mesh
//! label exactly while it has instances.
//!
//! Requests for one instance are sent one after another (so its answers are ordered);
//! the instances run concurrently. A synchronous request is answered the moment its
//! operation ends, so the next request for the same instance lands while the
//! operation's runner is still winding down: exactly where a lost wake-up would leave
//! an operation `in progress` forever.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::fixtures::*;
use crate::common::{Broker, Reply};

const TEAMS: [&str; 3] = ["team-0", "team-1", "team-2"];
const INSTANCES: usize = 60;
const REQUESTS_PER_INSTANCE: usize = 12;
/// Change it (or set MESHBROKER_TEST_SEED) to explore other interleavings.
const DEFAULT_SEED: u64 = 0x5eed_0fa1_10e5;

/// xorshift64*: a few lines, deterministic for a seed, good enough to shuffle requests.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What one instance's answers say, in the order they came.
struct Instance {
    id: String,
    service: &'static str,
    namespace: &'static str,
    /// What the last answer that changed (or confirmed) anything means.
    provisioned: bool,
    /// The operation a 202 started and nobody has seen end yet.
    pending: Option<String>,
    log: Vec<String>,
}

impl Instance {
    fn fail(&self, reply: &Reply, why: &str) -> ! {
        panic!(
            "instance {}: {why}: {} {}\nits requests so far:\n{}",
            self.id,
            reply.status,
            reply.text,
            self.log.join("\n")
        );
    }

    /// Records what an answer means; an answer the history cannot explain fails.
    fn answered(&mut self, provision: bool, asynchronous: bool, reply: &Reply) {
        self.log.push(format!(
            "{} {} → {} {}",
            if provision {
                "provision"
            } else {
                "deprovision"
            },
            if asynchronous { "async" } else { "sync" },
            reply.status,
            reply.text
        ));
        match (provision, reply.status) {
            (_, 202) => {
                let operation = reply.body["operation"].as_str().unwrap_or_default();
                if let Some(pending) = &self.pending
                    && pending != operation
                    && self.provisioned == provision
                {
                    self.fail(reply, "a new operation while another was running");
                }
                self.pending = Some(operation.to_string());
                self.provisioned = provision;
            }
            (true, 201) | (false, 200) => {
                self.pending = None;
                self.provisioned = provision;
            }
            // Already in the requested state (or the running operation of this kind
            // ended within the synchronous wait).
            (true, 200) | (false, 410) => {
                if self.provisioned != provision {
                    self.fail(reply, "claims a state the answers never led to");
                }
                self.pending = None;
            }
            // A synchronous operation that did not end within the wait (queued
            // behind others in its namespace, or a step still waiting) failed:
            // the instance is as before it, save what `drive` mitigates.
            (_, 500) if !asynchronous && reply.body["error"] == "OperationFailed" => {
                self.pending = None;
                self.provisioned = !provision;
            }
            // A synchronous repeat of a running operation that did not end
            // within the wait: nothing changed, the operation runs on.
            (_, 422) if !asynchronous && reply.body["error"] == "AsyncRequired" => {
                if self.pending.is_none() || self.provisioned != provision {
                    self.fail(reply, "waited for an operation nobody started");
                }
            }
            (_, 422) if reply.body["error"] == "ConcurrencyError" => {
                if self.pending.is_none() || self.provisioned == provision {
                    self.fail(reply, "busy, but no conflicting operation was started");
                }
            }
            _ => self.fail(reply, "unexpected answer"),
        }
    }
}

async fn drive(broker: &Broker, instance: &mut Instance, seed: u64) {
    let mut rng = Rng::new(seed);
    let osb = broker.osb();
    let body = provision_body(instance.service, instance.namespace);
    let plan = plan_of(instance.service);
    for _ in 0..REQUESTS_PER_INSTANCE {
        let provision = rng.chance(55);
        let asynchronous = rng.chance(60);
        let reply = if provision {
            osb.provision(&instance.id, &body, asynchronous).await
        } else {
            osb.deprovision(&instance.id, instance.service, &plan, asynchronous)
                .await
        };
        instance.answered(provision, asynchronous, &reply);
        if reply.status == 500 {
            // As a platform does after a failed operation (orphan mitigation):
            // deprovision until the instance is gone.
            let mitigated = osb
                .deprovision(&instance.id, instance.service, &plan, true)
                .await;
            instance.answered(false, true, &mitigated);
            settle(broker, instance).await;
        }
        if reply.status == 202 && rng.chance(50) {
            settle(broker, instance).await;
        }
    }
    settle(broker, instance).await;
}

/// Waits for the pending operation (if any) to end, and checks it succeeded.
async fn settle(broker: &Broker, instance: &mut Instance) {
    let Some(operation) = instance.pending.take() else {
        return;
    };
    let done = broker.osb().finished(&instance.id, &operation).await;
    let succeeded = done.status == 200 && done.body["state"] == "succeeded";
    // A deprovision's own operation may answer 410 once it is forgotten.
    let gone = done.status == 410 && !instance.provisioned;
    if !(succeeded || gone) {
        instance.fail(&done, "the operation did not succeed");
    }
}

fn owners(subscription: &Value) -> BTreeSet<String> {
    let text = subscription["metadata"]["annotations"]["meshbroker.io/instances"]
        .as_str()
        .unwrap_or("[]");
    serde_json::from_str(text).expect("owners are a JSON list")
}

#[tokio::test]
async fn concurrent_operations_leave_the_store_as_the_answers_say() {
    let seed = std::env::var("MESHBROKER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let broker = Broker::start().await;
    commerce_in(&broker, &TEAMS).await;
    let mut rng = Rng::new(seed);
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|i| Instance {
            id: format!("instance-{i:02}"),
            service: if rng.chance(50) {
                ORDER_SERVICE
            } else {
                SHIPPING_SERVICE
            },
            namespace: TEAMS[rng.below(TEAMS.len() as u64) as usize],
            provisioned: false,
            pending: None,
            log: Vec::new(),
        })
        .collect();
    let seeds: Vec<u64> = instances.iter().map(|_| rng.below(u64::MAX)).collect();
    futures::future::join_all(
        instances
            .iter_mut()
            .zip(seeds)
            .map(|(instance, seed)| drive(&broker, instance, seed)),
    )
    .await;

    let context = format!("seed {seed}");
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for instance in &instances {
        let fetched = broker.osb().fetch(&instance.id).await;
        let want = if instance.provisioned { 200 } else { 404 };
        assert_eq!(
            fetched.status,
            want,
            "{context}: instance {} {}\n{}",
            instance.id,
            fetched.text,
            instance.log.join("\n")
        );
        if instance.provisioned {
            expected
                .entry(instance.namespace)
                .or_default()
                .insert(instance.id.clone());
        }
    }
    let admin = broker.admin();
    for team in TEAMS {
        let wanted = expected.get(team).cloned().unwrap_or_default();
        let subscription = admin
            .find(&format!("{}/{APPLICATION}.{team}", subscriptions()))
            .await;
        match &subscription {
            Some(found) => assert_eq!(
                owners(found),
                wanted,
                "{context}: the owners of {team}'s Subscription"
            ),
            None => assert!(
                wanted.is_empty(),
                "{context}: {team}'s Subscription is gone, but {wanted:?} are provisioned"
            ),
        }
        let namespace = admin
            .find(&format!("{NAMESPACES}/{team}"))
            .await
            .expect("the namespace");
        let labelled = namespace["metadata"]["labels"]["knative-eventing-injection"] == "enabled";
        assert_eq!(
            labelled,
            !wanted.is_empty(),
            "{context}: {team} is labelled exactly while it has instances"
        );
    }
}
