//! The server driven over the wire by the real client: the assignment's
//! services, every error code, pipelining, concurrency, TLS, restarts.

use crate::common;

use std::time::Duration;

use common::{
    ADMIN_PASSWORD, TestServer, assert_client_closed, assert_closed, assert_open, err, ok,
    promotion_with_students, raw_call, raw_reply,
};
use gradebook_client::{Client, ClientError, ConnectOptions};
use gradebook_server::{Limits, TlsMode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[tokio::test]
async fn the_five_services_and_the_listing() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;

    // 1. Create a promotion.
    let p = ok(
        &mut c,
        "promotion.create",
        json!({"name": "RT2-2026", "year": 2026}),
    )
    .await;
    assert_eq!(
        p,
        json!({
            "name": "RT2-2026", "year": 2026, "description": null, "students": 0,
            "publication": "immediate", "locked": false,
        })
    );
    // 2. Add students.
    let alice = ok(
        &mut c,
        "student.add",
        json!({"promotion": "RT2-2026", "first_name": "Alice", "last_name": "Dupont", "number": "22001234"}),
    )
    .await;
    let alice_id = alice["id"].as_i64().expect("id");
    assert_eq!(alice["promotion"], "RT2-2026");
    let bob = ok(
        &mut c,
        "student.add",
        json!({"promotion": "RT2-2026", "first_name": "Bob", "last_name": "Martin"}),
    )
    .await;
    let bob_id = bob["id"].as_i64().expect("id");
    // 3. Grades with coefficients.
    let g = ok(
        &mut c,
        "grade.add",
        json!({"student": alice_id, "subject": "Networks", "value": 14.5, "coefficient": 2, "label": "Midterm"}),
    )
    .await;
    assert_eq!(g["value"], json!(14.5));
    assert_eq!(f(&g["coefficient"]), 2.0);
    assert_eq!(g["label"], "Midterm");
    ok(
        &mut c,
        "grade.add",
        json!({"student": alice_id, "subject": "Maths", "value": "ABS"}),
    )
    .await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": alice_id, "subject": "Maths", "value": 12}),
    )
    .await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": alice_id, "subject": "English", "value": "EXC", "coefficient": 3}),
    )
    .await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": bob_id, "subject": "Networks", "value": 8.25}),
    )
    .await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": bob_id, "subject": "Maths", "value": "ATT"}),
    )
    .await;

    // 4. A student's average: (29 + 0 + 12) / (2 + 1 + 1) = 10.25.
    let a = ok(&mut c, "student.average", json!({"id": alice_id})).await;
    assert_eq!(f(&a["average"]), 10.25);
    assert_eq!(a["counted"], 3);
    assert_eq!(f(&a["coefficients"]), 4.0);
    assert_eq!(a["incomplete"], false);
    let b = ok(&mut c, "student.average", json!({"id": bob_id})).await;
    assert_eq!(f(&b["average"]), 8.25);
    assert_eq!(b["incomplete"], true);

    // 5. The promotion's average: mean of 10.25 and 8.25.
    let pa = ok(&mut c, "promotion.average", json!({"name": "RT2-2026"})).await;
    assert_eq!(f(&pa["average"]), 9.25);
    assert_eq!(pa["count"], 2);
    assert_eq!(f(&pa["min"]), 8.25);
    assert_eq!(f(&pa["max"]), 10.25);
    assert_eq!(f(&pa["median"]), 9.25);
    assert_eq!(f(&pa["stddev"]), 1.0);
    assert_eq!(pa["students"], 2);
    assert_eq!(pa["incomplete"], 1);
    let hist: Vec<u64> = serde_json::from_value(pa["histogram"].clone()).expect("histogram");
    assert_eq!(hist.len(), 20);
    assert_eq!(hist[8], 1);
    assert_eq!(hist[10], 1);
    assert_eq!(hist.iter().sum::<u64>(), 2);

    // Student detail: grades, per-subject averages, rank.
    let s = ok(&mut c, "student.show", json!({"id": alice_id})).await;
    assert_eq!(s["grades"].as_array().expect("grades").len(), 4);
    assert_eq!(s["rank"], 1);
    assert_eq!(s["of"], 2);
    let subjects = s["subjects"].as_array().expect("subjects");
    let maths = subjects
        .iter()
        .find(|x| x["subject"] == "Maths")
        .expect("maths");
    assert_eq!(f(&maths["average"]), 6.0);
    let english = subjects
        .iter()
        .find(|x| x["subject"] == "English")
        .expect("english");
    assert!(english["average"].is_null(), "EXC only: no average");

    // Listing a promotion with its grades.
    let show = ok(&mut c, "promotion.show", json!({"name": "RT2-2026"})).await;
    let students = show["students"].as_array().expect("students");
    assert_eq!(students.len(), 2);
    assert_eq!(students[0]["id"], alice_id);
    assert_eq!(students[0]["rank"], 1);
    assert_eq!(students[1]["rank"], 2);
    let grades = ok(&mut c, "grade.list", json!({"student": bob_id})).await;
    assert_eq!(grades["grades"].as_array().expect("grades").len(), 2);
    let list = ok(&mut c, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"][0]["students"], 2);

    // Explain agrees with the average.
    let e = ok(&mut c, "student.explain", json!({"id": alice_id})).await;
    assert_eq!(f(&e["average"]), 10.25);
    assert_eq!(e["lines"].as_array().expect("lines").len(), 4);
}

