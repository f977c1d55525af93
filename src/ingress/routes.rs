//! Every route of the events listener in one table: the addresses meshbroker
//! publishes are checked against exactly what is served.

use axum::Router;
use axum::routing::post;

use super::request::{allowed_methods, wrong_method};
use super::{application, broker, channel};
use crate::state::AppState;

/// The hop a path of the events listener reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Application,
    ApplicationLegacy,
    Channel,
    Broker,
}

/// Every route of the events listener, in one table, so the addresses meshbroker
/// publishes can be checked against exactly what is served. Parameters are named
/// as in openapi/events.yaml: the templates are the `route` label of
/// `meshbroker_http_requests_total`, so dashboards and the document agree.
const ROUTES: [(&str, Hop); 5] = [
    ("/{application}/events", Hop::Application),
    ("/{application}/v2/events", Hop::Application),
    ("/{application}/v1/events", Hop::ApplicationLegacy),
    ("/channels/{namespace}/{channel}", Hop::Channel),
    ("/{namespace}/{broker}", Hop::Broker),
];

pub fn routes() -> Router<AppState> {
    ROUTES.iter().fold(Router::new(), |router, (path, hop)| {
        let handler = match hop {
            Hop::Application => post(application::cloudevents),
            Hop::ApplicationLegacy => post(application::legacy),
            Hop::Channel => post(channel::receive),
            Hop::Broker => post(broker::receive),
        };
        router.route(
            path,
            handler.options(allowed_methods).fallback(wrong_method),
        )
    })
}

/// A Broker's and an Application's ingress again on the control listener,
/// for the console's test events (a page talks to its own origin only):
/// the same handlers, credentials and limits as on the events listener, except
/// that `--anonymous-senders` does not reach here.
pub fn console_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console/api/brokers/{namespace}/{broker}/events",
            post(broker::receive_from_console),
        )
        .route(
            "/console/api/applications/{application}/events",
            post(application::cloudevents),
        )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::body::Body;
    use axum::extract::Path;
    use axum::http::Request;
    use axum::routing::any;
    use tower::ServiceExt;

    use super::*;
    use crate::resources::route_collision;

    /// The same routes, answering which hop and which names they matched.
    fn probe() -> Router {
        ROUTES.iter().fold(Router::new(), |router, (path, hop)| {
            let hop = *hop;
            router.route(
                path,
                any(
                    move |Path(names): Path<HashMap<String, String>>| async move {
                        let mut names: Vec<_> = names.into_iter().collect();
                        names.sort();
                        format!("{hop:?} {names:?}")
                    },
                ),
            )
        })
    }

    async fn reached(router: &Router, path: &str) -> String {
        let request = Request::post(path).body(Body::empty()).expect("request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }

    fn expect(hop: Hop, names: &[(&str, &str)]) -> String {
        let mut names: Vec<(String, String)> = names
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        names.sort();
        format!("{hop:?} {names:?}")
    }

    #[tokio::test]
    async fn every_published_address_reaches_its_own_object_whatever_the_names() {
        // Every word a route is made of, and ordinary names.
        let words = [
            "events", "v1", "v2", "channels", "default", "orders", "apis",
        ];
        let router = probe();
        for first in words {
            for second in words {
                if route_collision("Application", first).is_none() {
                    for path in [format!("/{first}/events"), format!("/{first}/v2/events")] {
                        assert_eq!(
                            reached(&router, &path).await,
                            expect(Hop::Application, &[("application", first)]),
                            "{path}"
                        );
                    }
                    let path = format!("/{first}/v1/events");
                    assert_eq!(
                        reached(&router, &path).await,
                        expect(Hop::ApplicationLegacy, &[("application", first)]),
                        "{path}"
                    );
                }
                if route_collision("Broker", second).is_none() {
                    let path = format!("/{first}/{second}");
                    assert_eq!(
                        reached(&router, &path).await,
                        expect(Hop::Broker, &[("namespace", first), ("broker", second)]),
                        "Broker {second} of namespace {first}"
                    );
                }
                let path = format!("/channels/{first}/{second}");
                assert_eq!(
                    reached(&router, &path).await,
                    expect(Hop::Channel, &[("namespace", first), ("channel", second)]),
                    "Channel {second} of namespace {first}"
                );
            }
        }
    }

    #[test]
    fn only_the_colliding_names_are_refused() {
        assert!(route_collision("Broker", "events").is_some());
        assert!(route_collision("Application", "channels").is_some());
        for (kind, name) in [
            ("Broker", "default"),
            ("Broker", "channels"),
            ("Application", "events"),
            ("Trigger", "events"),
        ] {
            assert!(route_collision(kind, name).is_none(), "{kind} {name}");
        }
    }
}
