//! Status as Knative reports it, so kubectl and Knative tooling read it: each
//! kind's condition types with status, reason and message, `Ready` summarising
//! them, resolved dead-letter sinks on every kind, and a Channel's `delivery`
//! serving as the default of its Subscriptions.

use serde_json::{Value, json};

use crate::common::fixtures::*;
use crate::common::mesh::*;
use crate::common::sink::Sink;
use crate::common::{Broker, eventually};

const NAMESPACE: &str = "team-a";

fn channels_in(namespace: &str) -> String {
    format!("/apis/messaging.knative.dev/v1/namespaces/{namespace}/channels")
}

fn subscriptions_in(namespace: &str) -> String {
    format!("/apis/messaging.knative.dev/v1/namespaces/{namespace}/subscriptions")
}

/// Creates `body` in `collection`; returns the object's path.
async fn create(broker: &Broker, collection: &str, body: Value) -> String {
    let reply = broker.admin().create(collection, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    format!(
        "{collection}/{}",
        body["metadata"]["name"].as_str().expect("name")
    )
}

fn channel(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel",
        "metadata": {"name": name}, "spec": spec})
}

fn subscription(name: &str, channel: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["channel"] =
        json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "name": channel});
    json!({"apiVersion": "messaging.knative.dev/v1", "kind": "Subscription",
        "metadata": {"name": name}, "spec": spec})
}

fn broker_object(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
        "metadata": {"name": name}, "spec": spec})
}

fn condition<'a>(object: &'a Value, type_: &str) -> &'a Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition: {}", object["status"]))
}

/// Every one of `types`, and Ready, is True with a transition time; the status
/// is of the current generation.
fn assert_all_true(object: &Value, types: &[&str]) {
    for type_ in types.iter().chain(&["Ready"]) {
        let condition = condition(object, type_);
        assert_eq!(condition["status"], "True", "{type_}: {}", object["status"]);
        assert!(
            condition["lastTransitionTime"].is_string(),
            "{type_}: {condition}"
        );
    }
    assert_eq!(
        object["status"]["observedGeneration"], object["metadata"]["generation"],
        "{}",
        object["status"]
    );
}

/// The object at `path` once `check` holds for it.
async fn once(broker: &Broker, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("{path}: {what}"), async || {
        broker.admin().find(path).await.filter(|o| check(o))
    })
    .await
}

fn has(object: &Value, type_: &str, status: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|all| {
            all.iter()
                .any(|c| c["type"] == type_ && c["status"] == status)
        })
}

#[tokio::test]
async fn a_ready_trigger_reports_every_knative_trigger_condition_true() {
    let broker = Broker::start().await;
    provisioned(&broker, &[NAMESPACE]).await;
    let sink = Sink::start().await;
    let dead = Sink::start().await;
    let trigger = trigger(
        &broker,
        NAMESPACE,
        "orders",
        json!({"subscriber": {"uri": sink.url}, "delivery": {"deadLetterSink": {"uri": dead.url}}}),
    )
    .await;
    assert_all_true(
        &trigger,
        &[
            "BrokerReady",
            "DependencyReady",
            "SubscriberResolved",
            "SubscriptionReady",
            "DeadLetterSinkResolved",
        ],
    );
    assert_eq!(trigger["status"]["subscriberUri"], json!(sink.url));
    assert_eq!(trigger["status"]["deadLetterSinkUri"], json!(dead.url));
}

