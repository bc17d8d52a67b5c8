//! The UDP endpoint driven by the real UDP client and by raw datagrams: ids,
//! both encodings, at-most-once execution through loss, duplication,
//! reordering and restarts, garbage, the size and amplification rules, the
//! rate limit, TLS.

use crate::common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{ADMIN_PASSWORD, TestServer, ok, promotion_with_students};
use gradebook_client::{ClientError, Retry, UdpClient, UdpOptions};
use gradebook_proto::{Encoding, Id, Reply, Request, Secret};
use gradebook_server::{Limits, TlsMode};
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A deterministic random number generator (splitmix64): the same seed
/// gives the same drops, copies, delays and garbage on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Limits that let a test's traffic through: every test client shares
/// 127.0.0.1, and the fuzz and loss tests send thousands of datagrams.
fn generous() -> Limits {
    Limits {
        udp_rate: 1_000_000,
        udp_burst: 1_000_000,
        ..Limits::default()
    }
}

/// UDP options for a test server, with quick retries.
fn udp_options(addr: SocketAddr, encoding: Encoding) -> UdpOptions {
    let mut o = UdpOptions::new(addr.to_string());
    o.encoding = encoding;
    o.retry = Retry {
        first_timeout: Duration::from_millis(50),
        factor: 2.0,
        max_timeout: Duration::from_millis(400),
        tries: 40,
    };
    o
}

/// The admin's session token, from a login over TCP.
async fn admin_token(server: &TestServer) -> Secret {
    server.admin_session().await.1
}

/// A raw UDP socket for hand-made datagrams.
async fn raw_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("binds")
}

/// The id of a request or reply datagram (`None` when it has none or is
/// not one).
fn id_of(datagram: &[u8], request: bool) -> Option<Id> {
    let encoding = Encoding::sniff(datagram);
    if request {
        Request::decode(encoding, datagram).ok()?.id
    } else {
        Reply::decode(encoding, datagram).ok()?.id
    }
}

/// Sends `datagram` to `to` until a reply with its id comes back (UDP on
/// loopback hardly loses anything, but the test must not depend on it);
/// returns that reply and every other datagram received meanwhile (late
/// copies of earlier replies, answers to garbage).
async fn exchange_seeing(
    socket: &UdpSocket,
    to: SocketAddr,
    datagram: &[u8],
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let id = id_of(datagram, true);
    let mut others = Vec::new();
    let mut buf = vec![0u8; 65_536];
    for _ in 0..50 {
        socket.send_to(datagram, to).await.expect("sends");
        while let Ok(r) =
            tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await
        {
            let (n, _) = r.expect("receives");
            let reply = buf[..n].to_vec();
            if id_of(&reply, false) == id {
                return (reply, others);
            }
            others.push(reply);
        }
    }
    panic!("no reply to {}", String::from_utf8_lossy(datagram));
}

/// The reply to `datagram`, sent to `to`.
async fn exchange(socket: &UdpSocket, to: SocketAddr, datagram: &[u8]) -> Vec<u8> {
    exchange_seeing(socket, to, datagram).await.0
}

/// Every datagram that arrives until `quiet` passes without one.
async fn drain(socket: &UdpSocket, quiet: Duration) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::new();
    while let Ok(r) = tokio::time::timeout(quiet, socket.recv_from(&mut buf)).await {
        let (n, _) = r.expect("receives");
        out.push(buf[..n].to_vec());
    }
    out
}

fn json_reply(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("a JSON reply")
}

/// How many grades `students` have, counted over TCP.
async fn count_grades(server: &TestServer, students: &[i64]) -> usize {
    let mut c = server.admin().await;
    let mut n = 0;
    for s in students {
        let g = ok(&mut c, "grade.list", json!({ "student": s })).await;
        n += g["grades"].as_array().expect("grades").len();
    }
    n
}

