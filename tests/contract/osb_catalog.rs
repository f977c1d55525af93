//! The catalog: one Event ServiceClass per Application service with an Events entry.

use serde_json::{Value, json};

use crate::common::Broker;
use crate::common::fixtures::*;

fn service<'a>(catalog: &'a Value, id: &str) -> &'a Value {
    catalog["services"]
        .as_array()
        .and_then(|s| s.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("service {id} in {catalog}"))
}

#[tokio::test]
async fn the_catalog_lists_one_class_per_events_service() {
    let broker = Broker::start().await;
    assert_eq!(
        broker.osb().catalog().await.body,
        json!({"services": []}),
        "empty before any Application"
    );
    register_commerce(&broker).await;
    let catalog = broker.osb().catalog().await.body;
    assert_eq!(catalog["services"].as_array().map(Vec::len), Some(2));
    let orders = service(&catalog, ORDER_SERVICE);
    assert_eq!(orders["name"], "order-service");
    assert_eq!(orders["description"], "Order lifecycle events");
    assert_eq!(
        orders["bindable"], false,
        "events-only services are not bindable"
    );
    assert_eq!(orders["instances_retrievable"], true);
    assert_eq!(orders["metadata"]["displayName"], "Order Service");
    assert_eq!(orders["metadata"]["providerDisplayName"], "Example Corp");
    assert_eq!(orders["metadata"]["applicationName"], "commerce");
    assert_eq!(
        orders["metadata"]["eventTypes"],
        json!([{"name": "order.cancelled", "version": "v1"}, {"name": "order.created", "version": "v1"}])
    );
    let plan = &orders["plans"][0];
    assert_eq!(plan["name"], "default");
    assert_eq!(plan["id"], plan_of(ORDER_SERVICE));
    assert_eq!(plan["maintenance_info"]["version"], "1.0.0");
    // Draft 4: what every platform must support (Cloud Foundry refuses later ones).
    assert_eq!(
        plan["schemas"]["service_instance"]["create"]["parameters"]["$schema"],
        "http://json-schema.org/draft-04/schema#"
    );
    let shipping = service(&catalog, SHIPPING_SERVICE);
    assert_eq!(
        shipping["bindable"], true,
        "a service with an API entry is bindable"
    );
}

#[tokio::test]
async fn class_ids_and_names_are_stable_and_unique() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    let twin = example("order-service.application.yaml")
        .replace("name: commerce", "name: commerce-eu")
        .replace(
            "5a5f1e0c-8a6d-4c33-9d57-2a3c0a0e7b11",
            "11111111-2222-4333-8444-555555555555",
        )
        .replace(
            "9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
            "66666666-7777-4888-9999-000000000000",
        );
    assert_eq!(
        broker.admin().create_yaml(APPLICATIONS, &twin).await.status,
        201
    );
    let first = broker.osb().catalog().await.body;
    let names: Vec<&str> = first["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "names are unique: {names:?}");
    assert_eq!(
        broker.osb().catalog().await.body,
        first,
        "the same catalog twice"
    );
}

#[tokio::test]
async fn a_namespace_catalog_lists_only_mapped_classes_and_follows_changes() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    create_namespace(&broker, "team-a").await;
    assert_eq!(
        broker.osb_in("team-a").catalog().await.body,
        json!({"services": []})
    );
    map_commerce(&broker, "team-a", &[ORDER_SERVICE]).await;
    let catalog = broker.osb_in("team-a").catalog().await.body;
    let ids: Vec<&Value> = catalog["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&json!(ORDER_SERVICE)],
        "the mapping's service list narrows it"
    );
    let path = format!("{}/{APPLICATION}", mappings("team-a"));
    assert_eq!(broker.admin().delete(&path).await.status, 200);
    assert_eq!(
        broker.osb_in("team-a").catalog().await.body,
        json!({"services": []}),
        "unmapping shows at once"
    );
    assert_eq!(
        broker.osb().catalog().await.body["services"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "the global catalog keeps all"
    );
    for impossible in ["NOPE_x", "a.b"] {
        let reply = broker.osb_in(impossible).catalog().await;
        assert_eq!(reply.status, 400, "{impossible}: {}", reply.text);
        assert!(
            reply.message().contains("cannot be a namespace"),
            "{}",
            reply.text
        );
    }
}

#[tokio::test]
async fn an_application_change_shows_in_the_catalog_at_once() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    let path = format!("{APPLICATIONS}/{APPLICATION}");
    let mut application = settled(&broker, &path).await;
    application["spec"]["services"][0]["displayName"] = json!("Orders");
    assert_eq!(broker.admin().put(&path, &application).await.status, 200);
    let catalog = broker.osb().catalog().await.body;
    assert_eq!(service(&catalog, ORDER_SERVICE)["name"], "orders");
    assert_eq!(broker.admin().delete(&path).await.status, 200);
    assert_eq!(broker.osb().catalog().await.body, json!({"services": []}));
}

#[tokio::test]
async fn a_service_id_another_application_has_is_refused_and_its_class_stays() {
    let broker = Broker::start().await;
    register_commerce(&broker).await;
    let copycat =
        example("order-service.application.yaml").replace("name: commerce", "name: copycat");
    let reply = broker.admin().create_yaml(APPLICATIONS, &copycat).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.body["details"]["causes"][0]["field"], "spec.services[0].id",
        "{}",
        reply.text
    );
    assert!(
        broker
            .admin()
            .find(&format!("{APPLICATIONS}/copycat"))
            .await
            .is_none()
    );
    let catalog = broker.osb().catalog().await.body;
    assert_eq!(
        service(&catalog, ORDER_SERVICE)["metadata"]["applicationName"],
        "commerce"
    );
}