#[tokio::test]
async fn a_trigger_whose_broker_is_missing_says_so_and_is_not_ready() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let sink = Sink::start().await;
    let path = create(
        &broker,
        &triggers(NAMESPACE),
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "orphan"},
            "spec": {"broker": "missing", "subscriber": {"uri": sink.url}}}),
    )
    .await;
    let trigger = once(&broker, &path, "BrokerReady reported", |o| {
        has(o, "BrokerReady", "False")
    })
    .await;
    let broker_ready = condition(&trigger, "BrokerReady");
    assert_eq!(broker_ready["reason"], "BrokerDoesNotExist");
    assert!(
        broker_ready["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"missing\"")),
        "{broker_ready}"
    );
    let summary = condition(&trigger, "Ready");
    assert_eq!(summary["status"], "False");
    assert_eq!(
        summary["reason"], "BrokerDoesNotExist",
        "Ready names the cause"
    );
    assert_eq!(condition(&trigger, "SubscriberResolved")["status"], "True");
    assert_eq!(
        condition(&trigger, "SubscriptionReady")["status"],
        "Unknown",
        "nothing to subscribe to yet"
    );

    // Timestamps have whole seconds: let the clock move on, so that a rewritten
    // time would show.
    let orphaned = std::time::Instant::now();
    eventually("the clock to pass a second", async || {
        (orphaned.elapsed() > std::time::Duration::from_millis(1100)).then_some(())
    })
    .await;
    // The Broker arrives: the Trigger follows it to Ready. Only the conditions
    // whose status changed get a new lastTransitionTime.
    create(
        &broker,
        &brokers(NAMESPACE),
        broker_object("missing", json!({})),
    )
    .await;
    let now_ready = ready(&broker, &path).await;
    assert_all_true(&now_ready, &["BrokerReady", "SubscriptionReady"]);
    let time = |object: &Value, type_: &str| condition(object, type_)["lastTransitionTime"].clone();
    assert_eq!(
        time(&now_ready, "SubscriberResolved"),
        time(&trigger, "SubscriberResolved"),
        "still True: its time stays"
    );
    assert_ne!(
        time(&now_ready, "BrokerReady"),
        time(&trigger, "BrokerReady"),
        "False to True: a transition"
    );
}

#[tokio::test]
async fn deleting_what_an_object_delivers_or_dead_letters_to_makes_it_not_ready() {
    // Knative: a reference that does not resolve MUST make Ready false and clear
    // the resolved URI — also when its target goes away after it was Ready.
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let target = create(
        &broker,
        &brokers(NAMESPACE),
        broker_object("target", json!({})),
    )
    .await;
    ready(&broker, &target).await;
    let parking = create(
        &broker,
        &channels_in(NAMESPACE),
        channel("parking", json!({})),
    )
    .await;
    ready(&broker, &parking).await;
    create(
        &broker,
        &brokers(NAMESPACE),
        broker_object("default", json!({})),
    )
    .await;
    let to_broker = json!({"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "target"}});
    let to_channel = json!({"ref": {"apiVersion": "messaging.knative.dev/v1", "kind": "Channel", "name": "parking"}});
    let trigger = create(
        &broker,
        &triggers(NAMESPACE),
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "forward"},
            "spec": {"broker": "default", "subscriber": to_broker}}),
    )
    .await;
    let sink = Sink::start().await;
    create(
        &broker,
        &channels_in(NAMESPACE),
        channel("orders", json!({})),
    )
    .await;
    let subscription = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "to-target",
            "orders",
            json!({"subscriber": {"uri": sink.url}, "reply": to_broker}),
        ),
    )
    .await;
    let dead_lettering = create(
        &broker,
        &brokers(NAMESPACE),
        broker_object(
            "careful",
            json!({"delivery": {"deadLetterSink": to_channel}}),
        ),
    )
    .await;
    for path in [&trigger, &subscription, &dead_lettering] {
        ready(&broker, path).await;
    }

    for (gone, name) in [(&target, "target"), (&parking, "parking")] {
        let reply = broker.admin().delete(gone).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text);
    }
    let trigger = once(&broker, &trigger, "SubscriberResolved False", |o| {
        has(o, "SubscriberResolved", "False") && has(o, "Ready", "False")
    })
    .await;
    assert!(
        trigger["status"]["subscriberUri"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{}",
        trigger["status"]
    );
    let subscription = once(&broker, &subscription, "ReferencesResolved False", |o| {
        has(o, "ReferencesResolved", "False") && has(o, "Ready", "False")
    })
    .await;
    assert!(
        subscription["status"]["physicalSubscription"]["replyUri"].is_null(),
        "{}",
        subscription["status"]
    );
    let dead_lettering = once(
        &broker,
        &dead_lettering,
        "DeadLetterSinkResolved False",
        |o| has(o, "DeadLetterSinkResolved", "False") && has(o, "Ready", "False"),
    )
    .await;
    assert!(dead_lettering["status"]["deadLetterSinkUri"].is_null());
}

