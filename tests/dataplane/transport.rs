//! The delivery transport: the request as it goes on the wire, HTTPS subscribers
//! and whom they are trusted by, and the reason a dead letter carries when a
//! delivery got no HTTP answer at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use base64::Engine;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::mesh::*;
use crate::common::sink::{Sink, TestCa};
use crate::common::{Broker, DEADLINE};

/// A Trigger in team-a to `subscriber`, retried once, dead letters to `dead`.
fn failing_over_to(subscriber: &str, dead: &Sink) -> serde_json::Value {
    json!({"subscriber": {"uri": subscriber},
        "delivery": {"retry": 1, "backoffDelay": "PT0.01S", "deadLetterSink": {"uri": dead.url}}})
}

/// `knativeerrordata` of a dead letter, decoded.
fn error_data(letter: &crate::common::sink::Received) -> String {
    let data = letter
        .header("ce-knativeerrordata")
        .expect("knativeerrordata");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    String::from_utf8(decoded).expect("UTF-8")
}

#[tokio::test]
async fn deliveries_send_an_origin_form_target_and_a_host_header() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    let subscriber = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("a delivery connects");
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            stream.readable().await.expect("readable");
            match stream.try_read(&mut chunk) {
                Ok(0) => panic!("closed before the request head ended"),
                Ok(read) => head.extend_from_slice(&chunk[..read]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading the request: {e}"),
            }
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        stream.writable().await.expect("writable");
        assert_eq!(stream.try_write(answer).ok(), Some(answer.len()), "answers");
        // Kept open, so the answer is read rather than reset away.
        (head, stream)
    });
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let uri = format!("http://{address}/some/path?x=1");
    trigger(&broker, "team-a", "t", json!({"subscriber": {"uri": uri}})).await;
    send_order(&broker, &token, "origin").await;
    let (head, _stream) = tokio::time::timeout(DEADLINE, subscriber)
        .await
        .expect("a delivery within the deadline")
        .expect("the subscriber task");
    let text = String::from_utf8_lossy(&head);
    assert_eq!(
        text.lines().next(),
        Some("POST /some/path?x=1 HTTP/1.1"),
        "{text}"
    );
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&head).expect("an HTTP/1.1 request head");
    let hosts: Vec<&[u8]> = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value)
        .collect();
    assert_eq!(hosts, vec![address.to_string().as_bytes()], "{text}");
}

