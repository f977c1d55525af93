//! The Application Connector end to end over real TLS (Kyma's Connector
//! Service API v1): a TokenRequest's one-time URL, a CSR traded for a client
//! certificate, events sent with that certificate, renewal and revocation, and
//! every refusal: reused and expired tokens, CSRs with another subject or a
//! broken signature, expired, revoked and foreign-CA certificates, and one
//! Application's certificate on another's path.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use serde_json::{Value, json};

use k8s_openapi::api::core::v1::Secret;

use crate::common::fixtures::{APPLICATION, APPLICATIONS, register_commerce};
use crate::common::kube::{Cluster, LEASE_NAMESPACE};
use crate::common::mesh::{binary, catch_all, provisioned};
use crate::common::openapi::{self, event_template};
use crate::common::{Backend, Broker, Reply, eventually};

const TOKEN_REQUESTS: &str =
    "/apis/applicationconnector.kyma-project.io/v1alpha1/namespaces/kyma-integration/tokenrequests";
const REVOCATIONS: &str = "/apis/meshbroker.io/v1alpha1/certificaterevocations";
const KYMA_SUBJECT: [(DnType, &str); 5] = [
    (DnType::OrganizationalUnitName, "OrgUnit"),
    (DnType::OrganizationName, "Organization"),
    (DnType::LocalityName, "Waldorf"),
    (DnType::StateOrProvinceName, "Waldorf"),
    (DnType::CountryName, "DE"),
];

/// A broker whose events listener serves TLS; on a cluster, meshbroker may
/// keep its CA in a Secret of its own namespace (deploy/'s Role).
async fn start_tls(extra: &[&str]) -> Broker {
    let mut args = vec!["--events-tls-hosts", "127.0.0.1"];
    args.extend_from_slice(extra);
    match crate::BACKEND {
        Backend::Embedded => Broker::start_with(&args).await,
        Backend::Kube => {
            let cluster = Cluster::start().await;
            cluster.grant_own_namespace().await;
            Broker::start_in(cluster, &args).await
        }
    }
}

/// The Connector's CA: generated into the data directory, or into the
/// cluster's Secret.
async fn ca_of(broker: &Broker) -> String {
    match crate::BACKEND {
        Backend::Embedded => std::fs::read_to_string(broker.data_dir().join("connector-ca.crt"))
            .expect("the CA file"),
        Backend::Kube => {
            let secrets: kube::Api<Secret> =
                kube::Api::namespaced(broker.cluster().admin.clone(), LEASE_NAMESPACE);
            let secret = secrets
                .get("meshbroker-connector-ca")
                .await
                .expect("the CA Secret");
            let data = secret.data.expect("Secret data");
            String::from_utf8(data["tls.crt"].0.clone()).expect("PEM")
        }
    }
}

/// A client that trusts meshbroker's CA and, given one, shows a certificate.
fn client(ca_pem: &str, identity: Option<&Identity>) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA added");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => {
            let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate PEM");
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client identity")
        }
        None => builder.with_no_client_auth(),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("TLS client")
}

struct Identity {
    cert_pem: String,
    key_pem: String,
}

/// A CSR (base64 of its PEM, as the Connector takes it) and its key.
fn csr(common_name: &str, subject: &[(DnType, &str)]) -> (String, KeyPair) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    for (part, value) in subject {
        name.push(part.clone(), *value);
    }
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let request = params.serialize_request(&key).expect("CSR");
    (STANDARD.encode(request.pem().expect("CSR PEM")), key)
}

/// Sends, and checks the answer against openapi/events.yaml.
async fn call(request: reqwest::RequestBuilder) -> Reply {
    let (client, request) = request.build_split();
    let request = request.expect("request");
    let method = request.method().as_str().to_ascii_lowercase();
    let template = event_template(request.url().path());
    let reply = Reply::from(client.execute(request).await.expect("request")).await;
    openapi::events().check(&method, &template, &reply);
    reply
}

/// Creates a TokenRequest for the Application and waits for its URL.
async fn token_url(broker: &Broker, name: &str) -> String {
    let request = json!({
        "apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
        "kind": "TokenRequest",
        "metadata": {"name": name},
    });
    let created = broker.admin().create(TOKEN_REQUESTS, &request).await;
    assert_eq!(created.status, 201, "{}", created.text);
    eventually("the TokenRequest's URL", async || {
        let found = broker
            .admin()
            .find(&format!("{TOKEN_REQUESTS}/{name}"))
            .await?;
        let url = found["status"]["url"].as_str()?;
        (!url.is_empty()).then(|| url.to_string())
    })
    .await
}