#[tokio::test]
async fn an_object_that_cannot_get_ready_keeps_a_still_status() {
    // Routed but not Ready (its dead-letter sink names nothing): each status write
    // used to send it back to waiting for the table, eighty writes a second.
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let unresolvable = json!({"delivery": {"deadLetterSink": {"ref": {
        "apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "absent"}}}});
    let path = create(
        &broker,
        &channels_in(NAMESPACE),
        channel("stuck", unresolvable),
    )
    .await;
    let settled = once(&broker, &path, "routed, dead-letter sink unresolved", |o| {
        has(o, "BackingChannelReady", "True") && has(o, "DeadLetterSinkResolved", "False")
    })
    .await;
    let looked = std::time::Instant::now();
    eventually("a second to pass", async || {
        (looked.elapsed() > std::time::Duration::from_secs(1)).then_some(())
    })
    .await;
    let later = broker.admin().find(&path).await.expect("channel");
    assert_eq!(
        later["metadata"]["resourceVersion"], settled["metadata"]["resourceVersion"],
        "nothing changed, so nothing was written: {}",
        later["status"]
    );
}

#[tokio::test]
async fn a_channel_lists_its_subscriptions_in_its_status() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let sink = Sink::start().await;
    let path = create(
        &broker,
        &channels_in(NAMESPACE),
        channel("orders", json!({})),
    )
    .await;
    let mut uids = Vec::new();
    for name in ["first", "second"] {
        let created = create(
            &broker,
            &subscriptions_in(NAMESPACE),
            subscription(name, "orders", json!({"subscriber": {"uri": sink.url}})),
        )
        .await;
        let subscription = ready(&broker, &created).await;
        uids.push(
            subscription["metadata"]["uid"]
                .as_str()
                .expect("uid")
                .to_string(),
        );
    }
    uids.sort();
    let listed = once(&broker, &path, "both Subscriptions listed, ready", |o| {
        o["status"]["subscribers"]
            .as_array()
            .is_some_and(|all| all.len() == 2 && all.iter().all(|s| s["ready"] == "True"))
    })
    .await;
    let subscribers = listed["status"]["subscribers"].as_array().expect("list");
    let listed_uids: Vec<_> = subscribers
        .iter()
        .map(|s| s["uid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(listed_uids, uids);
    assert!(
        subscribers
            .iter()
            .all(|s| s["observedGeneration"] == 1 && s["generation"] == 1),
        "{subscribers:?}"
    );

    let reply = broker
        .admin()
        .delete(&format!("{}/first", subscriptions_in(NAMESPACE)))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    once(&broker, &path, "one Subscription left", |o| {
        o["status"]["subscribers"]
            .as_array()
            .is_some_and(|all| all.len() == 1)
    })
    .await;
}

/// "If the referenced `spec.channel` … `Ready` condition is not `true`, then
/// the Subscription's `Ready` condition MUST NOT be `true`, and the reason
/// SHOULD indicate that the corresponding Channel is missing or not ready."
#[tokio::test]
async fn a_subscription_of_a_channel_not_ready_says_the_channel_is_why() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let sink = Sink::start().await;
    let lost = json!({"delivery": {"deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "absent"}}}});
    create(&broker, &channels_in(NAMESPACE), channel("stuck", lost)).await;
    let path = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription("waiting", "stuck", json!({"subscriber": {"uri": sink.url}})),
    )
    .await;
    let waiting = once(&broker, &path, "ChannelReady reported False", |o| {
        has(o, "ChannelReady", "False")
    })
    .await;
    let summary = condition(&waiting, "Ready");
    assert_eq!(summary["status"], "False");
    assert_eq!(summary["reason"], "ChannelNotReady", "{summary}");
    let message = summary["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("\"stuck\"") && message.contains("DeadLetterSinkResolveFailed"),
        "names the Channel and its own reason: {message}"
    );
}

/// A Channel's `spec.subscribers` is "FILLED BY SERVER … MUST be managed
/// automatically by the controller": each Subscription resolved, what a writer
/// put there replaced; and the writes do not make the Channel flicker.
#[tokio::test]
async fn a_channel_lists_its_subscriptions_in_its_spec() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let sink = Sink::start().await;
    let replies = Sink::start().await;
    let dead = Sink::start().await;
    let path = create(
        &broker,
        &channels_in(NAMESPACE),
        channel("orders", json!({})),
    )
    .await;
    let before = ready(&broker, &path).await;
    let became_ready = condition(&before, "Ready")["lastTransitionTime"].clone();
    let created = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "billing",
            "orders",
            json!({"subscriber": {"uri": sink.url}, "reply": {"uri": replies.url},
                "delivery": {"retry": 3, "deadLetterSink": {"uri": dead.url}}}),
        ),
    )
    .await;
    let billing = ready(&broker, &created).await;
    let listed = |o: &Value| {
        o["spec"]["subscribers"]
            .as_array()
            .is_some_and(|all| all.len() == 1 && all[0]["subscriberUri"] == sink.url.as_str())
            && o["status"]["observedGeneration"] == o["metadata"]["generation"]
            && has(o, "Ready", "True")
    };
    let after = once(
        &broker,
        &path,
        "the Subscription in spec.subscribers",
        listed,
    )
    .await;
    assert_eq!(
        after["spec"]["subscribers"][0],
        json!({"uid": billing["metadata"]["uid"], "generation": 1,
            "subscriberUri": sink.url, "replyUri": replies.url,
            "delivery": {"retry": 3, "deadLetterSink": {"uri": dead.url}}})
    );
    assert_eq!(
        condition(&after, "Ready")["lastTransitionTime"],
        became_ready,
        "the Channel stayed Ready through the write of its spec"
    );

    // The status controller may write in between: a stale read is read again.
    eventually("the forged list written", async || {
        let mut forged = broker.admin().get(&path).await.body;
        forged["spec"]["subscribers"] =
            json!([{"uid": "forged", "subscriberUri": "http://127.0.0.1:9/"}]);
        let reply = broker.admin().put(&path, &forged).await;
        assert!(reply.status == 200 || reply.status == 409, "{}", reply.text);
        (reply.status == 200).then_some(())
    })
    .await;
    let mended = once(&broker, &path, "the forged list replaced", listed).await;
    assert_eq!(
        mended["spec"]["subscribers"][0]["uid"],
        billing["metadata"]["uid"]
    );

    let reply = broker.admin().delete(&created).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    once(&broker, &path, "an empty list", |o| {
        o["spec"].get("subscribers").is_none()
    })
    .await;
}

/// "Subscriptions MUST be associated with a Channel based on the
/// `spec.channel` field": by the whole reference. One naming another kind (or
/// group) by an existing Channel's name is not that Channel's.
#[tokio::test]
async fn a_subscription_naming_another_kind_is_not_the_channels() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let sink = Sink::start().await;
    let stray = Sink::start().await;
    let orders = create(
        &broker,
        &channels_in(NAMESPACE),
        channel("orders", json!({})),
    )
    .await;
    ready(&broker, &orders).await;
    let mut strays = Vec::new();
    for (name, api_version, kind) in [
        ("in-memory", "messaging.knative.dev/v1", "InMemoryChannel"),
        ("other-group", "example.com/v1", "Channel"),
    ] {
        let mut object = subscription(name, "orders", json!({"subscriber": {"uri": stray.url}}));
        object["spec"]["channel"] =
            json!({"apiVersion": api_version, "kind": kind, "name": "orders"});
        let path = create(&broker, &subscriptions_in(NAMESPACE), object).await;
        let refused = once(&broker, &path, "ChannelReady reported", |o| {
            has(o, "ChannelReady", "False")
        })
        .await;
        let ready_condition = condition(&refused, "Ready");
        assert_eq!(ready_condition["status"], "False", "{refused}");
        assert_eq!(ready_condition["reason"], "ChannelNotServed");
        assert!(
            ready_condition["message"]
                .as_str()
                .is_some_and(|m| m.contains(kind) && m.contains(api_version)),
            "{ready_condition}"
        );
        strays.push(path);
    }
    let real = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription("real", "orders", json!({"subscriber": {"uri": sink.url}})),
    )
    .await;
    let real = ready(&broker, &real).await;
    // The Channel's status follows the Subscription's own: wait until it
    // lists the real one as ready, then nothing else may be listed.
    let listed = once(
        &broker,
        &orders,
        "the real Subscription listed ready",
        |o| {
            o["status"]["subscribers"].as_array().is_some_and(|all| {
                all.iter()
                    .any(|s| s["uid"] == real["metadata"]["uid"] && s["ready"] == "True")
            })
        },
    )
    .await;
    assert_eq!(
        listed["status"]["subscribers"],
        json!([{"uid": real["metadata"]["uid"], "generation": 1, "observedGeneration": 1, "ready": "True"}]),
        "only the Subscription of this Channel is listed"
    );

    let token = namespace_token(&broker, NAMESPACE, "sender").await;
    let path = format!("/channels/{NAMESPACE}/orders");
    for id in ["first", "second"] {
        let accepted = eventually("the namespace token to be known", async || {
            let reply = post(&broker, &path, &token, &binary(id, "order.created"), "{}").await;
            (reply.status != 401).then_some(reply)
        })
        .await;
        assert_eq!(accepted.status, 202, "{}", accepted.text);
    }
    sink.wait_for(2).await;
    // The events were fanned out together; the strays' sink had as long.
    assert_eq!(stray.count(), 0, "a stray Subscription got events");
    for path in strays {
        let still = broker.admin().get(&path).await;
        assert_eq!(condition(&still.body, "Ready")["status"], "False");
    }
}

#[tokio::test]
async fn subscription_conditions_follow_knative() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let subscriber = Sink::start().await;
    let dead = Sink::start().await;
    create(
        &broker,
        &channels_in(NAMESPACE),
        channel("orders", json!({})),
    )
    .await;
    let replies = create(
        &broker,
        &brokers(NAMESPACE),
        broker_object("replies", json!({})),
    )
    .await;
    let replies_url = ready(&broker, &replies).await["status"]["address"]["url"].clone();
    let path = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "orders",
            "orders",
            json!({"subscriber": {"uri": subscriber.url},
                "reply": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "replies"}},
                "delivery": {"deadLetterSink": {"uri": dead.url}}}),
        ),
    )
    .await;
    let ready_subscription = ready(&broker, &path).await;
    assert_all_true(
        &ready_subscription,
        &[
            "ReferencesResolved",
            "ChannelReady",
            "AddedToChannel",
            "DeadLetterSinkResolved",
        ],
    );
    let physical = &ready_subscription["status"]["physicalSubscription"];
    assert_eq!(physical["subscriberUri"], json!(subscriber.url));
    assert_eq!(
        physical["replyUri"], replies_url,
        "a reply to a Broker goes to its address"
    );
    assert_eq!(physical["deadLetterSinkUri"], json!(dead.url));

    let dangling = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "dangling",
            "nowhere",
            json!({"subscriber": {"uri": subscriber.url}}),
        ),
    )
    .await;
    let dangling = once(&broker, &dangling, "ChannelReady reported", |o| {
        has(o, "ChannelReady", "False")
    })
    .await;
    assert_eq!(
        condition(&dangling, "ChannelReady")["reason"],
        "ChannelDoesNotExist"
    );
    let references = condition(&dangling, "ReferencesResolved");
    assert_eq!(references["status"], "Unknown");
    assert_eq!(references["reason"], "ChannelReferenceFailed");
    assert_eq!(condition(&dangling, "AddedToChannel")["status"], "Unknown");
    assert_eq!(condition(&dangling, "Ready")["status"], "False");

    let unresolved = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "unresolved",
            "orders",
            json!({"subscriber": {"uri": subscriber.url},
                "reply": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "absent"}}}),
        ),
    )
    .await;
    let unresolved = once(&broker, &unresolved, "ReferencesResolved reported", |o| {
        has(o, "ReferencesResolved", "False")
    })
    .await;
    assert_eq!(
        condition(&unresolved, "ReferencesResolved")["reason"],
        "ReplyResolveFailed"
    );
    assert_eq!(condition(&unresolved, "Ready")["status"], "False");
    assert!(unresolved["status"]["physicalSubscription"]["replyUri"].is_null());
}

