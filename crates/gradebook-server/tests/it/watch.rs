//! `watch` (protocol §9) over the wire: each watcher gets exactly the
//! events it may read, in seq order, once; `since` replays the log with no
//! gap and no duplicate; a watcher that stops reading is dropped as
//! `lagged` while writes go on.

use std::time::Duration;

use crate::common;

use common::{TestServer, ok};
use gradebook_client::{Client, ClientError};
use gradebook_proto::Encoding;
use gradebook_proto::data::Event;
use gradebook_server::{Limits, TlsMode};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

pub(crate) const PASSWORD: &str = "password-of-the-tests";

/// The next event, or a panic after a while.
pub(crate) async fn event(c: &mut Client) -> Event {
    tokio::time::timeout(Duration::from_secs(20), c.next_event())
        .await
        .expect("an event in time")
        .expect("an event")
}

/// That no event comes within a short while.
pub(crate) async fn no_event(c: &mut Client) {
    if let Ok(e) = tokio::time::timeout(Duration::from_millis(300), c.next_event()).await {
        panic!("no event expected, got {e:?}");
    }
}

/// A manual promotion `P` with students `me` (with a student account) and
/// `mate`, a teacher granted it; the students' ids.
pub(crate) async fn world(server: &TestServer, admin: &mut Client) -> (i64, i64) {
    ok(
        admin,
        "promotion.create",
        json!({"name": "P", "publication": "manual"}),
    )
    .await;
    let add = |first: &str| json!({"promotion": "P", "first_name": first, "last_name": "L"});
    let me = ok(admin, "student.add", add("Me")).await["id"]
        .as_i64()
        .expect("id");
    let mate = ok(admin, "student.add", add("Mate")).await["id"]
        .as_i64()
        .expect("id");
    for (user, role, student) in [("stud", "student", Some(me)), ("prof", "teacher", None)] {
        let mut args = json!({"username": user, "password": PASSWORD, "role": role});
        if let Some(s) = student {
            args["student"] = json!(s);
        }
        ok(admin, "user.create", args).await;
    }
    ok(
        admin,
        "promotion.grant",
        json!({"name": "P", "username": "prof"}),
    )
    .await;
    let _ = server;
    (me, mate)
}

/// [`world`] on a server with `tls` and `limits`, its promotion
/// publishing grades immediately: the server, its admin (over TCP) and
/// the student `me`.
pub(crate) async fn immediate_world(tls: TlsMode, limits: Limits) -> (TestServer, Client, i64) {
    let server = TestServer::start_with(tls, limits).await;
    let mut admin = server.admin().await;
    let (me, _) = world(&server, &mut admin).await;
    ok(
        &mut admin,
        "promotion.update",
        json!({"name": "P", "publication": "immediate"}),
    )
    .await;
    (server, admin, me)
}

/// How a test's watcher reaches the server: the tests that say the same
/// of TCP and QUIC run once each way.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Over {
    Tcp,
    Quic,
}

impl Over {
    /// The server's TLS: QUIC needs it.
    pub(crate) fn tls(self) -> TlsMode {
        match self {
            Over::Tcp => TlsMode::Off,
            Over::Quic => TlsMode::SelfSigned,
        }
    }

    /// A new connection, not logged in.
    pub(crate) async fn connect(self, server: &TestServer) -> Client {
        match self {
            Over::Tcp => server.connect().await,
            Over::Quic => server.quic_connect().await,
        }
    }

    /// A new connection logged in as `user`.
    pub(crate) async fn login(self, server: &TestServer, user: &str) -> Client {
        let mut c = self.connect(server).await;
        c.login(user, PASSWORD).await.expect("logs in");
        c
    }
}

/// Publishes the grade `id` of `P`.
async fn publish(admin: &mut Client, id: &serde_json::Value) {
    ok(
        admin,
        "grade.publish",
        json!({"promotion": "P", "ids": [id]}),
    )
    .await;
}

#[tokio::test]
async fn each_watcher_gets_exactly_what_it_may_read() {
    each_watcher_gets_exactly_what_it_may_read_over(Over::Tcp).await;
}