#[tokio::test]
async fn a_datagram_without_an_id_is_refused_before_anything_runs() {
    let server = TestServer::start().await;
    let token = admin_token(&server).await;
    let socket = raw_socket().await;
    let datagram = json!({
        "cmd": "promotion.create", "args": {"name": "NoId"}, "token": token.expose()
    });
    let reply = json_reply(&exchange(&socket, server.addr, datagram.to_string().as_bytes()).await);
    assert_eq!(reply["id"], Value::Null);
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "bad_request");
    let mut c = server.admin().await;
    let list = ok(&mut c, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"], json!([]), "nothing was created");
}

#[tokio::test]
async fn json_and_msgpack_datagrams_are_answered_in_their_encoding() {
    let server = TestServer::start_with(TlsMode::Off, generous()).await;
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let udp = UdpClient::connect(&udp_options(server.addr, encoding))
            .await
            .expect("binds");
        assert_eq!(
            udp.call("ping", json!({})).await.expect("pong"),
            json!({"pong": true})
        );
        let hello = udp.call("hello", json!({})).await.expect("hello");
        assert_eq!(hello["protocol"], 1);
        // Login over UDP works in plaintext mode; the token then rides in
        // each envelope.
        udp.login("admin", ADMIN_PASSWORD).await.expect("logs in");
        let name = format!("P-{}", encoding.as_str());
        let p = udp
            .call("promotion.create", json!({"name": name, "year": 2026}))
            .await
            .expect("creates");
        assert_eq!(p["name"], name.as_str());
        let who = udp.call("auth.whoami", json!({})).await.expect("whoami");
        assert_eq!(who["username"], "admin");
        match udp.call("promotion.create", json!({"name": name})).await {
            Err(ClientError::Server(e)) => assert_eq!(e.code.as_str(), "conflict"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    // A raw MessagePack datagram gets a MessagePack reply.
    let socket = raw_socket().await;
    let request = rmp_serde::to_vec_named(&json!({"id": 5, "cmd": "ping"})).expect("msgpack");
    let reply = exchange(&socket, server.addr, &request).await;
    assert_eq!(Encoding::sniff(&reply), Encoding::Msgpack);
    let reply = Reply::decode(Encoding::Msgpack, &reply).expect("a reply");
    assert_eq!(reply.result, Ok(json!({"pong": true})));
}

#[tokio::test]
async fn a_repeated_datagram_is_executed_once_and_answered_the_same() {
    let server = TestServer::start_with(TlsMode::Off, generous()).await;
    let mut c = server.admin().await;
    let students = promotion_with_students(&mut c, "P", 1).await;
    let token = admin_token(&server).await;
    let socket = raw_socket().await;
    for (encoding, id) in [(Encoding::Json, 42), (Encoding::Msgpack, 43)] {
        let request = json!({
            "id": id, "cmd": "grade.add", "token": token.expose(),
            "args": {"student": students[0], "subject": "Networks", "value": 12.5}
        });
        let datagram = gradebook_proto::codec::to_datagram(encoding, &request).expect("encodes");
        let first = exchange(&socket, server.addr, &datagram).await;
        let again = exchange(&socket, server.addr, &datagram).await;
        assert_eq!(first, again, "the same reply, byte for byte");
        // Twenty copies at once: all answered alike, none executed.
        for _ in 0..20 {
            socket.send_to(&datagram, server.addr).await.expect("sends");
        }
        let copies = drain(&socket, Duration::from_millis(500)).await;
        assert!(!copies.is_empty());
        assert!(copies.iter().all(|c| *c == first));
    }
    assert_eq!(count_grades(&server, &students).await, 2);

    // A read answered once is answered the same, even when the data has
    // changed since (the reply is remembered, not recomputed).
    let list = json!({"id": "list-1", "cmd": "grade.list", "token": token.expose(),
        "args": {"student": students[0]}})
    .to_string();
    let first = exchange(&socket, server.addr, list.as_bytes()).await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": students[0], "subject": "Maths", "value": 3}),
    )
    .await;
    let again = exchange(&socket, server.addr, list.as_bytes()).await;
    assert_eq!(first, again);
    assert_eq!(
        json_reply(&again)["data"]["grades"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn a_retry_after_a_restart_gets_the_same_reply_and_runs_nothing() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let students = promotion_with_students(&mut c, "P", 1).await;
    drop(c);
    let token = admin_token(&server).await;
    let socket = raw_socket().await;
    let writes = [
        json!({"id": 1, "cmd": "grade.add", "token": token.expose(),
            "args": {"student": students[0], "subject": "Networks", "value": "ABS"}}),
        json!({"id": 2, "cmd": "promotion.create", "token": token.expose(),
            "args": {"name": "Q", "description": "created once"}}),
        json!({"id": 3, "cmd": "student.add", "token": token.expose(),
            "args": {"promotion": "Q", "first_name": "Ada", "last_name": "L", "number": "7"}}),
    ];
    let mut replies = Vec::new();
    for w in &writes {
        let reply = exchange(&socket, server.addr, w.to_string().as_bytes()).await;
        assert_eq!(
            json_reply(&reply)["ok"],
            true,
            "{}",
            String::from_utf8_lossy(&reply)
        );
        replies.push(reply);
    }

    let dir = server.stop().await;
    let server = TestServer::start_in(dir, TlsMode::Off, Limits::default()).await;
    for (w, first) in writes.iter().zip(&replies) {
        let again = exchange(&socket, server.addr, w.to_string().as_bytes()).await;
        assert_eq!(&again, first, "{w}");
    }
    assert_eq!(count_grades(&server, &students).await, 1);
    let mut c = server.admin().await;
    let q = ok(&mut c, "student.list", json!({"promotion": "Q"})).await;
    assert_eq!(q["students"].as_array().map(Vec::len), Some(1));
}

/// A UDP relay between one client and the server that drops, duplicates
/// and reorders datagrams in both directions, driven by a seeded `Rng`.
struct LossyProxy {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Clone, Copy)]
struct Faults {
    drop: f64,
    duplicate: f64,
    delay: f64,
}

impl LossyProxy {
    async fn start(server: SocketAddr, seed: u64, faults: Faults) -> LossyProxy {
        let front = Arc::new(raw_socket().await);
        let back = Arc::new(raw_socket().await);
        back.connect(server).await.expect("connects");
        let addr = front.local_addr().expect("address");
        let (client_tx, client_rx) = tokio::sync::watch::channel(None::<SocketAddr>);
        // Client to server.
        let upstream = {
            let (front, back) = (front.clone(), back.clone());
            tokio::spawn(async move {
                let mut rng = Rng(seed);
                let mut buf = vec![0u8; 65_536];
                loop {
                    let Ok((n, from)) = front.recv_from(&mut buf).await else {
                        continue;
                    };
                    client_tx.send_replace(Some(from));
                    let datagram = buf[..n].to_vec();
                    relay(&mut rng, faults, datagram, back.clone(), None);
                }
            })
        };
        // Server to client.
        let downstream = tokio::spawn(async move {
            let mut rng = Rng(seed ^ 0xdead_beef);
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok(n) = back.recv(&mut buf).await else {
                    continue;
                };
                let Some(client) = *client_rx.borrow() else {
                    continue;
                };
                relay(
                    &mut rng,
                    faults,
                    buf[..n].to_vec(),
                    front.clone(),
                    Some(client),
                );
            }
        });
        LossyProxy {
            addr,
            tasks: vec![upstream, downstream],
        }
    }
}

/// Forwards one datagram as the faults say: maybe not at all, maybe twice,
/// maybe a few milliseconds late (so that later ones overtake it).
fn relay(
    rng: &mut Rng,
    faults: Faults,
    datagram: Vec<u8>,
    socket: Arc<UdpSocket>,
    to: Option<SocketAddr>,
) {
    if rng.chance(faults.drop) {
        return;
    }
    let copies = if rng.chance(faults.duplicate) { 2 } else { 1 };
    for _ in 0..copies {
        let delay = rng
            .chance(faults.delay)
            .then(|| Duration::from_micros(rng.below(5_000)));
        let (socket, datagram) = (socket.clone(), datagram.clone());
        let send = async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let _ = match to {
                Some(to) => socket.send_to(&datagram, to).await,
                None => socket.send(&datagram).await,
            };
        };
        tokio::spawn(send);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_grades_through_thirty_percent_loss_are_ten_thousand_grades() {
    const GRADES: usize = 10_000;
    const WORKERS: usize = 256;
    let server = TestServer::start_with(TlsMode::Off, generous()).await;
    let mut c = server.admin().await;
    let students = promotion_with_students(&mut c, "P", 10).await;
    let token = admin_token(&server).await;
    let faults = Faults {
        drop: 0.3,
        duplicate: 0.1,
        delay: 0.1,
    };
    let proxy = LossyProxy::start(server.addr, 0x5eed, faults).await;
    let udp = Arc::new(
        UdpClient::connect(&udp_options(proxy.addr, Encoding::Msgpack))
            .await
            .expect("binds"),
    );
    udp.set_token(Some(token));
    let students = Arc::new(students);
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (udp, students) = (udp.clone(), students.clone());
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (w..GRADES).step_by(WORKERS) {
                let args = json!({
                    "student": students[i % students.len()],
                    "subject": "Networks",
                    "value": (i % 2001) as f64 / 100.0,
                });
                let g = udp
                    .call("grade.add", args)
                    .await
                    .unwrap_or_else(|e| panic!("grade {i}: {e}"));
                ids.push(g["id"].as_i64().expect("grade id"));
            }
            ids
        }));
    }
    let mut ids = HashSet::new();
    for w in workers {
        ids.extend(w.await.expect("worker"));
    }
    drop(proxy);
    assert_eq!(ids.len(), GRADES, "each call got its own grade");
    assert_eq!(count_grades(&server, &students).await, GRADES);
}

