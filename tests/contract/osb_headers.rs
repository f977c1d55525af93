//! Headers and authentication of every OSB request.

use base64::Engine;
use reqwest::Method;

use crate::common::Broker;

#[tokio::test]
async fn a_missing_api_version_is_412() {
    let broker = Broker::start().await;
    let osb = broker.osb();
    let request = broker
        .http
        .get(osb.url("/v2/catalog"))
        .basic_auth("meshbroker", Some(&broker.osb_password));
    let reply = osb.send(request, "get", "/v2/catalog").await;
    assert_eq!(reply.status, 412);
    assert!(
        reply.message().contains("X-Broker-API-Version"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn versions_2_13_and_later_2_x_are_served_and_others_are_412() {
    let broker = Broker::start().await;
    let osb = broker.osb();
    for (version, expected) in [
        ("2.13", 200),
        ("2.15", 200),
        ("2.17", 200),
        ("2.18", 200),
        ("2.99", 200),
        ("2.12", 412),
        ("2.x", 412),
        ("3.0", 412),
    ] {
        let request = broker
            .http
            .get(osb.url("/v2/catalog"))
            .basic_auth("meshbroker", Some(&broker.osb_password))
            .header("X-Broker-API-Version", version);
        let reply = osb.send(request, "get", "/v2/catalog").await;
        assert_eq!(reply.status, expected, "version {version}: {}", reply.text);
    }
    // Twice, even once supported: which one counts would be a guess.
    let twice = broker
        .http
        .get(osb.url("/v2/catalog"))
        .basic_auth("meshbroker", Some(&broker.osb_password))
        .header("X-Broker-API-Version", "2.17")
        .header("X-Broker-API-Version", "2.12");
    let reply = osb.send(twice, "get", "/v2/catalog").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.text.contains("more than once"), "{}", reply.text);
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_401() {
    let broker = Broker::start().await;
    let osb = broker.osb();
    let anonymous = broker
        .http
        .get(osb.url("/v2/catalog"))
        .header("X-Broker-API-Version", "2.17");
    let reply = osb.send(anonymous, "get", "/v2/catalog").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["www-authenticate"], r#"Basic realm="meshbroker", Bearer realm="meshbroker""#,
        "a 401 names its challenges (RFC 7235)"
    );
    let wrong_bearer = broker
        .http
        .get(osb.url("/v2/catalog"))
        .header("X-Broker-API-Version", "2.17")
        .bearer_auth("not-a-token");
    let reply = osb.send(wrong_bearer, "get", "/v2/catalog").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["www-authenticate"], r#"Bearer realm="meshbroker""#,
        "a bearer caller is not asked for a password (a browser would prompt for one)"
    );
    let wrong = broker
        .http
        .get(osb.url("/v2/catalog"))
        .header("X-Broker-API-Version", "2.17")
        .basic_auth("meshbroker", Some("not-the-password"));
    assert_eq!(osb.send(wrong, "get", "/v2/catalog").await.status, 401);
    let wrong_user = broker
        .http
        .get(osb.url("/v2/catalog"))
        .header("X-Broker-API-Version", "2.17")
        .basic_auth("someone", Some(&broker.osb_password));
    assert_eq!(osb.send(wrong_user, "get", "/v2/catalog").await.status, 401);
}

#[tokio::test]
async fn the_admin_bearer_token_also_opens_the_osb_api() {
    let broker = Broker::start().await;
    let osb = broker.osb();
    let request = broker
        .http
        .get(osb.url("/v2/catalog"))
        .header("X-Broker-API-Version", "2.17")
        .bearer_auth(&broker.admin_token);
    assert_eq!(osb.send(request, "get", "/v2/catalog").await.status, 200);
}

#[tokio::test]
async fn the_request_identity_is_echoed() {
    let broker = Broker::start().await;
    let osb = broker.osb();
    let request = osb.request(Method::GET, "/v2/catalog").header(
        "X-Broker-API-Request-Identity",
        "e26cea7a-2b9c-4b4a-8b56-1f1b7c5a0c11",
    );
    let reply = osb.send(request, "get", "/v2/catalog").await;
    assert_eq!(
        reply.header("x-broker-api-request-identity"),
        Some("e26cea7a-2b9c-4b4a-8b56-1f1b7c5a0c11")
    );
    let failing = broker
        .http
        .get(osb.url("/v2/catalog"))
        .header("X-Broker-API-Request-Identity", "abc");
    let reply = osb.send(failing, "get", "/v2/catalog").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("x-broker-api-request-identity"),
        Some("abc"),
        "echoed on errors too"
    );
}

#[tokio::test]
async fn an_originating_identity_is_decoded_and_a_malformed_one_is_400() {
    let broker = Broker::start().await;
    let osb = broker.osb();
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(r#"{"username":"alice","uid":"1"}"#);
    let good = osb.request(Method::GET, "/v2/catalog").header(
        "X-Broker-API-Originating-Identity",
        format!("kubernetes {encoded}"),
    );
    assert_eq!(osb.send(good, "get", "/v2/catalog").await.status, 200);
    for bad in ["kubernetes", "kubernetes %%%", "kubernetes bm90IGpzb24="] {
        let request = osb
            .request(Method::GET, "/v2/catalog")
            .header("X-Broker-API-Originating-Identity", bad);
        let reply = osb.send(request, "get", "/v2/catalog").await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
        assert!(
            reply.message().contains("Originating-Identity"),
            "{}",
            reply.text
        );
    }
}

/// Requests no OSB route serves: a method a path does not have, or a path under
/// `/v2/` (or `/{namespace}/v2/`) that does not exist.
const UNSERVED: [(&str, &str, u16); 5] = [
    ("POST", "/v2/catalog", 405),
    ("OPTIONS", "/v2/service_instances/x", 405),
    (
        "GET",
        "/team-a/v2/service_instances/x/service_bindings/y",
        405,
    ),
    ("GET", "/v2/no-such-endpoint", 404),
    (
        "GET",
        "/team-a/v2/service_instances/x/service_bindings/y/last_operation",
        404,
    ),
];

#[tokio::test]
async fn unserved_osb_paths_and_methods_check_credentials_then_the_version_first() {
    let broker = Broker::start().await;
    for (method, path, status) in UNSERVED {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let url = broker.osb().url(path);
        let send = async |request: reqwest::RequestBuilder| {
            crate::common::Reply::from(request.send().await.expect("request")).await
        };
        let anonymous = send(
            broker
                .http
                .request(method.clone(), &url)
                .header("X-Broker-API-Version", "2.17"),
        )
        .await;
        assert_eq!(anonymous.status, 401, "{method} {path}: {}", anonymous.text);
        assert_eq!(anonymous.body["error"], "Unauthorized");
        let no_version = send(
            broker
                .http
                .request(method.clone(), &url)
                .basic_auth("meshbroker", Some(&broker.osb_password)),
        )
        .await;
        assert_eq!(
            no_version.status, 412,
            "{method} {path}: {}",
            no_version.text
        );
        assert_eq!(no_version.body["error"], "PreconditionFailed");
        let checked = send(broker.osb().request(method.clone(), path)).await;
        assert_eq!(checked.status, status, "{method} {path}: {}", checked.text);
        let error = if status == 404 {
            "NotFound"
        } else {
            "MethodNotAllowed"
        };
        assert_eq!(checked.body["error"], error, "an OSB error body");
        assert!(!checked.message().is_empty(), "{}", checked.text);
    }
}