#[tokio::test]
async fn ranks_share_places_on_the_rounded_average() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 5).await;
    // 15; 12.344 and 12.336 both show as 12.34; 10; none.
    let grades: [&[(f64, f64)]; 5] = [
        &[(15.0, 1.0)],
        &[(12.34, 1.0), (12.35, 0.01)],
        &[(12.33, 1.0), (12.36, 0.25)],
        &[(10.0, 1.0)],
        &[],
    ];
    for (id, gs) in ids.iter().zip(grades) {
        for (v, coef) in gs {
            ok(
                &mut c,
                "grade.add",
                json!({"student": id, "subject": "S", "value": v, "coefficient": coef}),
            )
            .await;
        }
    }
    let show = ok(&mut c, "promotion.show", json!({"name": "P"})).await;
    let rank_of = |id: i64| {
        show["students"]
            .as_array()
            .expect("students")
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["rank"].clone())
            .expect("listed")
    };
    assert_eq!(rank_of(ids[0]), json!(1));
    assert_eq!(rank_of(ids[1]), json!(2));
    assert_eq!(rank_of(ids[2]), json!(2));
    assert_eq!(rank_of(ids[3]), json!(4));
    assert_eq!(rank_of(ids[4]), Value::Null);
    let s = ok(&mut c, "student.show", json!({"id": ids[3]})).await;
    assert_eq!(s["rank"], 4);
    assert_eq!(s["of"], 4);
}

#[tokio::test]
async fn values_outside_their_domain_are_refused() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    let s = ids[0];
    for (value, coef) in [
        (json!(45), json!(1)),
        (json!(-0.5), json!(1)),
        (json!(12.255), json!(1)),
        (json!("abs"), json!(1)),
        (json!(12), json!(-1)),
        (json!(12), json!(0)),
        (json!(12), json!(100.01)),
    ] {
        err(
            &mut c,
            "grade.add",
            json!({"student": s, "subject": "S", "value": value, "coefficient": coef}),
            "invalid_value",
        )
        .await;
    }
    err(
        &mut c,
        "promotion.create",
        json!({"name": ""}),
        "invalid_value",
    )
    .await;
    err(
        &mut c,
        "promotion.create",
        json!({"name": "a\u{7}b"}),
        "invalid_value",
    )
    .await;
    err(
        &mut c,
        "promotion.create",
        json!({"name": "x".repeat(65)}),
        "invalid_value",
    )
    .await;
    err(
        &mut c,
        "student.add",
        json!({"promotion": "P", "first_name": "", "last_name": "X"}),
        "invalid_value",
    )
    .await;
    err(
        &mut c,
        "grade.add",
        json!({"student": s, "subject": "", "value": 10}),
        "invalid_value",
    )
    .await;
    // Nothing was half-written.
    let grades = ok(&mut c, "grade.list", json!({"student": s})).await;
    assert_eq!(grades["grades"], json!([]));
    // The edges are valid.
    ok(
        &mut c,
        "grade.add",
        json!({"student": s, "subject": "S", "value": 20, "coefficient": 100}),
    )
    .await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": s, "subject": "S", "value": 0, "coefficient": 0.01}),
    )
    .await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": s, "subject": "S", "value": 12.25}),
    )
    .await;
}

