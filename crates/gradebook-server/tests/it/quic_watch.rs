//! `watch` over QUIC (protocol §9, §10): the events come on a stream the
//! server opens for each watch, in the watch request's encoding, and
//! follow the same rules as over TCP: exactly what the watcher may read,
//! in seq order, once; `since` with no gap and no duplicate; `unwatch`, a
//! new watch or the session's end stops them; a watcher that stops
//! reading is dropped as `lagged` while writes go on.

use std::time::Duration;

use crate::common;
use crate::watch::{
    Over, add_long_grades, each_watcher_gets_exactly_what_it_may_read_over, event,
    events_stop_when_the_session_ends_over, immediate_world, no_event, read_caught_up,
    read_until_lagged, since_replays_with_no_gap_and_no_duplicate, world,
};

use common::{TestServer, ok};
use gradebook_client::Client;
use gradebook_proto::Encoding;
use gradebook_server::{Limits, TlsMode};
use serde_json::{Value, json};

/// A grade for `student` in Networks.
fn grade(student: i64, value: f64) -> Value {
    json!({"student": student, "subject": "Networks", "value": value})
}

/// The next event's frame as it came, or a panic after a while.
async fn frame(c: &mut Client) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(20), c.next_frame())
        .await
        .expect("a frame in time")
        .expect("a frame")
        .to_vec()
}

/// The value of the grade the next event is about.
async fn value(c: &mut Client) -> f64 {
    let e = event(c).await;
    e.data
        .as_ref()
        .and_then(|d| d["value"].as_f64())
        .unwrap_or_else(|| panic!("a grade's event, got {e:?}"))
}

#[tokio::test]
async fn a_quic_watcher_gets_another_clients_grade_in_json_and_in_msgpack() {
    let server = TestServer::start_tls().await;
    let mut admin = server.admin().await;
    let (me, _) = world(&server, &mut admin).await;
    let mut json_watcher = server.quic_admin().await;
    let mut msgpack_watcher = server.quic_admin().await;
    msgpack_watcher
        .use_encoding(Encoding::Msgpack)
        .await
        .expect("msgpack");
    let mut seqs = Vec::new();
    for watcher in [&mut json_watcher, &mut msgpack_watcher] {
        let watching = ok(watcher, "watch", json!({"promotion": "P"})).await;
        assert_eq!(watching["watching"], true);
        seqs.push(watching["seq"].as_i64().expect("seq"));
    }
    // Written by another client, over TCP.
    let added = ok(&mut admin, "grade.add", grade(me, 14.5)).await;
    for watcher in [&mut json_watcher, &mut msgpack_watcher] {
        let e = event(watcher).await;
        // `P` publishes by hand: the grade is hidden, which an admin sees.
        assert_eq!(e.event, "grade.added");
        assert!(seqs.iter().all(|s| e.seq > *s), "{} after {seqs:?}", e.seq);
        let data = e.data.expect("the grade");
        assert_eq!(data["id"], added["id"]);
        assert_eq!(data["value"].as_f64(), Some(14.5));
        assert_eq!(data["published"], false);
    }
    // Each stream in its watch's encoding: a JSON object, a MessagePack
    // map (the framing, a newline or a length, is taken off).
    ok(&mut admin, "grade.add", grade(me, 9.0)).await;
    let text = frame(&mut json_watcher).await;
    let parsed: Value = serde_json::from_slice(&text).expect("a JSON event");
    assert_eq!(parsed["event"], "grade.added");
    let packed = frame(&mut msgpack_watcher).await;
    assert!(
        matches!(packed.first(), Some(0x80..=0x8f)),
        "a MessagePack map: {packed:02x?}"
    );
    let parsed: Value = rmp_serde::from_slice(&packed).expect("a MessagePack event");
    assert_eq!(parsed["event"], "grade.added");
    assert_eq!(parsed["data"]["value"].as_f64(), Some(9.0));
}

#[tokio::test]
async fn over_quic_each_watcher_gets_exactly_what_it_may_read() {
    each_watcher_gets_exactly_what_it_may_read_over(Over::Quic).await;
}

#[tokio::test]
async fn over_quic_since_replays_the_log_with_no_gap_and_no_duplicate() {
    since_replays_with_no_gap_and_no_duplicate(Over::Quic).await;
}

