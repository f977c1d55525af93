//! Clients that take their time cannot hold a connection for ever: headers
//! must arrive within `--header-read-timeout` (which is also how long a
//! kept-alive connection may idle), a body within `--body-read-timeout`, and
//! a client must take its answers within `--send-timeout`.

use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::fixtures::NAMESPACES;
use crate::common::{Broker, DEADLINE};

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connects")
}

/// Everything the server sends until it closes the connection, and when it closed.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut buffer))
            .await
            .expect("the server closes the connection in time");
        match read {
            Ok(0) | Err(_) => return (String::from_utf8_lossy(&received).into(), Instant::now()),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

async fn still_served(broker: &Broker) {
    let health = broker
        .http
        .get(format!("{}/healthz", broker.control))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn headers_sent_too_slowly_and_an_idle_connection_are_cut_off() {
    let broker = Broker::start_with(&["--header-read-timeout", "1s"]).await;
    for base in [&broker.control, &broker.events] {
        // Half a request's headers, then nothing (slowloris).
        let mut slow = connect(base).await;
        let sent = Instant::now();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("writes");
        let (_, closed) = read_until_closed(&mut slow).await;
        assert!(
            closed - sent >= Duration::from_millis(900),
            "closed after {:?}, before the timeout",
            closed - sent
        );

        // A whole request is answered; the connection, idle after it, is closed.
        let mut idle = connect(base).await;
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("writes");
        let (answer, _) = read_until_closed(&mut idle).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // Meanwhile, and after, others are served.
    still_served(&broker).await;
    // Both per listener (and any other client's idle connection) counted.
    let metrics = broker.metrics().await;
    for listener in ["control", "events"] {
        let cut = format!(
            r#"meshbroker_http_connections_cut_total{{listener="{listener}",reason="header_timeout"}} "#
        );
        let count = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&cut))
            .and_then(|value| value.parse::<u64>().ok());
        assert!(count >= Some(2), "{cut}: {count:?} in {metrics}");
    }
}

/// Sends `head` and a part of a 200-byte body, never the rest; answers the
/// server's whole answer.
async fn send_part_of_a_body(base: &str, head: &str) -> String {
    let mut slow = connect(base).await;
    let head =
        format!("{head}Host: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n");
    slow.write_all(head.as_bytes()).await.expect("writes");
    slow.write_all(br#"{"apiVersion":"v1","#)
        .await
        .expect("writes");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        loop {
            let n = slow.read(&mut buffer).await.expect("reads");
            answer.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&answer);
            if n == 0 || text.contains("\r\n\r\n{") && text.ends_with('}') {
                return text.into_owned();
            }
        }
    })
    .await
    .expect("an answer in time")
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_and_creates_nothing() {
    let broker = Broker::start_with(&["--body-read-timeout", "1s"]).await;
    let namespaces = async || {
        let listed = broker.admin().get(NAMESPACES).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        listed.body["items"].as_array().map(Vec::len)
    };
    let before = namespaces().await;
    // The resource API: a Kubernetes Status.
    let head = format!(
        "POST {NAMESPACES} HTTP/1.1\r\nAuthorization: Bearer {}\r\n",
        broker.admin_token
    );
    let answered = send_part_of_a_body(&broker.control, &head).await;
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(
        answered.contains("did not arrive whole within 1s"),
        "{answered}"
    );
    assert!(answered.contains(r#""kind":"Status""#), "{answered}");
    assert_eq!(namespaces().await, before);
    // The OSB API: an OSB error body.
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("meshbroker:{}", broker.osb_password));
    let head = format!(
        "PUT /v2/service_instances/slow?accepts_incomplete=true HTTP/1.1\r\n\
         Authorization: Basic {credentials}\r\nX-Broker-API-Version: 2.17\r\n"
    );
    let answered = send_part_of_a_body(&broker.control, &head).await;
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(answered.contains(r#""error":"Timeout""#), "{answered}");
    let fetched = broker.osb().fetch("slow").await;
    assert_eq!(fetched.status, 404, "nothing provisioned: {}", fetched.text);
}

/// A Content-Length over the limit is answered at once, before any of the
/// body: no `100 Continue` for a body that will be refused, and no wait for
/// the body deadline (the default, 60 s, is longer than this test's deadline).
#[tokio::test]
async fn a_content_length_over_the_limit_is_413_before_the_body() {
    let broker = Broker::start().await;
    let mut client = connect(&broker.control).await;
    let head = format!(
        "POST {NAMESPACES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 999999999\r\n\
         Expect: 100-continue\r\n\r\n",
        broker.admin_token
    );
    client.write_all(head.as_bytes()).await.expect("writes");
    let (answered, _) = read_until_closed(&mut client).await;
    assert!(answered.starts_with("HTTP/1.1 413"), "{answered}");
    assert!(answered.contains(r#""kind":"Status""#), "{answered}");
    still_served(&broker).await;
}

#[tokio::test]
async fn a_client_that_takes_none_of_its_answers_is_cut_off() {
    let broker = Broker::start_with(&["--send-timeout", "1s"]).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    // A small window, so the answers pile up at the server.
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let address = broker.control.trim_start_matches("http://");
    let mut greedy = socket
        .connect(address.parse().expect("an address"))
        .await
        .expect("connects");
    // 400 requests for the 39 KB script in one go: 15 MB of answers, more
    // than the sockets hold.
    let requests = "GET /console/console.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    greedy.write_all(requests.as_bytes()).await.expect("writes");
    // The client takes nothing for three times the timeout (the behaviour
    // under test, not a wait for the server).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (taken, _) = read_until_closed(&mut greedy).await;
    let answers = taken.matches("HTTP/1.1 200").count();
    assert!(
        answers < 400,
        "the connection was closed before all its answers: got {answers}"
    );
    still_served(&broker).await;
    let metrics = broker.metrics().await;
    let cut =
        r#"meshbroker_http_connections_cut_total{listener="control",reason="send_timeout"} 1"#;
    assert!(metrics.contains(cut), "{cut} in {metrics}");
}

#[tokio::test]
async fn a_listener_holds_at_most_max_connections_and_the_next_waits_its_turn() {
    let broker = Broker::start_with(&["--max-connections", "2"]).await;
    let base = &broker.events;
    let first = connect(base).await;
    let mut second = connect(base).await;
    // Both are served: the second answers.
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    let mut buffer = [0u8; 1024];
    let n = tokio::time::timeout(DEADLINE, second.read(&mut buffer))
        .await
        .expect("an answer in time")
        .expect("reads");
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    // A third waits in the backlog: no answer while the two are open.
    let mut third = connect(base).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let waiting = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    assert!(waiting.is_err(), "the third was served beside two others");
    let metrics = broker.metrics().await;
    let open = r#"meshbroker_http_connections{listener="events"} 2"#;
    assert!(metrics.contains(open), "{open} in {metrics}");
    // One closes: the third gets its turn.
    drop(first);
    let (answer, _) = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The other listener has places of its own.
    still_served(&broker).await;
}

/// A request answered before its body is read (413 from its length, 401
/// without a token) gets that answer even when its client sends the whole
/// body before it reads: the server drops the rest of the body as it comes
/// instead of resetting the connection under the answer.
#[tokio::test]
async fn a_request_refused_before_its_body_gets_its_answer_not_a_reset() {
    let broker = Broker::start_with(&["--max-body-bytes", "4096"]).await;
    let body = vec![b'x'; 16 << 20];
    for (base, path, status) in [
        (&broker.control, NAMESPACES, "413"),
        (&broker.events, "/commerce/events", "401"),
    ] {
        for _ in 0..3 {
            let mut stream = connect(base).await;
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                if path == NAMESPACES {
                    broker.admin_token.as_str()
                } else {
                    "wrong"
                },
                body.len()
            );
            stream.write_all(head.as_bytes()).await.expect("head sent");
            tokio::time::timeout(DEADLINE, stream.write_all(&body))
                .await
                .expect("the body is taken in time")
                .expect("the whole body is taken, not reset");
            let (answer, _) = read_until_closed(&mut stream).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{path}: {answer:?}"
            );
        }
    }
    still_served(&broker).await;
}