/// The whole flow up to a certificate: configuration, then the CSR; the
/// answer's CA must be `ca_pem`.
async fn certificate(broker: &Broker, http: &reqwest::Client, ca_pem: &str) -> (Identity, Value) {
    let url = token_url(broker, APPLICATION).await;
    let info = call(http.get(&url)).await;
    assert_eq!(info.status, 200, "{}", info.text);
    let csr_url = info.body["csrUrl"].as_str().expect("csrUrl").to_string();
    let (encoded, key) = csr(APPLICATION, &KYMA_SUBJECT);
    let signed = call(http.post(&csr_url).json(&json!({"csr": encoded}))).await;
    assert_eq!(signed.status, 201, "{}", signed.text);
    let decode = |field: &str| {
        let text = signed.body[field].as_str().expect(field);
        String::from_utf8(STANDARD.decode(text).expect("base64")).expect("PEM")
    };
    let identity = Identity {
        cert_pem: decode("clientCrt"),
        key_pem: key.serialize_pem(),
    };
    assert!(
        decode("crt").starts_with(&identity.cert_pem),
        "the chain starts with the client certificate"
    );
    assert_eq!(decode("caCrt"), ca_pem, "signed by the CA in use");
    (identity, info.body)
}

async fn send(http: &reqwest::Client, broker: &Broker, application: &str, id: &str) -> Reply {
    let mut request = http
        .post(format!("{}/{application}/events", broker.events))
        .body(r#"{"orderId":"1"}"#);
    let mut headers = binary(id, "order.created");
    headers.push(("ce-eventtypeversion".into(), "v1".into()));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    call(request).await
}

#[tokio::test]
async fn a_connected_application_sends_with_its_certificate_renews_and_revokes_it() {
    let broker = start_tls(&[]).await;
    assert!(broker.events.starts_with("https://"), "{}", broker.events);
    provisioned(&broker, &["shop"]).await;
    let sink = catch_all(&broker, "shop").await;
    let ca = ca_of(&broker).await;
    let anonymous = client(&ca, None);

    let url = token_url(&broker, APPLICATION).await;
    let info = call(anonymous.get(&url)).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(
        info.body["certificate"]["subject"],
        "OU=OrgUnit,O=Organization,L=Waldorf,ST=Waldorf,C=DE,CN=commerce"
    );
    assert_eq!(info.body["certificate"]["key-algorithm"], "rsa2048");
    assert_eq!(
        info.body["api"]["eventsUrl"],
        format!("{}/commerce/v1/events", broker.events)
    );
    assert_eq!(
        info.body["api"]["renewCertUrl"],
        format!("{}/v1/applications/certificates/renewals", broker.events)
    );
    let again = call(anonymous.get(&url)).await;
    assert_eq!(
        again.status, 403,
        "a configuration URL works once: {}",
        again.text
    );
    assert!(
        again.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("token")),
        "{}",
        again.text
    );

    // A CSR that says something else is refused and costs no token.
    let csr_url = info.body["csrUrl"].as_str().expect("csrUrl").to_string();
    for (cn, subject) in [
        ("billing", &KYMA_SUBJECT[..]),
        (APPLICATION, &KYMA_SUBJECT[1..]),
    ] {
        let (encoded, _) = csr(cn, subject);
        let refused = call(anonymous.post(&csr_url).json(&json!({"csr": encoded}))).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert!(
            refused.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("subject")),
            "{}",
            refused.text
        );
    }
    let (encoded, _) = csr(APPLICATION, &KYMA_SUBJECT);
    let pem = String::from_utf8(STANDARD.decode(&encoded).expect("base64")).expect("PEM");
    // The last byte is the signature's: the CSR still parses, it no longer verifies.
    let mut der = pem_body(&pem);
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let tampered = pem_of("CERTIFICATE REQUEST", &der);
    let refused = call(
        anonymous
            .post(&csr_url)
            .json(&json!({"csr": STANDARD.encode(&tampered)})),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("signature")),
        "{}",
        refused.text
    );
    for garbage in [json!({"csr": "not base64!"}), json!({"nothing": 1})] {
        let refused = call(anonymous.post(&csr_url).json(&garbage)).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
    }

    let (encoded, key) = csr(APPLICATION, &KYMA_SUBJECT);
    let signed = call(anonymous.post(&csr_url).json(&json!({"csr": encoded}))).await;
    assert_eq!(signed.status, 201, "{}", signed.text);
    let reused = call(anonymous.post(&csr_url).json(&json!({"csr": encoded}))).await;
    assert_eq!(
        reused.status, 403,
        "a CSR token works once: {}",
        reused.text
    );
    let client_pem = String::from_utf8(
        STANDARD
            .decode(signed.body["clientCrt"].as_str().expect("clientCrt"))
            .expect("base64"),
    )
    .expect("PEM");
    let first = Identity {
        cert_pem: client_pem,
        key_pem: key.serialize_pem(),
    };
    let holder = client(&ca, Some(&first));

    // The certificate opens the Application's ingress, and only that.
    let accepted = send(&holder, &broker, APPLICATION, "with-cert-1").await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    sink.wait_for(1).await;
    let foreign = send(&holder, &broker, "billing", "with-cert-2").await;
    assert_eq!(foreign.status, 403, "{}", foreign.text);
    let nobody = send(&anonymous, &broker, APPLICATION, "no-credential").await;
    assert_eq!(nobody.status, 401, "{}", nobody.text);

    let management =
        call(holder.get(format!("{}/v1/applications/management/info", broker.events))).await;
    assert_eq!(management.status, 200, "{}", management.text);
    assert_eq!(
        management.body["clientIdentity"]["application"],
        APPLICATION
    );
    let without =
        call(anonymous.get(format!("{}/v1/applications/management/info", broker.events))).await;
    assert_eq!(without.status, 401, "{}", without.text);

    // Renewal: a new certificate; the old one keeps working until it expires.
    let renew_url = management.body["urls"]["renewCertUrl"]
        .as_str()
        .expect("renewCertUrl");
    let (encoded, key) = csr(APPLICATION, &KYMA_SUBJECT);
    let renewed = call(holder.post(renew_url).json(&json!({"csr": encoded}))).await;
    assert_eq!(renewed.status, 201, "{}", renewed.text);
    let second = Identity {
        cert_pem: String::from_utf8(
            STANDARD
                .decode(renewed.body["clientCrt"].as_str().expect("clientCrt"))
                .expect("base64"),
        )
        .expect("PEM"),
        key_pem: key.serialize_pem(),
    };
    let renewed_holder = client(&ca, Some(&second));
    assert_eq!(
        send(&renewed_holder, &broker, APPLICATION, "renewed-1")
            .await
            .status,
        202
    );
    assert_eq!(
        send(&holder, &broker, APPLICATION, "old-still-1")
            .await
            .status,
        202
    );

    // The holder revokes the renewed one: refused at once, the first still works.
    let revoke_url = management.body["urls"]["revokeCertUrl"]
        .as_str()
        .expect("revokeCertUrl");
    let revoked = call(renewed_holder.post(revoke_url)).await;
    assert_eq!(revoked.status, 201, "{}", revoked.text);
    let refused = send(&renewed_holder, &broker, APPLICATION, "revoked-1").await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(refused.text.contains("revoked"), "{}", refused.text);
    assert_eq!(
        send(&holder, &broker, APPLICATION, "old-still-2")
            .await
            .status,
        202
    );

    // An administrator revokes the first by its fingerprint, openssl's way.
    let fingerprint = fingerprint_of(&first.cert_pem);
    let by_admin = json!({
        "apiVersion": "meshbroker.io/v1alpha1", "kind": "CertificateRevocation",
        "metadata": {"name": "leaked"},
        "spec": {"sha256": fingerprint, "reason": "leaked"},
    });
    let created = broker.admin().create(REVOCATIONS, &by_admin).await;
    assert_eq!(created.status, 201, "{}", created.text);
    eventually("the revocation to reach the listener", async || {
        (send(&holder, &broker, APPLICATION, "after-admin")
            .await
            .status
            == 401)
            .then_some(())
    })
    .await;
    let listed = broker.admin().get(REVOCATIONS).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(2),
        "{}",
        listed.text
    );
}

