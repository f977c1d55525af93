//! Admission and the overflow policy, on paused time, with dispatchers whose
//! deliveries go nowhere and last a set virtual time (`dispatch::testing`):
//! what a request left queued is read off each dispatcher's free places and
//! the namespace budgets' claims (`InFlight`).

use std::time::Duration;

use super::*;
use crate::mesh::dispatch::testing::{deps, event, outcomes, room};
use crate::mesh::dispatch::{Budget, DispatchDeps, Dispatcher};
use crate::mesh::filter::{Entry, Filter, TriggerIndex};

const HOUR: Duration = Duration::from_secs(3600);

fn of_type(ty: &str) -> Filter {
    Filter::Exact {
        name: "type".into(),
        value: ty.into(),
    }
}

fn broker(namespace: &str, triggers: &[(Filter, &Arc<Dispatcher>)]) -> Arc<BrokerRoute> {
    let entries = triggers
        .iter()
        .map(|(filter, dispatcher)| Entry {
            trigger: dispatcher.target().label.clone(),
            filter: Arc::new(filter.clone()),
            value: Arc::clone(dispatcher),
        })
        .collect();
    Arc::new(BrokerRoute {
        namespace: namespace.into(),
        name: "default".into(),
        triggers: TriggerIndex::new(entries),
        log: None,
    })
}

fn channel(subscribers: Vec<ChannelSubscriber>) -> ChannelRoute {
    ChannelRoute {
        namespace: "kyma-integration".into(),
        name: "orders".into(),
        application: Some("orders".into()),
        subscribers,
        log: None,
        taken: Default::default(),
    }
}

fn router(deps: &Arc<DispatchDeps>) -> Router {
    Router::new(deps.metrics.clone())
}

/// A Trigger whose queue (of one) is taken by an event that stays in delivery.
fn full(deps: &Arc<DispatchDeps>, label: &str) -> Arc<Dispatcher> {
    let dispatcher = Dispatcher::test(label).queue(1).busy(HOUR).spawn(deps);
    dispatcher
        .try_reserve()
        .expect("room for the first event")
        .send(event("filler"));
    assert_eq!(room(&dispatcher), 0);
    dispatcher
}

/// A Trigger with room whose deliveries stay in progress, so what it was given
/// stays counted.
fn roomy(deps: &Arc<DispatchDeps>, label: &str) -> Arc<Dispatcher> {
    Dispatcher::test(label).busy(HOUR).spawn(deps)
}