#[tokio::test]
async fn each_error_code_that_applies() {
    let server = TestServer::start().await;
    let mut anon = server.connect().await;
    // unauthenticated: no session, wrong password, unknown user.
    err(&mut anon, "promotion.list", json!({}), "unauthenticated").await;
    let wrong = err(
        &mut anon,
        "auth.login",
        json!({"username": "admin", "password": "not the password"}),
        "unauthenticated",
    )
    .await;
    let unknown = err(
        &mut anon,
        "auth.login",
        json!({"username": "nobody", "password": "not the password"}),
        "unauthenticated",
    )
    .await;
    assert_eq!(
        wrong, unknown,
        "the same error for an unknown user and a wrong password"
    );
    // unknown_command, bad_request.
    err(&mut anon, "promotion.destroy", json!({}), "unknown_command").await;
    err(&mut anon, "ping", json!({"x": 1}), "bad_request").await;

    let mut c = server.admin().await;
    err(
        &mut c,
        "promotion.show",
        json!({"nmae": "P"}),
        "bad_request",
    )
    .await;
    err(&mut c, "student.show", json!({"id": "1"}), "bad_request").await;
    // not_found.
    err(
        &mut c,
        "promotion.show",
        json!({"name": "RT9"}),
        "not_found",
    )
    .await;
    err(&mut c, "student.show", json!({"id": 999}), "not_found").await;
    err(&mut c, "grade.delete", json!({"id": 999}), "not_found").await;
    err(
        &mut c,
        "grade.add",
        json!({"student": 999, "subject": "S", "value": 1}),
        "not_found",
    )
    .await;
    err(
        &mut c,
        "student.add",
        json!({"promotion": "RT9", "first_name": "A", "last_name": "B"}),
        "not_found",
    )
    .await;
    // conflict.
    promotion_with_students(&mut c, "P", 1).await;
    err(&mut c, "promotion.create", json!({"name": "P"}), "conflict").await;
    ok(
        &mut c,
        "student.add",
        json!({"promotion": "P", "first_name": "A", "last_name": "B", "number": "42"}),
    )
    .await;
    err(
        &mut c,
        "student.add",
        json!({"promotion": "P", "first_name": "C", "last_name": "D", "number": "42"}),
        "conflict",
    )
    .await;
    err(&mut c, "promotion.delete", json!({"name": "P"}), "conflict").await;
    ok(
        &mut c,
        "promotion.delete",
        json!({"name": "P", "force": true}),
    )
    .await;
    err(&mut c, "promotion.show", json!({"name": "P"}), "not_found").await;
    // forbidden: a teacher on a promotion they do not manage.
    ok(&mut c, "promotion.create", json!({"name": "Other"})).await;
    ok(
        &mut c,
        "user.create",
        json!({"username": "prof", "password": "teacher-password", "role": "teacher"}),
    )
    .await;
    let mut t = server.connect().await;
    t.login("prof", "teacher-password")
        .await
        .expect("teacher logs in");
    err(
        &mut t,
        "promotion.show",
        json!({"name": "Other"}),
        "forbidden",
    )
    .await;
    err(&mut t, "user.list", json!({}), "forbidden").await;
    let mine = ok(&mut t, "promotion.list", json!({})).await;
    assert_eq!(
        mine["promotions"],
        json!([]),
        "a teacher sees no other promotion"
    );
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
async fn malformed_lines_get_errors_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let mut tcp = server.raw().await;
    tcp.write_all(b"not json\n[1,2]\n\"str\"\n{\"id\":7,\"cmd\":\"ping\"}\n\xff\xfe\n\r\n\n{\"id\":8,\"cmd\":\"ping\"}\r\n")
        .await
        .expect("writes");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.iter().filter(|b| **b == b'\n').count() < 6 {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("replies in time")
            .expect("reads");
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let lines: Vec<Value> = String::from_utf8(got)
        .expect("UTF-8 replies")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each reply is JSON"))
        .collect();
    assert_eq!(lines.len(), 6);
    for l in &lines[..3] {
        assert_eq!(l["ok"], false);
        assert_eq!(l["id"], Value::Null);
        assert_eq!(l["error"]["code"], "bad_request");
    }
    assert_eq!(
        lines[3],
        json!({"id": 7, "ok": true, "data": {"pong": true}})
    );
    assert_eq!(lines[4]["error"]["code"], "bad_request");
    assert_eq!(lines[5]["id"], 8);
}

#[tokio::test]
async fn an_over_long_line_is_refused_and_the_connection_closed() {
    let server = TestServer::start().await;
    // Before login the limit is 16 KiB.
    let mut tcp = server.raw().await;
    let long = vec![b'x'; 64 * 1024];
    let _ = tcp.write_all(&long).await;
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "the server closes the connection");
    let text = String::from_utf8_lossy(&reply);
    let first: Value = serde_json::from_str(text.lines().next().expect("one reply")).expect("JSON");
    assert_eq!(first["error"]["code"], "frame_too_large");

    // After login, the limit is 1 MiB: 100 KiB is fine, 2 MiB is not.
    let mut c = server.admin().await;
    let desc = "d".repeat(2000);
    ok(&mut c, "ping", json!({})).await;
    err(
        &mut c,
        "promotion.create",
        json!({"name": "P", "description": desc}),
        "invalid_value",
    )
    .await;
    let big = format!(
        "{{\"cmd\":\"ping\",\"pad\":\"{}\"}}\n",
        "p".repeat(100 * 1024)
    );
    c.send_raw(big.as_bytes()).await.expect("sends");
    assert!(c.recv().await.expect("reply").result.is_ok());
    let huge = format!("{{\"cmd\":\"ping\",\"pad\":\"{}\"}}\n", "p".repeat(2 << 20));
    let _ = c.send_raw(huge.as_bytes()).await;
    match c.recv().await {
        Ok(r) => assert_eq!(
            r.result.expect_err("too large").code.as_str(),
            "frame_too_large"
        ),
        Err(e) => panic!("expected a frame_too_large reply, got {e}"),
    }
    assert!(c.call("ping", json!({})).await.is_err(), "then closed");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    let mut sent = Vec::new();
    for i in 0..500 {
        let id = if i % 2 == 0 {
            c.send(
                "grade.add",
                json!({"student": ids[0], "subject": "S", "value": (i % 21)}),
            )
        } else {
            c.send("ping", json!({}))
        }
        .expect("queued");
        sent.push(id);
    }
    c.flush().await.expect("sent");
    for id in sent {
        let r = c.recv().await.expect("reply");
        assert_eq!(r.id, Some(id));
        assert!(r.result.is_ok());
    }
    let grades = ok(&mut c, "grade.list", json!({"student": ids[0]})).await;
    assert_eq!(grades["grades"].as_array().expect("grades").len(), 250);
}