#[tokio::test]
async fn broker_and_channel_conditions_follow_knative() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let dead = Sink::start().await;
    let delivery = json!({"delivery": {"deadLetterSink": {"uri": dead.url}}});
    let mesh_broker = create(
        &broker,
        &brokers(NAMESPACE),
        broker_object("b", delivery.clone()),
    )
    .await;
    let mesh_broker = ready(&broker, &mesh_broker).await;
    assert_all_true(
        &mesh_broker,
        &[
            "Addressable",
            "IngressReady",
            "TriggerChannelReady",
            "FilterReady",
            "DeadLetterSinkResolved",
        ],
    );
    assert!(mesh_broker["status"]["address"]["url"].is_string());

    let served = create(&broker, &channels_in(NAMESPACE), channel("c", delivery)).await;
    let served = ready(&broker, &served).await;
    assert_all_true(
        &served,
        &[
            "Addressable",
            "BackingChannelReady",
            "DeadLetterSinkResolved",
        ],
    );

    let kafka = json!({"channelTemplate": {"apiVersion": "messaging.knative.dev/v1beta1", "kind": "KafkaChannel"}});
    let unserved = create(&broker, &channels_in(NAMESPACE), channel("k", kafka)).await;
    let unserved = once(&broker, &unserved, "BackingChannelReady reported", |o| {
        has(o, "BackingChannelReady", "False")
    })
    .await;
    let backing = condition(&unserved, "BackingChannelReady");
    assert_eq!(backing["reason"], "UnsupportedChannel");
    assert!(
        backing["message"]
            .as_str()
            .is_some_and(|m| m.contains("KafkaChannel")),
        "{backing}"
    );
    assert_eq!(condition(&unserved, "Addressable")["status"], "False");
    assert_eq!(
        condition(&unserved, "Ready")["reason"],
        "UnsupportedChannel"
    );

    let unresolvable = json!({"delivery": {"deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "absent"}}}});
    let lost = create(
        &broker,
        &brokers(NAMESPACE),
        broker_object("lost", unresolvable),
    )
    .await;
    let lost = once(&broker, &lost, "DeadLetterSinkResolved reported", |o| {
        has(o, "DeadLetterSinkResolved", "False")
    })
    .await;
    assert_eq!(
        condition(&lost, "DeadLetterSinkResolved")["reason"],
        "DeadLetterSinkResolveFailed"
    );
    assert_eq!(condition(&lost, "Ready")["status"], "False");
    assert!(lost["status"]["deadLetterSinkUri"].is_null());
}

#[tokio::test]
async fn each_kind_shows_its_resolved_dead_letter_sink_uri() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let subscriber = Sink::start().await;
    let broker_dead = Sink::start().await;
    let own_dead = Sink::start().await;
    let parent = create(
        &broker,
        &brokers(NAMESPACE),
        broker_object(
            "b",
            json!({"delivery": {"deadLetterSink": {"uri": broker_dead.url}}}),
        ),
    )
    .await;
    let parent = ready(&broker, &parent).await;
    assert_eq!(
        parent["status"]["deadLetterSinkUri"],
        json!(broker_dead.url)
    );
    let broker_address = parent["status"]["address"]["url"].clone();

    // A Trigger without delivery of its own dead-letters where its Broker does.
    let inheriting = create(
        &broker,
        &triggers(NAMESPACE),
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "t"},
            "spec": {"broker": "b", "subscriber": {"uri": subscriber.url}}}),
    )
    .await;
    let inheriting = ready(&broker, &inheriting).await;
    assert_eq!(
        inheriting["status"]["deadLetterSinkUri"],
        json!(broker_dead.url)
    );

    // A Channel's sink given as a reference resolves to the referenced address.
    let to_broker = json!({"delivery": {"deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": "b"}}}});
    let orders = create(
        &broker,
        &channels_in(NAMESPACE),
        channel("orders", to_broker),
    )
    .await;
    let orders = ready(&broker, &orders).await;
    assert_eq!(orders["status"]["deadLetterSinkUri"], broker_address);

    let plain = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "plain",
            "orders",
            json!({"subscriber": {"uri": subscriber.url}}),
        ),
    )
    .await;
    let plain = ready(&broker, &plain).await;
    assert_eq!(
        plain["status"]["physicalSubscription"]["deadLetterSinkUri"], broker_address,
        "the Channel's sink"
    );
    let own = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "own",
            "orders",
            json!({"subscriber": {"uri": subscriber.url}, "delivery": {"deadLetterSink": {"uri": own_dead.url}}}),
        ),
    )
    .await;
    let own = ready(&broker, &own).await;
    assert_eq!(
        own["status"]["physicalSubscription"]["deadLetterSinkUri"],
        json!(own_dead.url)
    );
}