#[tokio::test(start_paused = true)]
async fn a_broker_queues_an_event_for_every_matching_trigger_and_no_other() {
    let deps = deps();
    let created = roomy(&deps, "team-a/created");
    let everything = roomy(&deps, "team-a/everything");
    let paid = roomy(&deps, "team-a/paid");
    let route = broker(
        "team-a",
        &[
            (of_type("order.created"), &created),
            (Filter::Everything, &everything),
            (of_type("order.paid"), &paid),
        ],
    );
    let router = router(&deps);

    assert_eq!(
        router.send_to_broker(&route, &[event("order.created")]),
        Ok(())
    );
    assert_eq!((room(&created), room(&everything), room(&paid)), (7, 7, 8));
    assert_eq!(outcomes(&deps.metrics, "accepted"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_broker_refuses_the_whole_request_when_one_matching_trigger_is_full_and_keeps_nothing() {
    let deps = deps();
    let free = roomy(&deps, "team-a/free");
    let slow = Dispatcher::test("team-a/slow")
        .queue(1)
        .busy(Duration::from_millis(100))
        .spawn(&deps);
    let route = broker(
        "team-a",
        &[(Filter::Everything, &free), (Filter::Everything, &slow)],
    );
    let router = router(&deps);
    assert_eq!(router.send_to_broker(&route, &[event("first")]), Ok(()));
    let in_flight = deps.in_flight.count();

    let batch = [event("order.created"), event("order.paid")];
    assert_eq!(router.send_to_broker(&route, &batch), Err(Overloaded));
    assert_eq!(
        room(&free),
        7,
        "the places reserved for the batch were given back"
    );
    assert_eq!(deps.in_flight.count(), in_flight, "and their budget claims");
    assert_eq!(outcomes(&deps.metrics, "accepted"), 1);

    tokio::time::sleep(Duration::from_millis(101)).await;
    assert_eq!(
        router.send_to_broker(&route, &batch[..1]),
        Ok(()),
        "room again, once the slow delivery is over"
    );
    assert_eq!(room(&free), 6);
}

#[tokio::test(start_paused = true)]
async fn a_full_trigger_with_a_dead_letter_sink_sends_there_only_once_the_request_commits() {
    let deps = deps();
    let free = roomy(&deps, "team-a/free");
    // A namespace budget of nothing: always full, whatever its queue.
    let spent = Budget::of_events(0);
    let overflowing = Dispatcher::test("team-a/overflowing")
        .dead_letter()
        .budget(&spent)
        .spawn(&deps);
    let refusing = Dispatcher::test("team-a/refusing")
        .budget(&spent)
        .spawn(&deps);
    let router = router(&deps);

    let refused = broker(
        "team-a",
        &[
            (Filter::Everything, &overflowing),
            (Filter::Everything, &refusing),
        ],
    );
    assert_eq!(
        router.send_to_broker(&refused, &[event("e")]),
        Err(Overloaded)
    );
    tokio::task::yield_now().await;
    assert_eq!(deps.in_flight.count(), 0);
    assert_eq!(
        outcomes(&deps.metrics, "undeliverable"),
        0,
        "a refused request sent nothing to the dead-letter sink"
    );

    let committed = broker(
        "team-a",
        &[
            (Filter::Everything, &free),
            (Filter::Everything, &overflowing),
        ],
    );
    assert_eq!(router.send_to_broker(&committed, &[event("e")]), Ok(()));
    assert_eq!(room(&free), 7);
    assert_eq!(
        deps.in_flight.drained(Duration::from_millis(1)).await,
        1,
        "only the queued one left"
    );
    assert_eq!(
        outcomes(&deps.metrics, "undeliverable"),
        1,
        "the overflow went to the (unreachable) dead-letter sink"
    );
}

#[tokio::test(start_paused = true)]
async fn a_namespace_budget_is_shared_by_its_triggers() {
    let deps = deps();
    let budget = Budget::of_events(1);
    let first = Dispatcher::test("team-a/first")
        .busy(Duration::from_millis(100))
        .budget(&budget)
        .spawn(&deps);
    let second = Dispatcher::test("team-a/second")
        .budget(&budget)
        .spawn(&deps);
    let route = broker("team-a", &[(of_type("a"), &first), (of_type("b"), &second)]);
    let router = router(&deps);

    assert_eq!(router.send_to_broker(&route, &[event("a")]), Ok(()));
    assert_eq!(
        router.send_to_broker(&route, &[event("b")]),
        Err(Overloaded),
        "the namespace's one event is taken, though the second queue is empty"
    );
    tokio::time::sleep(Duration::from_millis(101)).await;
    assert_eq!(
        router.send_to_broker(&route, &[event("b")]),
        Ok(()),
        "given back once the first delivery is over"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_trigger_does_not_keep_an_application_event_from_its_sibling_triggers() {
    let deps = deps();
    let stuck = full(&deps, "team-a/stuck");
    let sibling = roomy(&deps, "team-a/sibling");
    let elsewhere = roomy(&deps, "team-b/orders");
    let plain = roomy(&deps, "kyma-integration/plain");
    let route = channel(vec![
        ChannelSubscriber::Broker(broker(
            "team-a",
            &[(Filter::Everything, &stuck), (Filter::Everything, &sibling)],
        )),
        ChannelSubscriber::Broker(broker("team-b", &[(Filter::Everything, &elsewhere)])),
        ChannelSubscriber::Http(plain.clone()),
    ]);
    let router = router(&deps);

    assert_eq!(
        router.send_to_channel(&route, &[event("order.created")]),
        Ok(())
    );
    assert_eq!((room(&sibling), room(&elsewhere), room(&plain)), (7, 7, 7));
    assert_eq!(
        outcomes(&deps.metrics, "undeliverable"),
        1,
        "counted where it did not fit"
    );
}

#[tokio::test(start_paused = true)]
async fn a_channel_refuses_only_when_no_subscriber_that_wants_the_event_has_room() {
    let deps = deps();
    let stuck = full(&deps, "team-a/stuck");
    let plain = full(&deps, "kyma-integration/plain");
    let uninterested = roomy(&deps, "team-b/payments");
    let route = channel(vec![
        ChannelSubscriber::Broker(broker("team-a", &[(Filter::Everything, &stuck)])),
        ChannelSubscriber::Broker(broker("team-b", &[(of_type("payment"), &uninterested)])),
        ChannelSubscriber::Http(plain.clone()),
    ]);
    let router = router(&deps);
    let in_flight = deps.in_flight.count();

    assert_eq!(
        router.send_to_channel(&route, &[event("order.created")]),
        Err(Overloaded),
        "a namespace that filters the event out is no place for it"
    );
    assert_eq!(deps.in_flight.count(), in_flight);
    assert_eq!(
        outcomes(&deps.metrics, "undeliverable"),
        0,
        "refused, not lost"
    );

    let nobody = channel(vec![ChannelSubscriber::Broker(broker(
        "team-b",
        &[(of_type("payment"), &uninterested)],
    ))]);
    assert_eq!(
        router.send_to_channel(&nobody, &[event("order.created")]),
        Ok(()),
        "wanted nowhere: accepted, and nothing to queue"
    );
    assert_eq!(room(&uninterested), 8);
}

#[tokio::test(start_paused = true)]
async fn a_channel_batch_is_refused_whole_when_one_event_fits_nowhere() {
    let deps = deps();
    let created = roomy(&deps, "team-a/created");
    let paid = full(&deps, "team-a/paid");
    let route = channel(vec![ChannelSubscriber::Broker(broker(
        "team-a",
        &[
            (of_type("order.created"), &created),
            (of_type("order.paid"), &paid),
        ],
    ))]);
    let router = router(&deps);

    let batch = [event("order.created"), event("order.paid")];
    assert_eq!(router.send_to_channel(&route, &batch), Err(Overloaded));
    assert_eq!(
        room(&created),
        8,
        "nothing of the refused request was queued"
    );
    assert_eq!(outcomes(&deps.metrics, "undeliverable"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_reaches_its_broker_through_the_current_table() {
    let deps = deps();
    let trigger = roomy(&deps, "team-a/replies");
    let router = Arc::new(router(&deps));
    let mut table = RoutingTable::default();
    table.brokers.insert(
        ("team-a".into(), "default".into()),
        broker("team-a", &[(Filter::Everything, &trigger)]),
    );
    router.install(table, 1);
    let local = LocalDelivery(Arc::downgrade(&router));
    let to = |namespace: &str| Local::Broker {
        namespace: namespace.into(),
        name: "default".into(),
    };

    assert_eq!(local.hand_over(&to("team-a"), event("reply")).await, Ok(()));
    assert_eq!(room(&trigger), 7);
    assert_eq!(
        local.hand_over(&to("team-b"), event("reply")).await,
        Err(Refusal::Gone)
    );
    assert_eq!(
        outcomes(&deps.metrics, "accepted"),
        1,
        "no Broker team-b/default: dropped"
    );
}