/// A valid request, to be mangled.
fn sample_request(rng: &mut Rng, token: &str) -> Value {
    let cmds = [
        ("ping", json!({})),
        ("hello", json!({"encoding": "msgpack"})),
        ("promotion.list", json!({})),
        (
            "grade.add",
            json!({"student": 1, "subject": "S", "value": 10}),
        ),
        ("promotion.create", json!({"name": "Fuzz"})),
        (
            "auth.login",
            json!({"username": "admin", "password": "wrong"}),
        ),
    ];
    let (cmd, args) = &cmds[rng.below(cmds.len() as u64) as usize];
    let mut r = json!({"cmd": cmd, "args": args});
    if rng.chance(0.7) {
        r["id"] = json!(rng.below(1000));
    }
    if rng.chance(0.5) {
        r["token"] = json!(token);
    }
    r
}

/// One garbage datagram: random bytes, or a request with bytes flipped,
/// cut short or padded, in either encoding.
fn garbage(rng: &mut Rng, token: &str) -> Vec<u8> {
    match rng.below(4) {
        0 => {
            let n = rng.below(1500) as usize;
            (0..n).map(|_| rng.next() as u8).collect()
        }
        1 => {
            // Deep nesting.
            let depth = rng.below(5000) as usize;
            let mut v = br#"{"id":1,"cmd":"ping","args":"#.to_vec();
            if rng.chance(0.5) {
                v.extend(std::iter::repeat_n(b'[', depth));
            } else {
                v = vec![0x83, 0xa2, b'i', b'd', 1, 0xa3, b'c', b'm', b'd', 0xa4];
                v.extend_from_slice(b"ping");
                v.extend_from_slice(&[0xa4, b'a', b'r', b'g', b's']);
                v.extend(std::iter::repeat_n(0x91, depth));
            }
            v
        }
        _ => {
            let request = sample_request(rng, token);
            let encoding = if rng.chance(0.5) {
                Encoding::Json
            } else {
                Encoding::Msgpack
            };
            let mut v = gradebook_proto::codec::to_datagram(encoding, &request).expect("encodes");
            for _ in 0..rng.below(4) {
                if v.is_empty() {
                    break;
                }
                let at = rng.below(v.len() as u64) as usize;
                match rng.below(3) {
                    0 => v[at] = rng.next() as u8,
                    1 => v.truncate(at),
                    _ => v.insert(at, rng.next() as u8),
                }
            }
            v
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_datagrams_neither_crash_nor_silence_the_server() {
    let server = TestServer::start_with(TlsMode::Off, generous()).await;
    let token = admin_token(&server).await;
    // Logged in before: the garbage includes failed logins, which soon
    // throttle logins from this address.
    let mut c = server.admin().await;
    let socket = Arc::new(raw_socket().await);
    // Count what comes back, to check the no-amplification rule overall.
    let replies = {
        let socket = socket.clone();
        tokio::spawn(async move {
            let (mut count, mut bytes, mut largest) = (0usize, 0usize, 0usize);
            let mut buf = vec![0u8; 65_536];
            while let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await
            {
                count += 1;
                bytes += n;
                largest = largest.max(n);
            }
            (count, bytes, largest)
        })
    };
    let mut rng = Rng(0xbad_5eed);
    let mut sent_bytes = 0;
    for i in 0..10_000 {
        let datagram = garbage(&mut rng, token.expose());
        sent_bytes += datagram.len();
        socket.send_to(&datagram, server.addr).await.expect("sends");
        if i % 64 == 0 {
            // Let the server keep up rather than overflow the socket buffer.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (count, reply_bytes, largest) = replies.await.expect("counts");
    assert!(count > 0, "some garbage deserved an answer");
    assert!(largest <= 1200, "a {largest}-byte reply");
    assert!(
        reply_bytes <= 3 * sent_bytes,
        "{reply_bytes} bytes of replies to {sent_bytes} bytes of requests"
    );

    // Still serving, over UDP and TCP; nothing was created.
    let udp = UdpClient::connect(&udp_options(server.addr, Encoding::Json))
        .await
        .expect("binds");
    assert_eq!(
        udp.call("ping", json!({})).await.expect("pong"),
        json!({"pong": true})
    );
    let list = ok(&mut c, "promotion.list", json!({})).await;
    let names: Vec<&str> = list["promotions"]
        .as_array()
        .expect("promotions")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    // Only an intact, authenticated promotion.create with an id can have
    // created "Fuzz"; nothing else may have run.
    assert!(names.iter().all(|n| *n == "Fuzz"), "{names:?}");
}

#[tokio::test]
async fn replies_before_authentication_are_at_most_three_times_the_request() {
    let server = TestServer::start().await;
    let socket = raw_socket().await;
    // A tiny ping: its reply fits three times its size.
    let ping = br#"{"id":1,"cmd":"ping"}"#;
    let reply = exchange(&socket, server.addr, ping).await;
    assert!(reply.len() <= 3 * ping.len());
    assert_eq!(json_reply(&reply)["data"]["pong"], true);

    // A tiny hello: its reply would not, so it gets a short error instead.
    let hello = br#"{"id":2,"cmd":"hello"}"#;
    let reply = exchange(&socket, server.addr, hello).await;
    assert!(reply.len() <= 3 * hello.len(), "{}", reply.len());
    assert_eq!(json_reply(&reply)["error"]["code"], "too_large");
    // Padded, it gets its reply.
    let padded = json!({"id": 3, "cmd": "hello", "pad": " ".repeat(40)}).to_string();
    let reply = json_reply(&exchange(&socket, server.addr, padded.as_bytes()).await);
    assert_eq!(reply["data"]["server"], "gradebook");

    // An error is shortened to fit...
    let list = br#"{"id":4,"cmd":"promotion.list"}"#;
    let reply = exchange(&socket, server.addr, list).await;
    assert!(reply.len() <= 3 * list.len());
    assert_eq!(json_reply(&reply)["error"]["code"], "unauthenticated");
    // ...and what cannot be made small enough is not sent at all.
    for tiny in [&b"x"[..], b"{}", b"\x80", b"{\"id\":1}"] {
        socket.send_to(tiny, server.addr).await.expect("sends");
    }
    let (ping, mut seen) =
        exchange_seeing(&socket, server.addr, br#"{"id":"after","cmd":"ping"}"#).await;
    seen.push(ping);
    seen.extend(drain(&socket, Duration::from_millis(300)).await);
    for r in &seen {
        assert_eq!(
            json_reply(r)["id"],
            "after",
            "{}",
            String::from_utf8_lossy(r)
        );
    }

    // Once authenticated, the rule does not apply (only the size limit).
    let token = admin_token(&server).await;
    let mut c = server.admin().await;
    for i in 0..8 {
        ok(
            &mut c,
            "promotion.create",
            json!({"name": format!("Promotion-{i:02}")}),
        )
        .await;
    }
    let request = json!({"id": 5, "cmd": "promotion.list", "token": token.expose()}).to_string();
    let reply = exchange(&socket, server.addr, request.as_bytes()).await;
    assert!(reply.len() > 3 * request.len(), "{}", reply.len());
    assert_eq!(json_reply(&reply)["ok"], true);
}

#[tokio::test]
async fn too_large_replies_and_the_tcp_fallback() {
    let server = TestServer::start_with(TlsMode::Off, generous()).await;
    let mut c = server.admin().await;
    promotion_with_students(&mut c, "Big", 30).await;
    let token = admin_token(&server).await;

    // Without a fallback: too_large.
    let udp = UdpClient::connect(&udp_options(server.addr, Encoding::Json))
        .await
        .expect("binds");
    udp.set_token(Some(token.clone()));
    match udp.call("promotion.show", json!({"name": "Big"})).await {
        Err(ClientError::Server(e)) => assert_eq!(e.code.as_str(), "too_large"),
        other => panic!("expected too_large, got {other:?}"),
    }
    // A write whose reply would not fit changes nothing.
    let long = json!({"name": "Long", "description": "é".repeat(700)});
    match udp.call("promotion.create", long.clone()).await {
        Err(ClientError::Server(e)) => assert_eq!(e.code.as_str(), "too_large"),
        other => panic!("expected too_large, got {other:?}"),
    }
    let list = ok(&mut c, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"].as_array().map(Vec::len), Some(1));

    // With a fallback: the same calls succeed, over TCP, once.
    let mut options = udp_options(server.addr, Encoding::Json);
    options.fallback = Some(server.options());
    let udp = UdpClient::connect(&options).await.expect("binds");
    udp.set_token(Some(token));
    let show = udp
        .call("promotion.show", json!({"name": "Big"}))
        .await
        .expect("over TCP");
    assert_eq!(show["students"].as_array().map(Vec::len), Some(30));
    let p = udp
        .call("promotion.create", long)
        .await
        .expect("created over TCP");
    assert_eq!(p["name"], "Long");
    let list = ok(&mut c, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn with_tls_only_hello_and_ping_are_served_over_udp() {
    let server = TestServer::start_tls().await;
    let udp = UdpClient::connect(&udp_options(server.addr, Encoding::Json))
        .await
        .expect("binds");
    assert_eq!(
        udp.call("ping", json!({})).await.expect("pong"),
        json!({"pong": true})
    );
    assert_eq!(
        udp.call("hello", json!({})).await.expect("hello")["server"],
        "gradebook"
    );
    match udp.login("admin", ADMIN_PASSWORD).await {
        Err(ClientError::Server(e)) => assert_eq!(e.code.as_str(), "insecure_transport"),
        other => panic!("expected insecure_transport, got {other:?}"),
    }
    // Even with a valid token (from a TLS login), nothing else runs.
    let token = admin_token(&server).await;
    udp.set_token(Some(token));
    match udp.call("promotion.create", json!({"name": "P"})).await {
        Err(ClientError::Server(e)) => assert_eq!(e.code.as_str(), "insecure_transport"),
        other => panic!("expected insecure_transport, got {other:?}"),
    }
    let mut c = server.admin().await;
    let list = ok(&mut c, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"], json!([]));
}

#[tokio::test]
async fn a_flood_from_one_address_is_rate_limited() {
    let limits = Limits {
        udp_rate: 1,
        udp_burst: 5,
        ..Limits::default()
    };
    // The clock stands still: no token comes back unless it is advanced.
    let server = TestServer::start_with_clock(limits).await;
    let socket = raw_socket().await;
    let ping = json!({"id": 1, "cmd": "ping", "pad": " ".repeat(60)}).to_string();
    let flood = async || {
        for _ in 0..20 {
            socket
                .send_to(ping.as_bytes(), server.addr)
                .await
                .expect("sends");
        }
        let replies = drain(&socket, Duration::from_millis(500)).await;
        let codes: Vec<Value> = replies
            .iter()
            .map(|r| json_reply(r)["error"]["code"].clone())
            .collect();
        let served = codes.iter().filter(|c| c.is_null()).count();
        let limited = codes.iter().filter(|c| *c == "rate_limited").count();
        assert_eq!(served + limited, codes.len(), "{codes:?}");
        (served, limited)
    };
    // The burst is served; of the refusals, one is answered (at most one
    // a second), the rest dropped.
    assert_eq!(flood().await, (5, 1));
    server.advance(Duration::from_millis(500));
    // Half a token, half a second since the answered refusal.
    assert_eq!(flood().await, (0, 0));
    server.advance(Duration::from_millis(500));
    assert_eq!(flood().await, (1, 1));
    server.advance(Duration::from_secs(3));
    assert_eq!(flood().await, (3, 1));
}

#[tokio::test]
async fn a_retried_logout_gets_its_ok_and_the_session_stays_closed() {
    let server = TestServer::start().await;
    let token = admin_token(&server).await;
    let socket = raw_socket().await;
    let logout = json!({"id": 1, "cmd": "auth.logout", "token": token.expose()}).to_string();
    let first = exchange(&socket, server.addr, logout.as_bytes()).await;
    assert_eq!(json_reply(&first)["ok"], true);
    let again = exchange(&socket, server.addr, logout.as_bytes()).await;
    assert_eq!(first, again);
    let list = json!({"id": 2, "cmd": "promotion.list", "token": token.expose()}).to_string();
    let reply = json_reply(&exchange(&socket, server.addr, list.as_bytes()).await);
    assert_eq!(reply["error"]["code"], "unauthenticated");
}

/// Imports hold lines between requests: they run over TCP only, and a
/// datagram that tries one is refused before anything runs.
#[tokio::test]
async fn imports_are_refused_over_udp() {
    let server = TestServer::start_with(TlsMode::Off, generous()).await;
    let mut c = server.admin().await;
    ok(&mut c, "promotion.create", json!({"name": "P"})).await;
    let token = admin_token(&server).await;
    let udp = UdpClient::connect(&udp_options(server.addr, Encoding::Json))
        .await
        .expect("binds");
    udp.set_token(Some(token));
    let begin = json!({"kind": "students", "promotion": "P", "columns": ["nom", "prénom"]});
    match udp.call("import.begin", begin).await {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code.as_str(), "bad_request");
            assert!(e.message.contains("TCP"), "{}", e.message);
        }
        other => panic!("expected bad_request, got {other:?}"),
    }
}