#[tokio::test]
async fn a_subscription_without_delivery_uses_its_channels_delivery() {
    let broker = Broker::start().await;
    create_namespace(&broker, NAMESPACE).await;
    let failing = Sink::start().await;
    failing.answer(&[500], "down");
    let channel_dead = Sink::start().await;
    let own_failing = Sink::start().await;
    own_failing.answer(&[500], "down too");
    let own_dead = Sink::start().await;
    let orders = create(
        &broker,
        &channels_in(NAMESPACE),
        channel(
            "orders",
            json!({"delivery": {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.01S",
                "deadLetterSink": {"uri": channel_dead.url}}}),
        ),
    )
    .await;
    ready(&broker, &orders).await;
    let defaulted = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "defaulted",
            "orders",
            json!({"subscriber": {"uri": failing.url}}),
        ),
    )
    .await;
    ready(&broker, &defaulted).await;
    // Its own delivery replaces the Channel's entirely: one retry, its own sink.
    let own = create(
        &broker,
        &subscriptions_in(NAMESPACE),
        subscription(
            "own",
            "orders",
            json!({"subscriber": {"uri": own_failing.url},
                "delivery": {"retry": 1, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": own_dead.url}}}),
        ),
    )
    .await;
    ready(&broker, &own).await;

    let token = namespace_token(&broker, NAMESPACE, "sender").await;
    let path = format!("/channels/{NAMESPACE}/orders");
    let accepted = eventually("the namespace token to be known", async || {
        let reply = post(
            &broker,
            &path,
            &token,
            &binary("doomed", "order.created"),
            "{}",
        )
        .await;
        (reply.status != 401).then_some(reply)
    })
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);

    let letters = channel_dead.wait_for(1).await;
    assert_eq!(
        failing.count(),
        3,
        "the first attempt and the Channel's two retries"
    );
    let letter = &letters[0];
    assert_eq!(letter.header("ce-id"), Some("doomed"));
    assert_eq!(
        letter.header("ce-knativeerrordest"),
        Some(failing.url.as_str())
    );
    assert_eq!(letter.header("ce-knativeerrorcode"), Some("500"));
    assert!(letter.header("ce-knativeerrordata").is_some());

    let own_letters = own_dead.wait_for(1).await;
    assert_eq!(
        own_failing.count(),
        2,
        "the first attempt and its own one retry"
    );
    assert_eq!(
        own_letters[0].header("ce-knativeerrordest"),
        Some(own_failing.url.as_str())
    );
    assert!(
        channel_dead
            .received()
            .iter()
            .all(|l| l.header("ce-knativeerrordest") == Some(failing.url.as_str())),
        "the Channel's sink took none of the Subscription with its own delivery"
    );
}

#[tokio::test]
async fn a_broker_of_another_class_and_its_triggers_are_left_to_their_implementation() {
    let broker = Broker::start().await;
    provisioned(&broker, &[NAMESPACE]).await;
    let mut theirs = broker_object("theirs", json!({}));
    theirs["metadata"]["annotations"] =
        json!({"eventing.knative.dev/broker.class": "MTChannelBasedBroker"});
    let theirs = create(&broker, &brokers(NAMESPACE), theirs).await;
    let sink = Sink::start().await;
    let on_theirs = create(
        &broker,
        &triggers(NAMESPACE),
        json!({"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": "on-theirs"},
            "spec": {"broker": "theirs", "subscriber": {"uri": sink.url}}}),
    )
    .await;
    // Made after them: once these are Ready, the controllers have been by.
    let ours = create(
        &broker,
        &brokers(NAMESPACE),
        broker_object("ours", json!({})),
    )
    .await;
    ready(&broker, &ours).await;
    trigger(
        &broker,
        NAMESPACE,
        "on-ours",
        json!({"broker": "ours", "subscriber": {"uri": sink.url}}),
    )
    .await;
    for path in [&theirs, &on_theirs] {
        let object = broker.admin().get(path).await.body;
        assert!(
            object["status"]["conditions"].is_null(),
            "{path} has a status of meshbroker's: {}",
            object["status"]
        );
    }
    let token = namespace_token(&broker, NAMESPACE, "sender").await;
    post_when_token_known(&broker, &format!("/{NAMESPACE}/ours"), &token, "first").await;
    let refused = post(
        &broker,
        &format!("/{NAMESPACE}/theirs"),
        &token,
        &binary("second", "note.taken"),
        "{}",
    )
    .await;
    assert_eq!(refused.status, 404, "not served here: {}", refused.text);
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("first"));
}