#[tokio::test]
async fn over_quic_unwatch_or_a_new_watch_ends_the_events_of_the_last() {
    let server = TestServer::start_tls().await;
    let mut admin = server.admin().await;
    // (`P` publishes by hand: an admin's events are `grade.added`.)
    let (me, mate) = world(&server, &mut admin).await;
    let mut watcher = server.quic_admin().await;
    ok(&mut watcher, "watch", json!({"promotion": "P"})).await;
    ok(&mut admin, "grade.add", grade(mate, 1.0)).await;
    assert_eq!(value(&mut watcher).await, 1.0);
    let stopped = ok(&mut watcher, "unwatch", json!({})).await;
    assert_eq!(stopped["watching"], false);
    ok(&mut admin, "grade.add", grade(mate, 2.0)).await;
    no_event(&mut watcher).await;
    // Watching again opens another stream; then watching one student
    // ends the promotion's stream: the classmate's grades stop.
    ok(&mut watcher, "watch", json!({"promotion": "P"})).await;
    ok(&mut admin, "grade.add", grade(mate, 3.0)).await;
    assert_eq!(value(&mut watcher).await, 3.0);
    ok(&mut watcher, "watch", json!({"student": me})).await;
    ok(&mut admin, "grade.add", grade(mate, 4.0)).await;
    ok(&mut admin, "grade.add", grade(me, 5.0)).await;
    assert_eq!(value(&mut watcher).await, 5.0, "not the classmate's");
    no_event(&mut watcher).await;
    // Requests still work on the connection meanwhile.
    assert_eq!(ok(&mut watcher, "ping", json!({})).await["pong"], true);
}

#[tokio::test]
async fn over_quic_events_stop_when_the_session_ends() {
    events_stop_when_the_session_ends_over(Over::Quic).await;
}

#[tokio::test]
async fn a_quic_watcher_is_not_idle_but_its_neighbour_is() {
    let limits = Limits {
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (server, _, me) = immediate_world(TlsMode::SelfSigned, limits).await;
    let mut watcher = server.quic_admin().await;
    ok(&mut watcher, "watch", json!({"promotion": "P"})).await;
    let mut idle = server.quic_admin().await;
    // Longer than the idle timeout, and than QUIC's own (5 s more): only
    // the server's pings keep the watcher's connection up.
    tokio::time::sleep(Duration::from_secs(7)).await;
    // (The first admin connection was idle too.)
    let mut admin = server.admin().await;
    ok(&mut admin, "grade.add", grade(me, 12.0)).await;
    assert_eq!(value(&mut watcher).await, 12.0);
    assert!(
        idle.call("ping", json!({})).await.is_err(),
        "a connection without a watch is closed when idle"
    );
}

#[tokio::test]
async fn a_quic_watcher_that_stops_reading_is_dropped_as_lagged() {
    // A short queue; a request timeout long enough for the writes below
    // on a slow machine (past it, an unread event stream is reset).
    let limits = Limits {
        watch_queue: 32,
        request_timeout: Duration::from_secs(300),
        ..Limits::default()
    };
    let (server, mut admin, me) = immediate_world(TlsMode::SelfSigned, limits).await;
    let mut sleeper = Over::Quic.login(&server, "prof").await;
    ok(&mut sleeper, "watch", json!({"promotion": "P"})).await;
    // More events than the queue and QUIC's flow control window (1.25 MB
    // for a stream) hold: 6,000 of ~420 bytes are 2.5 MB. The watcher
    // reads nothing meanwhile.
    const WRITES: usize = 6_000;
    add_long_grades(&mut admin, me, WRITES).await;
    // Now it reads: what was queued, in order, then `lagged`.
    let lagged = read_until_lagged(WRITES, async || {
        let e = event(&mut sleeper).await;
        (e.event, e.seq)
    })
    .await;
    ok(&mut admin, "grade.add", grade(me, 1.0)).await;
    // Nothing more on that stream; a new watch from `lagged` catches up
    // on a new one, every event once.
    let head = ok(
        &mut sleeper,
        "watch",
        json!({"promotion": "P", "since": lagged}),
    )
    .await["seq"]
        .as_i64()
        .expect("seq");
    read_caught_up(lagged, head, async || event(&mut sleeper).await.seq).await;
}