/// Sends every request in one write, then reads the replies in order: each
/// is `Ok(data)` or `Err(code)`.
async fn pipeline(c: &mut Client, requests: &[(&str, Value)]) -> Vec<Result<Value, String>> {
    let mut sent = Vec::new();
    for (cmd, args) in requests {
        sent.push(c.send(cmd, args.clone()).expect("queued"));
    }
    c.flush().await.expect("sent");
    let mut replies = Vec::new();
    for id in sent {
        let r = c.recv().await.expect("reply");
        assert_eq!(r.id, Some(id), "replies keep the order of requests");
        replies.push(r.result.map_err(|e| e.code.as_str().to_owned()));
    }
    replies
}

/// Writes pipelined on one connection start before the ones ahead of them
/// commit; what they do must still be exactly what running them one after
/// the other does, including when a write depends on the one before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_writes_behave_as_if_run_one_after_another() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(
        &mut admin,
        "user.create",
        json!({"username": "prof", "password": "teacher-password", "role": "teacher"}),
    )
    .await;
    let mut t = server.connect().await;
    t.login("prof", "teacher-password").await.expect("logs in");
    let student = |first: &str, number: &str| json!({"promotion": "Pipe", "first_name": first, "last_name": "L", "number": number});
    let replies = pipeline(
        &mut t,
        &[
            // The teacher may add students only once the promotion they
            // create exists: the first add depends on the create.
            ("promotion.create", json!({"name": "Pipe"})),
            ("student.add", student("A", "N1")),
            ("student.add", student("B", "N1")),
            ("student.add", student("C", "N2")),
            (
                "grade.add",
                json!({"student": 999_999, "subject": "S", "value": 10}),
            ),
            ("promotion.show", json!({"name": "Pipe"})),
        ],
    )
    .await;
    let codes: Vec<&str> = replies
        .iter()
        .map(|r| r.as_ref().map_or_else(|e| e.as_str(), |_| "ok"))
        .collect();
    assert_eq!(codes, ["ok", "ok", "conflict", "ok", "forbidden", "ok"]);
    let shown = replies[5].as_ref().expect("shown");
    assert_eq!(shown["students"].as_array().expect("students").len(), 2);

    // A long run of grades, one of them invalid, then a read of what they
    // made: every valid grade is there, once, in the order sent.
    let a = replies[1].as_ref().expect("added")["id"].clone();
    let mut requests: Vec<(&str, Value)> = (0..300)
        .map(|i| {
            let value = if i == 150 { json!(45) } else { json!(i % 21) };
            (
                "grade.add",
                json!({"student": a, "subject": "S", "value": value}),
            )
        })
        .collect();
    requests.push(("grade.list", json!({"student": a})));
    let replies = pipeline(&mut t, &requests).await;
    assert_eq!(replies[150], Err("invalid_value".to_owned()));
    let ids: Vec<i64> = replies[..300]
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|g| g["id"].as_i64()))
        .collect();
    assert_eq!(ids.len(), 299);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in request order");
    let listed: Vec<i64> = replies[300].as_ref().expect("listed")["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .filter_map(|g| g["id"].as_i64())
        .collect();
    assert_eq!(listed, ids);

    // A delete, then writes on what it deleted: refused as they would be
    // one after the other.
    let first = ids[0];
    let replies = pipeline(
        &mut t,
        &[
            ("grade.delete", json!({"id": first})),
            ("grade.update", json!({"id": first, "value": 12})),
            ("grade.delete", json!({"id": first})),
            (
                "grade.add",
                json!({"student": a, "subject": "T", "value": 12}),
            ),
        ],
    )
    .await;
    let codes: Vec<&str> = replies
        .iter()
        .map(|r| r.as_ref().map_or_else(|e| e.as_str(), |_| "ok"))
        .collect();
    assert_eq!(codes, ["ok", "forbidden", "forbidden", "ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_lose_no_grade() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 10).await;
    let mut tasks = Vec::new();
    for k in 0..100 {
        let options = server.options();
        let student = ids[k % ids.len()];
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&options).await.expect("connects");
            c.login("admin", ADMIN_PASSWORD).await.expect("logs in");
            for j in 0..5 {
                c.call(
                    "grade.add",
                    json!({"student": student, "subject": format!("S{j}"), "value": 10}),
                )
                .await
                .expect("grade added");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let mut total = 0;
    for id in ids {
        let g = ok(&mut c, "grade.list", json!({"student": id})).await;
        total += g["grades"].as_array().expect("grades").len();
    }
    assert_eq!(total, 500);
}

#[tokio::test]
async fn data_and_sessions_survive_a_restart() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let login = c.login("admin", ADMIN_PASSWORD).await.expect("login");
    let ids = promotion_with_students(&mut c, "P", 2).await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": ids[0], "subject": "S", "value": 13.75, "coefficient": 1.5}),
    )
    .await;
    drop(c);
    let dir = server.stop().await;

    let server = TestServer::start_in(dir, TlsMode::Off, Limits::default()).await;
    let mut c = server.connect().await;
    let who = c
        .call_with_token(&login.token, "auth.whoami", json!({}))
        .await
        .expect("the session survived");
    assert_eq!(who["username"], "admin");
    let a = c
        .call_with_token(&login.token, "student.average", json!({"id": ids[0]}))
        .await
        .expect("average");
    assert_eq!(f(&a["average"]), 13.75);
    // Logout revokes the token at once.
    c.call_with_token(&login.token, "auth.logout", json!({}))
        .await
        .expect("logout");
    match c
        .call_with_token(&login.token, "auth.whoami", json!({}))
        .await
    {
        Err(ClientError::Server(e)) => assert_eq!(e.code.as_str(), "unauthenticated"),
        other => panic!("a revoked token still works: {other:?}"),
    }
}

#[tokio::test]
async fn tls_1_3_by_default_and_nothing_for_plaintext_clients() {
    let server = TestServer::start_tls().await;
    let mut c = server.admin().await;
    assert!(
        c.server_fingerprint()
            .expect("fingerprint")
            .starts_with("SHA256:")
    );
    ok(&mut c, "promotion.create", json!({"name": "P"})).await;

    // A plaintext client on the TLS port gets no reply, only a closed
    // connection (or a TLS alert, which is not JSON).
    let mut tcp = server.raw().await;
    tcp.write_all(b"{\"id\":1,\"cmd\":\"ping\"}\n")
        .await
        .expect("writes");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut got)).await;
    assert!(
        !String::from_utf8_lossy(&got).contains("pong"),
        "served in plaintext: {got:?}"
    );

    // The certificate is kept and reused across restarts.
    let fp = c.server_fingerprint().expect("fingerprint").to_owned();
    drop(c);
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, TlsMode::SelfSigned, Limits::default()).await;
    let mut options = server.options();
    options.tls = Some(gradebook_client::Trust::Fingerprint(fp.clone()));
    let c = Client::connect(&options).await.expect("same certificate");
    assert_eq!(c.server_fingerprint(), Some(fp.as_str()));
    // A wrong pin is refused.
    options.tls = Some(gradebook_client::Trust::Fingerprint(format!(
        "SHA256:{}",
        "0".repeat(64)
    )));
    assert!(matches!(
        Client::connect(&options).await,
        Err(ClientError::Tls(_))
    ));
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn slow_or_silent_clients_are_disconnected() {
    let limits = Limits::default();
    let server = TestServer::start_with_clock(limits.clone()).await;
    let ping = json!({"id": 1, "cmd": "ping"});
    // Never logs in: closed at the login timeout, counted from the
    // connection (its pong proves the server is serving it).
    let mut silent = server.raw().await;
    assert_eq!(raw_call(&mut silent, ping.clone()).await["ok"], true);
    server.advance(limits.login_timeout - SECOND);
    // A request does not postpone the login deadline.
    assert_eq!(raw_call(&mut silent, ping.clone()).await["ok"], true);
    server.advance(SECOND);
    assert_closed(&mut silent).await;

    // Starts a request and never finishes it (even once logged in): closed
    // at the request timeout, counted from its first byte.
    let mut slow = server.raw().await;
    let login = json!({"id": 1, "cmd": "auth.login",
        "args": {"username": "admin", "password": ADMIN_PASSWORD}});
    assert_eq!(raw_call(&mut slow, login).await["ok"], true);
    // The start of the next request comes with a whole one, so it has
    // arrived once that one's reply is back.
    slow.write_all(b"{\"id\":2,\"cmd\":\"ping\"}\n{\"cmd\":")
        .await
        .expect("writes");
    assert_eq!(raw_reply(&mut slow).await["ok"], true);
    server.advance(limits.request_timeout - SECOND);
    assert_open(&mut slow).await;
    server.advance(SECOND);
    assert_closed(&mut slow).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_timeout() {
    let limits = Limits::default();
    let server = TestServer::start_with_clock(limits.clone()).await;
    let mut c = server.admin().await;
    server.advance(limits.idle_timeout - SECOND);
    // A request starts the idle time again.
    ok(&mut c, "ping", json!({})).await;
    server.advance(limits.idle_timeout - SECOND);
    ok(&mut c, "ping", json!({})).await;
    server.advance(limits.idle_timeout);
    assert_client_closed(&mut c).await;
}

/// Sessions end 30 minutes after their last use, and 8 hours after the
/// login however busy; the client is told they expired.
#[tokio::test]
async fn sessions_expire_when_idle_and_after_eight_hours() {
    let limits = Limits {
        idle_timeout: 24 * 60 * MINUTE,
        ..Limits::default()
    };
    let server = TestServer::start_with_clock(limits).await;
    let mut idle = server.admin().await;
    server.advance(29 * MINUTE);
    ok(&mut idle, "auth.whoami", json!({})).await;
    server.advance(29 * MINUTE);
    // 58 minutes after the login, 29 after the last use.
    ok(&mut idle, "auth.whoami", json!({})).await;
    server.advance(30 * MINUTE);
    let e = err(&mut idle, "auth.whoami", json!({}), "unauthenticated").await;
    assert!(e.contains("expired"), "{e}");

    let mut busy = server.admin().await;
    for _ in 0..23 {
        server.advance(20 * MINUTE);
        ok(&mut busy, "auth.whoami", json!({})).await;
    }
    server.advance(19 * MINUTE);
    // 7 h 59 min after the login.
    ok(&mut busy, "auth.whoami", json!({})).await;
    server.advance(MINUTE);
    let e = err(&mut busy, "auth.whoami", json!({}), "unauthenticated").await;
    assert!(e.contains("expired"), "{e}");
}

/// Five failed logins close the rest of the minute to the name and the
/// address, even for the right password; the minute over, it works.
#[tokio::test]
async fn failed_logins_close_the_rest_of_the_minute() {
    let limits = Limits {
        login_timeout: 60 * MINUTE,
        ..Limits::default()
    };
    let server = TestServer::start_with_clock(limits).await;
    let mut c = server.connect().await;
    let wrong = json!({"username": "admin", "password": "not the password"});
    let right = json!({"username": "admin", "password": ADMIN_PASSWORD});
    for _ in 0..5 {
        err(&mut c, "auth.login", wrong.clone(), "unauthenticated").await;
    }
    err(&mut c, "auth.login", right.clone(), "rate_limited").await;
    server.advance(59 * SECOND);
    let e = err(&mut c, "auth.login", right.clone(), "rate_limited").await;
    assert!(e.contains("try again in 1 s"), "{e}");
    server.advance(SECOND);
    ok(&mut c, "auth.login", right).await;
}

#[tokio::test]
async fn updates_and_deletes_are_audited() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    let g = ok(
        &mut c,
        "grade.add",
        json!({"student": ids[0], "subject": "S", "value": 10}),
    )
    .await;
    let gid = g["id"].as_i64().expect("id");
    let u = ok(
        &mut c,
        "grade.update",
        json!({"id": gid, "value": "ABS", "label": "Final"}),
    )
    .await;
    assert_eq!(u["value"], "ABS");
    assert_eq!(u["label"], "Final");
    ok(&mut c, "grade.delete", json!({"id": gid})).await;
    let a = ok(&mut c, "audit.list", json!({"promotion": "P"})).await;
    let entries = a["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["grade.delete", "grade.update", "grade.add"]);
    assert!(entries.iter().all(|e| e["by"] == "admin"));
    assert_eq!(entries[1]["old"]["value"], json!(10.0));
    assert_eq!(entries[1]["new"]["value"], "ABS");
    assert!(entries[0]["new"].is_null());
}

#[tokio::test]
async fn msgpack_after_hello() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    c.use_encoding(gradebook_proto::Encoding::Msgpack)
        .await
        .expect("switches");
    let p = ok(
        &mut c,
        "promotion.create",
        json!({"name": "P", "year": 2026}),
    )
    .await;
    assert_eq!(p["name"], "P");
    err(&mut c, "promotion.create", json!({"name": "P"}), "conflict").await;
}