#[tokio::test]
async fn expired_tokens_expired_and_foreign_certificates_are_refused() {
    let broker = start_tls(&[
        "--connector-token-ttl",
        "3s",
        "--connector-cert-validity",
        "5s",
    ])
    .await;
    provisioned(&broker, &["shop"]).await;
    let ca = ca_of(&broker).await;
    let anonymous = client(&ca, None);

    let url = token_url(&broker, APPLICATION).await;
    eventually("the token to expire", async || {
        let found = broker
            .admin()
            .find(&format!("{TOKEN_REQUESTS}/{APPLICATION}"))
            .await?;
        (found["status"]["state"] == "Expired").then_some(())
    })
    .await;
    let late = call(anonymous.get(&url)).await;
    assert_eq!(late.status, 403, "{}", late.text);

    // A fresh request; the certificate it yields lasts five seconds.
    let deleted = broker
        .admin()
        .delete(&format!("{TOKEN_REQUESTS}/{APPLICATION}"))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let (identity, _) = certificate(&broker, &anonymous, &ca).await;
    let holder = client(&ca, Some(&identity));
    assert_eq!(
        send(&holder, &broker, APPLICATION, "while-valid")
            .await
            .status,
        202
    );
    // On the kept-alive connection the request is refused; a new connection
    // does not get past the handshake.
    let refused = eventually("the short certificate to expire", async || {
        let reply = send(&holder, &broker, APPLICATION, "expired").await;
        (reply.status == 401).then_some(reply)
    })
    .await;
    assert!(refused.text.contains("expired"), "{}", refused.text);
    // The handshake's clock counts whole seconds: within a second of the
    // expiry it still passes (and the request is refused as above).
    eventually(
        "a new connection to be refused at the handshake",
        async || {
            let fresh = client(&ca, Some(&identity))
                .post(format!("{}/{APPLICATION}/events", broker.events))
                .send()
                .await;
            fresh.is_err().then_some(())
        },
    )
    .await;

    // A certificate of another CA, same subject: no TLS session at all.
    let stranger_ca = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let stranger = ca_params.self_signed(&stranger_ca).expect("foreign CA");
    let issuer = rcgen::Issuer::new(ca_params, stranger_ca);
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, APPLICATION);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let forged = params.signed_by(&key, &issuer).expect("forged");
    drop(stranger);
    let forger = client(
        &ca,
        Some(&Identity {
            cert_pem: forged.pem(),
            key_pem: key.serialize_pem(),
        }),
    );
    let outcome = forger
        .post(format!("{}/{APPLICATION}/events", broker.events))
        .send()
        .await;
    assert!(
        outcome.is_err(),
        "a foreign CA's certificate must not get a session"
    );
}

