//! QUIC (protocol §10), driven by the real client over a real server: the
//! assignment's services and the error codes, logging in once per
//! connection, pipelined streams, and the limits that hold a client that
//! opens streams without end.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{ADMIN_PASSWORD, TestServer, err, ok, promotion_with_students};
use gradebook_client::ClientError;
use gradebook_proto::Encoding;
use gradebook_server::{Limits, TlsMode};
use serde_json::{Value, json};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[tokio::test]
async fn a_tls_server_listens_on_quic_and_says_where() {
    let server = TestServer::start_tls().await;
    let quic = server.quic.expect("QUIC is on with TLS");
    assert_ne!(quic.port(), 0);
    let mut c = server.quic_connect().await;
    assert!(c.is_quic());
    // The same certificate as over TCP.
    let tcp = server.connect().await;
    assert_eq!(c.server_fingerprint(), tcp.server_fingerprint());
    assert_eq!(ok(&mut c, "ping", json!({})).await, json!({"pong": true}));
    // A plaintext server has no QUIC.
    assert!(TestServer::start().await.quic.is_none());
}

#[tokio::test]
async fn the_five_services_over_quic_in_json_and_msgpack() {
    let server = TestServer::start_tls().await;
    let mut c = server.quic_admin().await;
    ok(
        &mut c,
        "promotion.create",
        json!({"name": "RT2-2026", "year": 2026}),
    )
    .await;
    let alice = ok(
        &mut c,
        "student.add",
        json!({"promotion": "RT2-2026", "first_name": "Alice", "last_name": "Dupont"}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    let bob = ok(
        &mut c,
        "student.add",
        json!({"promotion": "RT2-2026", "first_name": "Bob", "last_name": "Martin"}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    let g = ok(
        &mut c,
        "grade.add",
        json!({"student": alice, "subject": "Networks", "value": 14.5, "coefficient": 2}),
    )
    .await;
    assert_eq!(g["value"], json!(14.5));
    ok(
        &mut c,
        "grade.add",
        json!({"student": alice, "subject": "Maths", "value": 11}),
    )
    .await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": bob, "subject": "Maths", "value": 8}),
    )
    .await;
    // (14.5×2 + 11) / 3 = 13.333…
    let avg = ok(&mut c, "student.average", json!({"id": alice})).await;
    assert!((f(&avg["average"]) - 40.0 / 3.0).abs() < 1e-9, "{avg}");
    assert_eq!(avg["counted"], json!(2));

    // The same connection in MessagePack: each stream's first byte tells.
    c.use_encoding(Encoding::Msgpack)
        .await
        .expect("msgpack over QUIC");
    let p = ok(&mut c, "promotion.average", json!({"name": "RT2-2026"})).await;
    assert!(
        (f(&p["average"]) - (40.0 / 3.0 + 8.0) / 2.0).abs() < 1e-9,
        "{p}"
    );
    assert_eq!(p["count"], json!(2));
    let shown = ok(&mut c, "promotion.show", json!({"name": "RT2-2026"})).await;
    assert_eq!(shown["students"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_error_codes_over_quic() {
    let server = TestServer::start_tls().await;
    let mut anon = server.quic_connect().await;
    err(&mut anon, "promotion.list", json!({}), "unauthenticated").await;
    err(
        &mut anon,
        "auth.login",
        json!({"username": "admin", "password": "not the password"}),
        "unauthenticated",
    )
    .await;
    err(&mut anon, "promotion.destroy", json!({}), "unknown_command").await;
    err(&mut anon, "ping", json!({"x": 1}), "bad_request").await;
    // Not JSON, and not an object: bad_request, and the connection stays.
    for raw in [&b"{not json"[..], b"[1, 2]", b""] {
        anon.send_raw(raw).await.expect("sent");
        let reply = anon.recv().await.expect("a reply");
        match reply.result {
            Err(e) => assert_eq!(e.code.as_str(), "bad_request", "{raw:?}"),
            Ok(v) => panic!("{raw:?} answered {v}"),
        }
    }
    // Over the limit before login (16 KiB): frame_too_large on that
    // stream; the connection goes on.
    let big = format!(
        r#"{{"id": 7, "cmd": "ping", "args": {{"x": "{}"}}}}"#,
        "a".repeat(20_000)
    );
    anon.send_raw(big.as_bytes()).await.expect("sent");
    match anon.recv().await.expect("a reply").result {
        Err(e) => assert_eq!(e.code.as_str(), "frame_too_large"),
        Ok(v) => panic!("answered {v}"),
    }
    assert_eq!(ok(&mut anon, "ping", json!({})).await["pong"], true);

    let mut c = server.quic_admin().await;
    err(
        &mut c,
        "promotion.show",
        json!({"nmae": "P"}),
        "bad_request",
    )
    .await;
    err(
        &mut c,
        "promotion.show",
        json!({"name": "RT9"}),
        "not_found",
    )
    .await;
    err(&mut c, "student.show", json!({"id": 999}), "not_found").await;
    promotion_with_students(&mut c, "P", 1).await;
    err(&mut c, "promotion.create", json!({"name": "P"}), "conflict").await;
    let student = ok(&mut c, "student.list", json!({"promotion": "P"})).await["students"][0]["id"]
        .as_i64()
        .expect("id");
    err(
        &mut c,
        "grade.add",
        json!({"student": student, "subject": "S", "value": 45}),
        "invalid_value",
    )
    .await;
    err(
        &mut c,
        "grade.add",
        json!({"student": student, "subject": "S", "value": 12, "coefficient": -1}),
        "invalid_value",
    )
    .await;
    // forbidden: a teacher on a promotion they do not manage.
    ok(
        &mut c,
        "user.create",
        json!({"username": "prof", "password": "teacher-password", "role": "teacher"}),
    )
    .await;
    let mut t = server.quic_connect().await;
    t.login("prof", "teacher-password").await.expect("logs in");
    err(&mut t, "promotion.show", json!({"name": "P"}), "forbidden").await;
    err(&mut t, "user.list", json!({}), "forbidden").await;
    // rate_limited: repeated failures.
    let mut last = String::new();
    for _ in 0..7 {
        match anon
            .call(
                "auth.login",
                json!({"username": "admin", "password": "still wrong!"}),
            )
            .await
        {
            Err(ClientError::Server(e)) => last = e.code.as_str().to_owned(),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(last, "rate_limited");
}

#[tokio::test]
async fn a_connection_logs_in_once_and_its_streams_share_the_session() {
    let server = TestServer::start_tls().await;
    let mut a = server.quic_connect().await;
    let mut b = server.quic_connect().await;
    a.login("admin", ADMIN_PASSWORD).await.expect("logs in");
    // Every later stream of `a` is logged in; `b` is another connection.
    for _ in 0..5 {
        assert_eq!(
            ok(&mut a, "auth.whoami", json!({})).await["username"],
            "admin"
        );
    }
    err(&mut b, "auth.whoami", json!({}), "unauthenticated").await;
    // A session token from a TCP login works in the envelope, as on TCP.
    let (_tcp, token) = server.admin_session().await;
    b.set_token(Some(token));
    assert_eq!(
        ok(&mut b, "auth.whoami", json!({})).await["username"],
        "admin"
    );
    // A logout ends the connection's session for its later streams.
    ok(&mut a, "auth.logout", json!({})).await;
    err(&mut a, "auth.whoami", json!({}), "unauthenticated").await;
}

#[tokio::test]
async fn pipelined_streams_are_all_answered_and_each_write_made_once() {
    let server = TestServer::start_tls().await;
    let mut c = server.quic_admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    // Many more requests than the stream credit (32 at once): the client
    // opens the next streams as the first ones finish.
    let n = 300;
    for i in 0..n {
        c.send(
            "grade.add",
            json!({"student": ids[0], "subject": "S", "value": i % 21}),
        )
        .expect("queued");
    }
    let mut grade_ids = std::collections::HashSet::new();
    for _ in 0..n {
        let reply = c.recv().await.expect("a reply");
        let data = reply.result.expect("added");
        assert!(grade_ids.insert(data["id"].as_i64().expect("id")));
    }
    let grades = ok(&mut c, "grade.list", json!({"student": ids[0]})).await;
    assert_eq!(grades["grades"].as_array().map(Vec::len), Some(n));

    // Several connections at once, each pipelining.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut c = server.quic_admin().await;
        let student = ids[0];
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                c.send(
                    "grade.add",
                    json!({"student": student, "subject": "T", "value": 10}),
                )
                .expect("queued");
            }
            for _ in 0..50 {
                c.recv().await.expect("a reply").result.expect("added");
            }
        }));
    }
    for t in tasks {
        t.await.expect("a client ran");
    }
    let grades = ok(&mut c, "grade.list", json!({"student": ids[0]})).await;
    assert_eq!(grades["grades"].as_array().map(Vec::len), Some(n + 200));
}

/// A raw quinn endpoint that trusts the server's certificate and offers
/// `alpn`.
fn raw_endpoint(server: &TestServer, alpn: &[u8]) -> quinn::Endpoint {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let cert = CertificateDer::from_pem_file(server.dir.path().join("server-cert.pem"))
        .expect("the certificate");
    roots.add(cert).expect("a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls)).expect("QUIC TLS");
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("an address")).expect("an endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

/// A raw quinn connection to the server (to do what the client library
/// never does).
async fn raw_quic(server: &TestServer) -> (quinn::Endpoint, quinn::Connection) {
    let endpoint = raw_endpoint(server, gradebook_client::ALPN);
    let conn = endpoint
        .connect(server.quic.expect("QUIC"), "localhost")
        .expect("connects")
        .await
        .expect("handshake");
    (endpoint, conn)
}

/// Writes a request on a new stream, finishes it and reads the reply.
async fn raw_request(conn: &quinn::Connection, request: &Value) -> Value {
    let (mut send, mut recv) = conn.open_bi().await.expect("a stream");
    send.write_all(request.to_string().as_bytes())
        .await
        .expect("writes");
    send.finish().expect("finishes");
    let reply = recv.read_to_end(1 << 20).await.expect("a reply");
    serde_json::from_slice(&reply).expect("a JSON reply")
}

#[tokio::test]
async fn a_client_opening_streams_without_end_is_held_by_the_limits() {
    let limits = Limits {
        quic_streams: 4,
        request_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let server = TestServer::start_with(TlsMode::SelfSigned, limits).await;
    let (_endpoint, conn) = raw_quic(&server).await;
    // Four requests begun and never finished: the server's credit is used.
    let mut held = Vec::new();
    for _ in 0..4 {
        let (mut send, recv) = conn.open_bi().await.expect("a stream");
        send.write_all(b"{\"cmd\": ").await.expect("writes");
        held.push((send, recv));
    }
    // A fifth is not allowed to open until one of them ends.
    let fifth = tokio::time::timeout(Duration::from_millis(500), conn.open_bi()).await;
    assert!(fifth.is_err(), "a fifth stream opened past the limit");
    // The server gives up on requests that do not arrive whole in time:
    // it stops and resets their streams...
    for (send, recv) in &mut held {
        let stopped = tokio::time::timeout(Duration::from_secs(10), send.stopped())
            .await
            .expect("stopped in time");
        assert!(matches!(stopped, Ok(Some(_))), "{stopped:?}");
        assert!(
            recv.read_to_end(1024).await.is_err(),
            "the reply side was reset"
        );
    }
    // ...and once the client lets go of them, the credit comes back.
    drop(held);
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        raw_request(&conn, &json!({"id": 1, "cmd": "ping"})),
    )
    .await
    .expect("credit came back");
    assert_eq!(reply["data"]["pong"], true);
    // A long-lived connection keeps getting credit as streams finish:
    // many more requests, one after another, than the limit.
    for i in 0..40 {
        let reply = raw_request(&conn, &json!({"id": i, "cmd": "ping"})).await;
        assert_eq!(reply["id"], i);
    }
    // And it cannot open streams of the other kind at all.
    let uni = tokio::time::timeout(Duration::from_millis(300), conn.open_uni()).await;
    assert!(
        uni.is_err(),
        "the client may not open unidirectional streams"
    );
}

#[tokio::test]
async fn a_connection_that_does_not_log_in_is_closed() {
    let limits = Limits {
        login_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = TestServer::start_with(TlsMode::SelfSigned, limits).await;
    let (_endpoint, conn) = raw_quic(&server).await;
    let reply = raw_request(&conn, &json!({"id": 1, "cmd": "ping"})).await;
    assert_eq!(reply["data"]["pong"], true);
    // A request that never ends does not keep it open either.
    let (mut send, _recv) = conn.open_bi().await.expect("a stream");
    send.write_all(b"{\"id\": 2, ").await.expect("writes");
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
    match closed {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => {
            assert_eq!(&c.reason[..], b"no login in time")
        }
        other => panic!("expected the server to close, got {other:?}"),
    }
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_timeout() {
    let limits = Limits {
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = TestServer::start_with(TlsMode::SelfSigned, limits).await;
    let (_endpoint, conn) = raw_quic(&server).await;
    let login = json!({"id": 1, "cmd": "auth.login",
                       "args": {"username": "admin", "password": ADMIN_PASSWORD}});
    assert_eq!(raw_request(&conn, &login).await["ok"], true);
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
    match closed {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => {
            assert_eq!(&c.reason[..], b"idle timeout")
        }
        other => panic!("expected the server to close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_does_not_offer_gradebook_alpn_is_refused() {
    let server = TestServer::start_tls().await;
    let endpoint = raw_endpoint(&server, b"h3");
    let connecting = endpoint
        .connect(server.quic.expect("QUIC"), "localhost")
        .expect("starts");
    let got = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .expect("an answer in time");
    assert!(got.is_err(), "a client speaking h3 was accepted");
}

/// A UDP relay between one client and the server that loses and reorders
/// datagrams: each way, 30 % are dropped, and a fifth of the others are
/// held back a few milliseconds, so later ones overtake them. Stops when
/// dropped.
struct LossyProxy {
    addr: std::net::SocketAddr,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    delayed: Arc<std::sync::atomic::AtomicU64>,
    /// Retry packets passed from the server to the client.
    retries: Arc<std::sync::atomic::AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What happens to one datagram.
enum Fate {
    Lost,
    Late(Duration),
    Sent,
}

/// A small deterministic generator (xorshift64*): the same losses on every
/// run of the test.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fate(&mut self) -> Fate {
        match self.next() % 100 {
            0..30 => Fate::Lost,
            30..44 => Fate::Late(Duration::from_millis(2 + self.next() % 25)),
            _ => Fate::Sent,
        }
    }
}

impl LossyProxy {
    /// A relay that loses and reorders (`lossy`), or passes everything.
    async fn start(server: std::net::SocketAddr, lossy: bool) -> LossyProxy {
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::net::UdpSocket;
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("binds"));
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("binds"));
        back.connect(server).await.expect("connects");
        let addr = front.local_addr().expect("an address");
        let client = Arc::new(std::sync::Mutex::new(None::<std::net::SocketAddr>));
        let dropped = Arc::new(AtomicU64::new(0));
        let delayed = Arc::new(AtomicU64::new(0));
        let retries = Arc::new(AtomicU64::new(0));
        // One direction: towards the server, or back to the client.
        let relay = |seed: u64, toward_server: bool| {
            let (front, back, client) = (front.clone(), back.clone(), client.clone());
            let (dropped, delayed) = (dropped.clone(), delayed.clone());
            let retries = retries.clone();
            tokio::spawn(async move {
                let mut dice = Dice(seed);
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = if toward_server {
                        let Ok((n, from)) = front.recv_from(&mut buf).await else {
                            return;
                        };
                        *client.lock().expect("lock") = Some(from);
                        n
                    } else {
                        let Ok(n) = back.recv(&mut buf).await else {
                            return;
                        };
                        n
                    };
                    // A long header of type Retry.
                    if !toward_server && n > 0 && buf[0] & 0xf0 == 0xf0 {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                    let to = *client.lock().expect("lock");
                    let datagram = buf[..n].to_vec();
                    let (front, back) = (front.clone(), back.clone());
                    let send = async move {
                        if toward_server {
                            let _ = back.send(&datagram).await;
                        } else if let Some(to) = to {
                            let _ = front.send_to(&datagram, to).await;
                        }
                    };
                    let fate = if lossy { dice.fate() } else { Fate::Sent };
                    match fate {
                        Fate::Lost => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Fate::Late(by) => {
                            delayed.fetch_add(1, Ordering::Relaxed);
                            tokio::spawn(async move {
                                tokio::time::sleep(by).await;
                                send.await;
                            });
                        }
                        Fate::Sent => send.await,
                    }
                }
            })
        };
        let tasks = vec![
            relay(0x9e37_79b9_7f4a_7c15, true),
            relay(0xd1b5_4a32_d192_ed03, false),
        ];
        LossyProxy {
            addr,
            dropped,
            delayed,
            retries,
            tasks,
        }
    }
}

#[tokio::test]
async fn through_a_lossy_reordering_link_every_acknowledged_write_is_there_once() {
    use std::sync::atomic::Ordering;
    let server = TestServer::start_tls().await;
    let mut direct = server.quic_admin().await;
    let ids = promotion_with_students(&mut direct, "P", 1).await;
    let proxy = LossyProxy::start(server.quic.expect("QUIC"), true).await;
    let mut options = server.quic_options();
    options.address = proxy.addr.to_string();
    options.timeout = Duration::from_secs(60);
    let mut c = gradebook_client::Client::connect(&options)
        .await
        .expect("connects through the lossy link");
    c.login("admin", ADMIN_PASSWORD)
        .await
        .expect("logs in through the lossy link");
    // One after the other, then pipelined: each write is labelled, and
    // each acknowledgement recorded.
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let label = format!("one-{i}");
        let reply = c
            .call(
                "grade.add",
                json!({"student": ids[0], "subject": "S", "value": 10, "label": label}),
            )
            .await;
        if reply.is_ok() {
            acknowledged.push(label);
        }
    }
    for i in 0..80 {
        c.send(
            "grade.add",
            json!({"student": ids[0], "subject": "S", "value": 12, "label": format!("many-{i}")}),
        )
        .expect("queued");
    }
    for i in 0..80 {
        if c.recv().await.is_ok_and(|r| r.result.is_ok()) {
            acknowledged.push(format!("many-{i}"));
        }
    }
    assert!(
        proxy.dropped.load(Ordering::Relaxed) > 50 && proxy.delayed.load(Ordering::Relaxed) > 20,
        "the link lost and reordered too little to test anything"
    );
    // QUIC retransmits what is lost: every write is acknowledged.
    assert_eq!(acknowledged.len(), 120);
    let grades = ok(&mut direct, "grade.list", json!({"student": ids[0]})).await;
    let labels: Vec<&str> = grades["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .map(|g| g["label"].as_str().expect("a label"))
        .collect();
    for label in &acknowledged {
        let n = labels.iter().filter(|l| **l == label.as_str()).count();
        assert_eq!(n, 1, "{label} is there {n} times");
    }
    assert_eq!(
        labels.len(),
        acknowledged.len(),
        "nothing more than was sent"
    );
}

#[tokio::test]
async fn before_the_address_is_validated_the_server_sends_at_most_three_times_what_it_got() {
    use tokio::net::UdpSocket;
    let server = TestServer::start_tls().await;
    // A client whose address the server cannot validate: its first
    // datagram reaches the server, nothing of the server's reaches it (as
    // with a forged source address), and nothing more of it is passed on.
    let front = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
    let back = UdpSocket::bind("127.0.0.1:0").await.expect("binds");
    back.connect(server.quic.expect("QUIC"))
        .await
        .expect("connects");
    let endpoint = raw_endpoint(&server, gradebook_client::ALPN);
    let connecting = endpoint
        .connect(front.local_addr().expect("an address"), "localhost")
        .expect("starts");
    let _attempt = tokio::spawn(connecting);
    let mut buf = vec![0u8; 65536];
    let (sent, _) = tokio::time::timeout(Duration::from_secs(5), front.recv_from(&mut buf))
        .await
        .expect("the client's first datagram")
        .expect("read");
    back.send(&buf[..sent]).await.expect("passed on");
    // Everything the server sends back within a few seconds of
    // retransmissions.
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, back.recv(&mut buf)).await {
        received += n;
    }
    assert!(received > 0, "the server did not answer at all");
    assert!(
        received <= 3 * sent,
        "{received} bytes sent for a {sent}-byte datagram from an unvalidated address"
    );
}

#[tokio::test]
async fn a_new_client_is_sent_a_retry_and_its_next_connections_are_not() {
    use std::sync::atomic::Ordering;
    let server = TestServer::start_tls().await;
    let proxy = LossyProxy::start(server.quic.expect("QUIC"), false).await;
    let mut options = server.quic_options();
    options.address = proxy.addr.to_string();
    let mut first = gradebook_client::Client::connect(&options)
        .await
        .expect("connects");
    assert_eq!(ok(&mut first, "ping", json!({})).await["pong"], true);
    assert_eq!(proxy.retries.load(Ordering::Relaxed), 1);
    // The server's NEW_TOKEN reaches the client after the handshake.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = gradebook_client::Client::connect(&options)
        .await
        .expect("connects again");
    assert_eq!(ok(&mut second, "ping", json!({})).await["pong"], true);
    assert_eq!(
        proxy.retries.load(Ordering::Relaxed),
        1,
        "the second connection brought a token: no Retry"
    );
}

#[tokio::test]
async fn the_aioquic_example_logs_in_and_reads_an_average() {
    // `examples/python/quic_client.py` needs aioquic: `scripts/test` (the
    // README's test command) installs it in a virtualenv and names its
    // interpreter in GRADEBOOK_TEST_PYTHON, and then the test must run.
    // Run alone with `cargo test`, without that variable, it says that it
    // did not run.
    let named = std::env::var("GRADEBOOK_TEST_PYTHON").ok();
    let python = named.clone().unwrap_or_else(|| "python3".into());
    let has_aioquic = std::process::Command::new(&python)
        .args(["-c", "import aioquic"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_aioquic {
        assert!(
            named.is_none(),
            "GRADEBOOK_TEST_PYTHON={python} has no aioquic (pip install aioquic)"
        );
        eprintln!("not run: {python} has no aioquic (scripts/test installs it)");
        return;
    }
    let server = TestServer::start_tls().await;
    let mut c = server.quic_admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": ids[0], "subject": "S", "value": 13.5, "coefficient": 2}),
    )
    .await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/python/quic_client.py");
    let quic = server.quic.expect("QUIC");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .args(["--host", "localhost", "--port", &quic.port().to_string()])
        .arg("--cafile")
        .arg(server.dir.path().join("server-cert.pem"))
        .args(["--student", &ids[0].to_string()])
        .env("GRADEBOOK_PASSWORD", ADMIN_PASSWORD)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("the example finishes in time")
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("logged in as admin (admin) over QUIC"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "student {}: average 13.50 (1 grade(s) counted)",
            ids[0]
        )),
        "{stdout}"
    );
}