/// A subscriber that answers one request a connection and keeps the
/// connection open until `close` is told, as a server closes idle keep-alive
/// connections (or restarts) after a while: how many it answered, and how
/// many of the connections it closed the broker closed too.
async fn answering_once_a_connection(
    listener: TcpListener,
    close: Arc<tokio::sync::Notify>,
) -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let answered = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (counted, ended) = (answered.clone(), closed.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (counted, ended, close) = (counted.clone(), ended.clone(), close.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&chunk[..read]),
                    }
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut parsed = httparse::Request::new(&mut headers);
                    let Ok(httparse::Status::Complete(head)) = parsed.parse(&request) else {
                        continue;
                    };
                    let length: usize = parsed
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                        .unwrap_or(0);
                    if request.len() >= head + length {
                        break;
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                if stream.write_all(answer).await.is_ok() {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                close.notified().await;
                let _ = stream.shutdown().await;
                // The broker's end of it: it lets go of a connection closed
                // while idle, rather than finding out on its next event.
                while matches!(stream.read(&mut chunk).await, Ok(read) if read > 0) {}
                ended.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (answered, closed)
}

/// A kept-alive connection the subscriber closes while it is idle is let go
/// of at once, and the next delivery goes on a new connection — neither
/// failed nor waiting for its timeout (with no retries, either would
/// dead-letter an event the subscriber was ready for).
#[tokio::test]
async fn a_connection_the_subscriber_closed_while_idle_is_let_go_not_written_to() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    let close = Arc::new(tokio::sync::Notify::new());
    let (answered, closed) = answering_once_a_connection(listener, close.clone()).await;
    let dead = Sink::start().await;
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    let uri = format!("http://{address}/");
    let spec = json!({"subscriber": {"uri": uri},
        "delivery": {"retry": 0, "timeout": "PT20S", "deadLetterSink": {"uri": dead.url}}});
    trigger(&broker, "team-a", "t", spec).await;
    for (n, id) in [(1, "first"), (2, "second"), (3, "third")] {
        send_order(&broker, &token, id).await;
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let delivered =
            format!(r#"meshbroker_delivery_duration_seconds_count{{outcome="delivered"}} {n}"#);
        // Closed only once the broker is done with the exchange: idle.
        while answered.load(Ordering::SeqCst) < n || !broker.metrics().await.contains(&delivered) {
            assert_eq!(dead.count(), 0, "dead-lettered instead of delivered");
            assert!(
                Instant::now() < deadline,
                "event {id} not delivered within 10 s (its timeout is 20 s)"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        close.notify_waiters();
        while closed.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the broker kept connection {n}, closed by the subscriber, open"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    assert_eq!(dead.count(), 0);
}

#[tokio::test]
async fn an_https_subscriber_trusted_through_the_ca_bundle_receives_events() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = ca.write_bundle(dir.path());
    let sink = Sink::start_tls(&ca).await;
    // One worker, so both events go through the same session.
    let broker = Broker::start_with(&[
        "--subscriber-ca-bundle",
        &bundle,
        "--subscriber-concurrency",
        "1",
    ])
    .await;
    let token = provisioned(&broker, &["team-a"]).await;
    let uri = format!("{}/orders?x=1", sink.url);
    trigger(&broker, "team-a", "t", json!({"subscriber": {"uri": uri}})).await;
    send_order(&broker, &token, "first").await;
    sink.wait_for(1).await;
    send_order(&broker, &token, "second").await;
    let got = sink.wait_for(2).await;
    let ids: Vec<_> = got.iter().map(|r| r.header("ce-id")).collect();
    assert_eq!(ids, vec![Some("first"), Some("second")]);
    assert_eq!(got[0].path, "/orders");
    assert_eq!(
        &got[0].body[..],
        br#"{"orderId":"1"}"#,
        "the event's data unchanged"
    );
    assert_eq!(sink.connections(), 1, "both over one kept-alive connection");
}

#[tokio::test]
async fn an_https_subscriber_with_an_untrusted_certificate_is_dead_lettered_with_the_reason() {
    let sink = Sink::start_tls(&TestCa::new()).await;
    let dead = Sink::start().await;
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    trigger(&broker, "team-a", "t", failing_over_to(&sink.url, &dead)).await;
    send_order(&broker, &token, "untrusted").await;
    let got = dead.wait_for(1).await;
    let letter = &got[0];
    assert_eq!(letter.header("ce-id"), Some("untrusted"));
    assert_eq!(
        letter.header("ce-knativeerrordest"),
        Some(sink.url.as_str())
    );
    assert!(
        letter.header("ce-knativeerrorcode").is_none(),
        "no status: no HTTP answer"
    );
    let why = error_data(letter);
    let peer = sink.url.trim_start_matches("https://");
    assert!(
        why.starts_with(&format!("TLS handshake with {peer} failed")),
        "{why}"
    );
    assert!(why.contains("certificate"), "{why}");
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn a_refused_connection_is_dead_lettered_with_the_reason() {
    // Bound but never listening: connections are refused, and no parallel
    // test can take the port while the socket lives.
    let held = tokio::net::TcpSocket::new_v4().expect("a socket");
    held.bind("127.0.0.1:0".parse().expect("an address"))
        .expect("a free port");
    let port = held.local_addr().expect("its address").port();
    let subscriber = format!("http://127.0.0.1:{port}/nobody-listens");
    let dead = Sink::start().await;
    let broker = Broker::start().await;
    let token = provisioned(&broker, &["team-a"]).await;
    trigger(&broker, "team-a", "t", failing_over_to(&subscriber, &dead)).await;
    send_order(&broker, &token, "refused").await;
    let got = dead.wait_for(1).await;
    assert_eq!(
        got[0].header("ce-knativeerrordest"),
        Some(subscriber.as_str())
    );
    assert!(got[0].header("ce-knativeerrorcode").is_none());
    let why = error_data(&got[0]);
    assert!(
        why.starts_with(&format!("connecting to 127.0.0.1:{port} failed")),
        "{why}"
    );
    assert!(why.to_lowercase().contains("refused"), "{why}");
}

#[tokio::test]
async fn a_bad_subscriber_ca_bundle_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("not-a-bundle.pem");
    std::fs::write(&bundle, "no certificates here\n").expect("written");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--control-addr",
            "127.0.0.1:0",
            "--events-addr",
            "127.0.0.1:0",
        ])
        .arg("--subscriber-ca-bundle")
        .arg(&bundle)
        // The check comes before any event log is opened, whichever is chosen.
        .env_remove("MESHBROKER_DELIVERY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("meshbroker starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("meshbroker started with a bundle holding no certificate");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr read");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("subscriber-ca-bundle: {}", bundle.display())),
        "{stderr}"
    );
}