#[tokio::test]
async fn without_tls_the_connector_is_off_and_says_why() {
    let broker = Broker::start().await;
    let request = json!({
        "apiVersion": "applicationconnector.kyma-project.io/v1alpha1",
        "kind": "TokenRequest",
        "metadata": {"name": APPLICATION},
    });
    assert_eq!(
        broker.admin().create(TOKEN_REQUESTS, &request).await.status,
        201
    );
    let status = eventually("the TokenRequest's status", async || {
        let found = broker
            .admin()
            .find(&format!("{TOKEN_REQUESTS}/{APPLICATION}"))
            .await?;
        (found["status"]["state"] == "ERR").then(|| found["status"].clone())
    })
    .await;
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("TLS")),
        "{status}"
    );
    let off = call(broker.http.get(format!(
        "{}/v1/applications/signingRequests/info?token=x",
        broker.events
    )))
    .await;
    assert_eq!(off.status, 404, "{}", off.text);
    assert!(
        off.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("TLS")),
        "{}",
        off.text
    );
}

/// Both TLS listeners (events and `--control-tls-cert`) accept alike.
#[tokio::test]
async fn plain_http_to_a_tls_listener_gets_a_400_that_says_so() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = start_tls(&[]).await;
    let address = broker
        .events
        .strip_prefix("https://")
        .expect("the events listener serves TLS");
    let mut plain = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    plain
        .write_all(b"POST /commerce/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        plain.read_to_end(&mut answer),
    )
    .await
    .expect("the listener answers and closes")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"], "PlainHttpToTls", "{answer}");

    // A TLS client is still served after it.
    let ca = ca_of(&broker).await;
    let served = call(
        client(&ca, None)
            .post(format!("{}/{APPLICATION}/events", broker.events))
            .body("{}"),
    )
    .await;
    assert_eq!(served.status, 401, "{}", served.text);
}