#[tokio::test]
async fn a_plaintext_client_needs_the_plaintext_option() {
    let server = TestServer::start_tls().await;
    let mut options = ConnectOptions::plaintext(server.addr.to_string());
    options.timeout = Duration::from_secs(5);
    let mut c = Client::connect(&options).await.expect("TCP connects");
    assert!(c.call("ping", json!({})).await.is_err());
}

#[tokio::test]
async fn a_read_after_a_write_sees_it_even_when_cached() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    let ids = promotion_with_students(&mut c, "P", 1).await;
    ok(
        &mut c,
        "grade.add",
        json!({"student": ids[0], "subject": "S", "value": 10}),
    )
    .await;
    for _ in 0..3 {
        let a = ok(&mut c, "student.average", json!({"id": ids[0]})).await;
        assert_eq!(f(&a["average"]), 10.0);
    }
    // Another connection writes; this one reads the new value at once.
    let mut other = server.admin().await;
    ok(
        &mut other,
        "grade.add",
        json!({"student": ids[0], "subject": "S", "value": 20}),
    )
    .await;
    let a = ok(&mut c, "student.average", json!({"id": ids[0]})).await;
    assert_eq!(f(&a["average"]), 15.0);
    let p = ok(&mut c, "promotion.average", json!({"name": "P"})).await;
    assert_eq!(f(&p["average"]), 15.0);

    // A permission granted, used, then revoked: refused at once.
    ok(
        &mut c,
        "user.create",
        json!({"username": "prof", "password": "teacher-password", "role": "teacher"}),
    )
    .await;
    ok(
        &mut c,
        "promotion.grant",
        json!({"name": "P", "username": "prof"}),
    )
    .await;
    let mut t = server.connect().await;
    t.login("prof", "teacher-password").await.expect("logs in");
    ok(&mut t, "student.average", json!({"id": ids[0]})).await;
    let grade = json!({"student": ids[0], "subject": "S", "value": 12});
    for _ in 0..2 {
        ok(&mut t, "grade.add", grade.clone()).await;
    }
    let revoke = json!({"name": "P", "username": "prof"});
    ok(&mut c, "promotion.revoke", revoke).await;
    err(
        &mut t,
        "student.average",
        json!({"id": ids[0]}),
        "forbidden",
    )
    .await;
    err(&mut t, "grade.add", grade, "forbidden").await;
}