/// A student and a teacher watching, each getting exactly the events
/// about what they may read, in seq order, until `unwatch`.
pub(crate) async fn each_watcher_gets_exactly_what_it_may_read_over(over: Over) {
    let server = TestServer::start_with(over.tls(), Limits::default()).await;
    let mut admin = server.admin().await;
    let (me, mate) = world(&server, &mut admin).await;
    let mut student = over.login(&server, "stud").await;
    let mut teacher = over.login(&server, "prof").await;
    let watching = ok(&mut student, "watch", json!({"student": me})).await;
    assert_eq!(watching["watching"], true);
    let start = watching["seq"].as_i64().expect("seq");
    ok(&mut teacher, "watch", json!({"promotion": "P"})).await;

    let grade = |student: i64, value: f64| json!({"student": student, "subject": "Networks", "value": value, "label": "Midterm"});
    // Hidden: the teacher hears of it, the student does not.
    let hidden = ok(&mut admin, "grade.add", grade(me, 14.5)).await;
    let e = event(&mut teacher).await;
    assert_eq!(
        (e.event.as_str(), e.data.as_ref().map(|d| &d["id"])),
        ("grade.added", Some(&hidden["id"]))
    );
    assert!(e.seq > start);
    // Another student's grade, even published: never the student's.
    let other = ok(&mut admin, "grade.add", grade(mate, 9.0)).await;
    assert_eq!(event(&mut teacher).await.event, "grade.added");
    publish(&mut admin, &other["id"]).await;
    assert_eq!(event(&mut teacher).await.event, "grade.published");
    // Their own, once published: the first event the student gets.
    publish(&mut admin, &hidden["id"]).await;
    let e = event(&mut student).await;
    assert_eq!(e.event, "grade.published");
    let data = e.data.expect("the grade");
    assert_eq!(
        (data["id"].clone(), data["value"].clone()),
        (hidden["id"].clone(), json!(14.5))
    );
    assert_eq!(data["published"], true);
    assert_eq!(event(&mut teacher).await.event, "grade.published");
    // An update of a visible grade, then its deletion.
    ok(
        &mut admin,
        "grade.update",
        json!({"id": hidden["id"], "value": 15}),
    )
    .await;
    assert_eq!(event(&mut student).await.event, "grade.updated");
    ok(&mut admin, "grade.delete", json!({"id": hidden["id"]})).await;
    let e = event(&mut student).await;
    assert_eq!(e.event, "grade.deleted");
    // The promotion's lock, to both; then nothing more for the student.
    ok(&mut admin, "promotion.lock", json!({"name": "P"})).await;
    let e = event(&mut student).await;
    assert_eq!(
        (
            e.event.as_str(),
            e.data.expect("promotion")["locked"].clone()
        ),
        ("promotion.locked", json!(true))
    );
    no_event(&mut student).await;
    // The teacher got every event, in seq order.
    let mut seqs = Vec::new();
    for kind in ["grade.updated", "grade.deleted", "promotion.locked"] {
        let e = event(&mut teacher).await;
        assert_eq!(e.event, kind);
        seqs.push(e.seq);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // Replies still come between events; unwatch stops them.
    let stopped = ok(&mut teacher, "unwatch", json!({})).await;
    assert_eq!(stopped["watching"], false);
    ok(&mut admin, "promotion.unlock", json!({"name": "P"})).await;
    no_event(&mut teacher).await;
    // A student cannot watch another student.
    let refused = student.call("watch", json!({"student": mate})).await;
    assert!(
        matches!(&refused, Err(ClientError::Server(e)) if e.code.as_str() == "forbidden"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn since_replays_the_log_with_no_gap_and_no_duplicate() {
    since_replays_with_no_gap_and_no_duplicate(Over::Tcp).await;
}

/// A watch with `since`, started while grades are written, gets every
/// grade once, in order; so does a watch started before them.
pub(crate) async fn since_replays_with_no_gap_and_no_duplicate(over: Over) {
    let (server, mut admin, me) = immediate_world(over.tls(), Limits::default()).await;
    let first = ok(&mut admin, "watch", json!({"promotion": "P"})).await["seq"]
        .as_i64()
        .expect("seq");
    // Ten grades before the watch below, ten during and after it: in
    // MessagePack, to check events in both encodings.
    let mut writer = server.admin().await;
    for i in 0..10 {
        ok(
            &mut writer,
            "grade.add",
            json!({"student": me, "subject": "S", "value": i}),
        )
        .await;
    }
    let mut watcher = over.connect(&server).await;
    watcher
        .use_encoding(Encoding::Msgpack)
        .await
        .expect("msgpack");
    watcher.login("stud", PASSWORD).await.expect("logs in");
    let writes = tokio::spawn(async move {
        for i in 10..20 {
            ok(
                &mut writer,
                "grade.add",
                json!({"student": me, "subject": "S", "value": i}),
            )
            .await;
        }
    });
    let watching = ok(
        &mut watcher,
        "watch",
        json!({"student": me, "since": first}),
    )
    .await;
    assert!(watching["seq"].as_i64().expect("seq") >= first + 10);
    let mut values = Vec::new();
    let mut seqs = Vec::new();
    while values.len() < 20 {
        let e = event(&mut watcher).await;
        assert_eq!(e.event, "grade.published");
        seqs.push(e.seq);
        values.push(e.data.expect("grade")["value"].as_f64().expect("value") as i64);
    }
    writes.await.expect("writes");
    assert_eq!(
        values,
        (0..20).collect::<Vec<_>>(),
        "every grade once, in order"
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    no_event(&mut watcher).await;
    // The admin's own watch, started before, saw the same twenty.
    for i in 0..20 {
        let e = event(&mut admin).await;
        assert_eq!(e.data.expect("grade")["value"].as_f64(), Some(f64::from(i)));
    }
}

/// A raw connection with a small receive buffer, logged in as `user` and
/// watching `P`: a client that can stop reading, and whose unread bytes
/// fill up fast.
async fn raw_watcher(server: &TestServer, user: &str) -> BufReader<TcpStream> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let stream = socket.connect(server.addr).await.expect("connects");
    let mut stream = BufReader::new(stream);
    for request in [
        json!({"id": 1, "cmd": "auth.login", "args": {"username": user, "password": PASSWORD}}),
        json!({"id": 2, "cmd": "watch", "args": {"promotion": "P"}}),
    ] {
        let line = format!("{request}\n");
        stream
            .get_mut()
            .write_all(line.as_bytes())
            .await
            .expect("sent");
        let mut reply = String::new();
        stream.read_line(&mut reply).await.expect("a reply");
        assert!(reply.contains("\"ok\":true"), "{reply}");
    }
    stream
}

/// The next line the raw watcher gets, as JSON.
async fn raw_event(stream: &mut BufReader<TcpStream>) -> serde_json::Value {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_line(&mut line))
        .await
        .expect("an event in time")
        .expect("a line");
    serde_json::from_str(&line).expect("JSON")
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_dropped_as_lagged() {
    // A short queue, so that the sockets' buffers fill it soon.
    let limits = Limits {
        watch_queue: 32,
        ..Limits::default()
    };
    let (server, mut admin, me) = immediate_world(TlsMode::Off, limits).await;
    let mut sleeper = raw_watcher(&server, "prof").await;
    // Writes go on while the watcher reads nothing: more events than its
    // queue and the sockets' buffers hold (Linux lets a socket's send
    // buffer grow to 4 MiB, `tcp_wmem`: 16,000 events of ~420 bytes are
    // 6.7 MB). Pipelined, 100 at a time.
    const WRITES: usize = 16_000;
    add_long_grades(&mut admin, me, WRITES).await;
    // Now it reads: the events queued, in order, then `lagged`, then
    // nothing more.
    let lagged = read_until_lagged(WRITES, async || {
        let e = raw_event(&mut sleeper).await;
        let kind = e["event"].as_str().unwrap_or_default().to_owned();
        (kind, e["seq"].as_i64().expect("seq"))
    })
    .await;
    ok(
        &mut admin,
        "grade.add",
        json!({"student": me, "subject": "S", "value": 1}),
    )
    .await;
    // It catches up with a new watch from where it was: every event
    // after `lagged`, once.
    let again = json!({"id": 3, "cmd": "watch", "args": {"promotion": "P", "since": lagged}});
    sleeper
        .get_mut()
        .write_all(format!("{again}\n").as_bytes())
        .await
        .expect("sent");
    let reply = raw_event(&mut sleeper).await;
    assert_eq!(reply["data"]["watching"], true, "{reply}");
    let head = reply["data"]["seq"].as_i64().expect("seq");
    read_caught_up(lagged, head, async || {
        raw_event(&mut sleeper).await["seq"].as_i64().expect("seq")
    })
    .await;
}

/// Adds `n` grades to student `me`, with long texts (events of ~420
/// bytes), pipelined 100 at a time, each acknowledged.
pub(crate) async fn add_long_grades(admin: &mut Client, me: i64, n: usize) {
    let mut done = 0;
    while done < n {
        for i in 0..100 {
            let value = (done + i) % 20;
            let label = "x".repeat(60);
            let subject = "s".repeat(60);
            admin
                .send(
                    "grade.add",
                    json!({"student": me, "subject": subject, "value": value, "label": label}),
                )
                .expect("queued");
        }
        for _ in 0..100 {
            let reply = admin.recv().await.expect("a reply");
            assert!(reply.result.is_ok(), "{:?}", reply.result);
        }
        done += 100;
    }
}

/// Reads what a watcher dropped from the feed still gets, with `next`
/// (each event's kind and seq): events in order, fewer than the `writes`
/// made, then `lagged` at the last one's seq, which it returns.
pub(crate) async fn read_until_lagged(
    writes: usize,
    mut next: impl AsyncFnMut() -> (String, i64),
) -> i64 {
    let mut last = 0;
    let mut received = 0;
    let lagged = loop {
        let (kind, seq) = next().await;
        if kind == "lagged" {
            break seq;
        }
        assert!(seq > last, "in order: {seq} after {last}");
        last = seq;
        received += 1;
    };
    assert!(received < writes, "it was dropped before the end");
    assert_eq!(lagged, last, "lagged after the last event it got");
    lagged
}

/// Reads, with `next` (each event's seq), a new watch's events from
/// `lagged` up to `head`: every one once, none missing.
pub(crate) async fn read_caught_up(lagged: i64, head: i64, mut next: impl AsyncFnMut() -> i64) {
    let mut seq = lagged;
    while seq < head {
        let next = next().await;
        assert_eq!(next, seq + 1, "no gap, no duplicate");
        seq = next;
    }
}

#[tokio::test]
async fn events_stop_when_the_session_ends() {
    events_stop_when_the_session_ends_over(Over::Tcp).await;
}

/// A watch's events stop when the session that asked ends, and the
/// watcher is told why.
pub(crate) async fn events_stop_when_the_session_ends_over(over: Over) {
    let (server, mut admin, me) = immediate_world(over.tls(), Limits::default()).await;
    let mut student = over.login(&server, "stud").await;
    ok(&mut student, "watch", json!({"student": me})).await;
    ok(
        &mut admin,
        "grade.add",
        json!({"student": me, "subject": "S", "value": 10}),
    )
    .await;
    assert_eq!(event(&mut student).await.event, "grade.published");
    // An admin sets a new password: every session of the account ends.
    ok(
        &mut admin,
        "user.password",
        json!({"username": "stud", "new": "another-password-of-the-tests"}),
    )
    .await;
    ok(
        &mut admin,
        "grade.add",
        json!({"student": me, "subject": "S", "value": 11}),
    )
    .await;
    // Instead of the event, a reply without an id says why (which the
    // client hands over as the server's error).
    let next = tokio::time::timeout(Duration::from_secs(20), student.next_event())
        .await
        .expect("in time");
    match next {
        Err(ClientError::Server(e)) => assert_eq!(e.code.as_str(), "unauthenticated", "{e:?}"),
        other => panic!("expected the session's end, got {other:?}"),
    }
    no_event(&mut student).await;
}