fn pem_body(pem: &str) -> Vec<u8> {
    let inner: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(inner).expect("PEM body")
}

fn pem_of(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// openssl's form: upper-case hex pairs joined by colons.
fn fingerprint_of(pem: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(pem_body(pem));
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn required_certificates_close_the_door_to_application_tokens() {
    let broker = start_tls(&["--events-require-client-cert"]).await;
    let token = provisioned(&broker, &["shop"]).await;
    let sink = catch_all(&broker, "shop").await;
    let ca = ca_of(&broker).await;
    let anonymous = client(&ca, None);
    let refused = call(
        anonymous
            .post(format!("{}/{APPLICATION}/events", broker.events))
            .bearer_auth(&token)
            .header("ce-specversion", "1.0")
            .header("ce-id", "by-token")
            .header("ce-source", "/s")
            .header("ce-type", "order.created"),
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(
        refused.text.contains("client certificate"),
        "{}",
        refused.text
    );
    let (identity, _) = certificate(&broker, &anonymous, &ca).await;
    let holder = client(&ca, Some(&identity));
    let accepted = send(&holder, &broker, APPLICATION, "by-certificate").await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let received = sink.wait_for(1).await;
    assert_eq!(received[0].header("ce-id"), Some("by-certificate"));
}

#[tokio::test]
async fn a_certificate_does_not_open_a_later_application_of_the_same_name() {
    let broker = start_tls(&[]).await;
    provisioned(&broker, &["shop"]).await;
    let ca = ca_of(&broker).await;
    let anonymous = client(&ca, None);
    let (identity, _) = certificate(&broker, &anonymous, &ca).await;
    let holder = client(&ca, Some(&identity));
    assert_eq!(
        send(&holder, &broker, APPLICATION, "first-life")
            .await
            .status,
        202
    );

    register_commerce_again(&broker).await;
    let refused = eventually("the new Application to be routed", async || {
        let reply = send(&holder, &broker, APPLICATION, "second-life").await;
        (reply.status == 401).then_some(reply)
    })
    .await;
    assert!(
        refused.text.contains("earlier Application"),
        "{}",
        refused.text
    );
    let info = call(holder.get(format!("{}/v1/applications/management/info", broker.events))).await;
    assert_eq!(info.status, 403, "{}", info.text);
    // Nor may it revoke in the later Application's name.
    let revoked = call(holder.post(format!(
        "{}/v1/applications/certificates/revocations",
        broker.events
    )))
    .await;
    assert_eq!(revoked.status, 403, "{}", revoked.text);
    let revocations = broker.admin().get(REVOCATIONS).await;
    assert_eq!(revocations.body["items"], json!([]), "nothing recorded");

    // A method a Connector route does not take: Kyma's shape too.
    let wrong = anonymous
        .get(format!("{}/v1/applications/certificates", broker.events))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.headers()["allow"], "POST");
    let wrong = Reply::from(wrong).await;
    assert_eq!(wrong.status, 405, "{}", wrong.text);
    assert_eq!(wrong.body["code"], 405, "{}", wrong.text);
    assert!(
        wrong.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("GET")),
        "{}",
        wrong.text
    );
}

#[tokio::test]
async fn a_supplied_ca_and_server_certificate_are_used_and_tokens_still_work() {
    // The operator's own CA (PKCS#8 key) and a server certificate it signed.
    let dir = tempfile::tempdir().expect("directory");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "operator CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let server_key = KeyPair::generate().expect("server key");
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("SANs");
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("ca.crt"), ca_cert.pem()).expect("write");
    std::fs::write(path("ca.key"), issuer.key().serialize_pem()).expect("write");
    std::fs::write(path("server.crt"), server_cert.pem()).expect("write");
    std::fs::write(path("server.key"), server_key.serialize_pem()).expect("write");

    let broker = Broker::start_with(&[
        "--events-tls-cert",
        &path("server.crt"),
        "--events-tls-key",
        &path("server.key"),
        "--connector-ca-cert",
        &path("ca.crt"),
        "--connector-ca-key",
        &path("ca.key"),
    ])
    .await;
    let token = provisioned(&broker, &["shop"]).await;
    let sink = catch_all(&broker, "shop").await;
    let anonymous = client(&ca_cert.pem(), None);

    // The Application's token keeps working beside certificates.
    let by_token = call(
        anonymous
            .post(format!("{}/{APPLICATION}/events", broker.events))
            .bearer_auth(&token)
            .header("ce-specversion", "1.0")
            .header("ce-id", "by-token")
            .header("ce-source", "/s")
            .header("ce-type", "order.created")
            .header("ce-eventtypeversion", "v1")
            .header("content-type", "application/json")
            .body(r#"{"orderId":"1"}"#),
    )
    .await;
    assert_eq!(by_token.status, 202, "{}", by_token.text);

    // Signed by the supplied CA (`certificate` checks the answer's CA).
    let (identity, _) = certificate(&broker, &anonymous, &ca_cert.pem()).await;
    let holder = client(&ca_cert.pem(), Some(&identity));
    assert_eq!(
        send(&holder, &broker, APPLICATION, "by-cert").await.status,
        202
    );
    sink.wait_for(2).await;
}

/// Deletes commerce and registers it again: an Application of the same
/// name with a new uid.
async fn register_commerce_again(broker: &Broker) {
    let deleted = broker
        .admin()
        .delete(&format!("{APPLICATIONS}/{APPLICATION}"))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    register_commerce(broker).await;
}

/// A TLS broker with commerce registered, and a client that trusts its CA
/// and shows no certificate.
async fn commerce_over_tls() -> (Broker, reqwest::Client) {
    let broker = start_tls(&[]).await;
    register_commerce(&broker).await;
    let ca = ca_of(&broker).await;
    (broker, client(&ca, None))
}

#[tokio::test]
async fn tokens_do_not_outlive_their_application() {
    let (broker, anonymous) = commerce_over_tls().await;
    let request = format!("{TOKEN_REQUESTS}/{APPLICATION}");

    // An unused configuration URL dies with its Application; the request gets
    // a new one for the Application registered again.
    let first = token_url(&broker, APPLICATION).await;
    register_commerce_again(&broker).await;
    let second = eventually("a new configuration URL", async || {
        let found = broker.admin().find(&request).await?;
        let url = found["status"]["url"].as_str()?;
        (!url.is_empty() && url != first).then(|| url.to_string())
    })
    .await;
    let refused = call(anonymous.get(&first)).await;
    assert_eq!(refused.status, 403, "{}", refused.text);

    // A CSR URL minted for one Application issues nothing for the next.
    let info = call(anonymous.get(&second)).await;
    assert_eq!(info.status, 200, "{}", info.text);
    let csr_url = info.body["csrUrl"].as_str().expect("csrUrl").to_string();
    register_commerce_again(&broker).await;
    let (encoded, _key) = csr(APPLICATION, &KYMA_SUBJECT);
    let signed = call(anonymous.post(&csr_url).json(&json!({"csr": encoded}))).await;
    // Refused whether the TokenRequest's controller withdrew the token first
    // or the CSR came before it did.
    assert_eq!(signed.status, 403, "{}", signed.text);
}

#[tokio::test]
async fn a_csr_wrapped_in_lines_is_read() {
    let (broker, anonymous) = commerce_over_tls().await;
    let info = call(anonymous.get(token_url(&broker, APPLICATION).await)).await;
    assert_eq!(info.status, 200, "{}", info.text);
    let csr_url = info.body["csrUrl"].as_str().expect("csrUrl").to_string();
    // (An oversized body is refused by `read_limited` before it is read, and
    // the connection closed with the body unread may reset before the 413 is
    // read: not asserted here.)

    // As GNU base64 writes it: 76 characters a line.
    let (encoded, _key) = csr(APPLICATION, &KYMA_SUBJECT);
    let wrapped = encoded
        .as_bytes()
        .chunks(76)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(wrapped.contains('\n'));
    let signed = call(anonymous.post(&csr_url).json(&json!({"csr": wrapped}))).await;
    assert_eq!(signed.status, 201, "{}", signed.text);
}