#[tokio::test]
async fn logging_out_gives_a_fresh_login_deadline_and_only_ends_ones_own_session() {
    let login_timeout = Limits::default().login_timeout;
    let server = TestServer::start_with_clock(Limits::default()).await;
    let mut c = server.admin().await;
    server.advance(login_timeout + SECOND);
    ok(&mut c, "auth.logout", json!({})).await;
    // Older than the login deadline, but it starts again at the logout.
    c.login("admin", ADMIN_PASSWORD)
        .await
        .expect("logs in again on the same connection");
    // And holds: a full login timeout after a logout, the connection ends.
    ok(&mut c, "auth.logout", json!({})).await;
    server.advance(login_timeout - SECOND);
    ok(&mut c, "ping", json!({})).await;
    server.advance(SECOND);
    assert_client_closed(&mut c).await;
    let mut c = server.admin().await;

    // Logging out another session by its token leaves this one alone.
    let mut other = server.connect().await;
    let theirs = other.login("admin", ADMIN_PASSWORD).await.expect("login");
    c.call_with_token(&theirs.token, "auth.logout", json!({}))
        .await
        .expect("their session ends");
    ok(&mut c, "auth.whoami", json!({})).await;
    err(&mut other, "auth.whoami", json!({}), "unauthenticated").await;
}

#[tokio::test]
async fn a_json_array_is_not_a_request() {
    let server = TestServer::start().await;
    let mut tcp = server.raw().await;
    let reply = raw_call(&mut tcp, json!([1, "ping"])).await;
    assert_eq!(reply["error"]["code"], "bad_request");
}
