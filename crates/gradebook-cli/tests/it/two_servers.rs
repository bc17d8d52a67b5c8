//! Two `gradebook serve` processes on one PostgreSQL database (the
//! throwaway server `scripts/test` starts): a write acknowledged by one is
//! seen by a read sent next to the other, sessions work on both, and
//! after `kill -9` of one, its clients go on with the other, their
//! acknowledged writes all there, each once.

use crate::cli_support;

use std::collections::HashSet;

use cli_support::{ADMIN_PASSWORD, Serve, Server};
use gradebook_client::{Client, ConnectOptions};
use gradebook_store_postgres::testing::{admin_url, fresh_database};
use serde_json::{Value, json};

/// Two servers on a fresh database, with a promotion and a student.
async fn two_servers() -> (Server, Server, i64) {
    let url = fresh_database(&admin_url()).await;
    let a = Serve::new().args(&["--database", &url]).start();
    let b = Serve::new()
        .args(&["--database", &url])
        .admin_password(None)
        .start();
    let mut c = a.admin().await;
    c.call("promotion.create", json!({"name": "P"}))
        .await
        .expect("created");
    let s = c
        .call(
            "student.add",
            json!({"promotion": "P", "first_name": "A", "last_name": "B"}),
        )
        .await
        .expect("added");
    (a, b, s["id"].as_i64().expect("id"))
}

fn ids(grades: &Value) -> Vec<i64> {
    grades["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .map(|g| g["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_by_one_server_is_read_at_once_from_the_other() {
    let (a, b, student) = two_servers().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let mut to_a = a.admin().await;
        let mut to_b = b.admin().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..250 {
                let g = to_a
                    .call(
                        "grade.add",
                        json!({"student": student, "subject": format!("S{t}"), "value": i % 21}),
                    )
                    .await
                    .expect("written through A");
                let id = g["id"].as_i64().expect("id");
                // Sent once A's `ok` is in: B's reply must hold the grade.
                let shown = to_b
                    .call("grade.list", json!({"student": student}))
                    .await
                    .expect("read through B");
                assert!(
                    ids(&shown).contains(&id),
                    "B did not see grade {id} acknowledged by A"
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("no stale read");
    }
    // And the figures B computes count them all.
    let mut to_b = b.admin().await;
    let average = to_b
        .call("student.average", json!({"id": student}))
        .await
        .expect("average");
    assert_eq!(average["counted"], 2000, "{average}");
}

#[tokio::test]
async fn sessions_and_login_failures_are_shared_by_the_servers() {
    let (a, b, _) = two_servers().await;
    let mut to_a = a.client().await;
    let login = to_a
        .login("admin", ADMIN_PASSWORD)
        .await
        .expect("logs in on A");
    let mut to_b = b.client().await;
    let who = to_b
        .call_with_token(&login.token, "auth.whoami", json!({}))
        .await
        .expect("B knows the session");
    assert_eq!(who["username"], "admin");
    // B has it cached now; a logout through A ends it on B too.
    to_a.call("auth.logout", json!({})).await.expect("logs out");
    let refused = to_b
        .call_with_token(&login.token, "auth.whoami", json!({}))
        .await
        .expect_err("the session ended");
    assert!(refused.to_string().contains("unauthenticated"), "{refused}");

    // Failed logins count on every server: five through A, and B refuses
    // the sixth attempt before looking at its password.
    for _ in 0..5 {
        let mut c = a.client().await;
        let e = c
            .login("mallory", "not-the-password")
            .await
            .expect_err("no such account");
        assert!(e.to_string().contains("unauthenticated"), "{e}");
    }
    let mut c = b.client().await;
    let e = c
        .login("mallory", "not-the-password")
        .await
        .expect_err("throttled");
    assert!(e.to_string().contains("rate_limited"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_of_one_server_its_clients_go_on_with_the_other() {
    let (mut a, b, student) = two_servers().await;
    let mut login = a.client().await;
    let token = login
        .login("admin", ADMIN_PASSWORD)
        .await
        .expect("logs in")
        .token;
    let b_addr = b.addr.clone();
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut c = a.client().await;
        let token = token.clone();
        let b_addr = b_addr.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut on_b = false;
            for i in 0..400 {
                let args = json!({"student": student, "subject": format!("W{w}"), "value": i % 21});
                match c.call_with_token(&token, "grade.add", args).await {
                    Ok(g) => acked.push(g["id"].as_i64().expect("id")),
                    // A is gone: the unacknowledged write is not retried
                    // (it may or may not have committed); the client goes
                    // on with B, with the same token.
                    Err(_) if !on_b => {
                        c = Client::connect(&ConnectOptions::plaintext(b_addr.as_str()))
                            .await
                            .expect("connects to B");
                        on_b = true;
                    }
                    Err(e) => panic!("B refused a write: {e}"),
                }
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    a.child.kill().expect("kill -9");
    a.child.wait().expect("reaped");
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.expect("the writer goes on"));
    }
    let mut to_b = b.admin().await;
    let stored = ids(&to_b
        .call("grade.list", json!({"student": student}))
        .await
        .expect("list"));
    let unique: HashSet<i64> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "a grade stored twice");
    for id in &acknowledged {
        assert!(unique.contains(id), "acknowledged grade {id} is missing");
    }
    // At most one unacknowledged write per writer may have committed.
    assert!(stored.len() <= acknowledged.len() + 4);
    assert!(
        acknowledged.len() >= 1000,
        "{} acknowledged",
        acknowledged.len()
    );
    let verified = to_b.call("audit.verify", json!({})).await.expect("verify");
    assert_eq!(verified["intact"], json!(true), "{verified}");
}

/// The next event on `c`, within a few seconds.
async fn event(c: &mut Client) -> gradebook_proto::data::Event {
    tokio::time::timeout(std::time::Duration::from_secs(20), c.next_event())
        .await
        .expect("an event in time")
        .expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_on_one_server_gets_the_events_of_writes_through_the_other() {
    let (a, b, student) = two_servers().await;
    let mut watcher = b.admin().await;
    let watching = watcher
        .call("watch", json!({"promotion": "P"}))
        .await
        .expect("watching on B");
    let from = watching["seq"].as_i64().expect("seq");
    let mut writer = a.admin().await;
    let mut written = Vec::new();
    for i in 0..50 {
        let g = writer
            .call(
                "grade.add",
                json!({"student": student, "subject": "S", "value": i % 21}),
            )
            .await
            .expect("written through A");
        written.push(g["id"].as_i64().expect("id"));
    }
    // Each of A's writes reaches B's watcher once, in seq order.
    let mut seen = Vec::new();
    let mut last = from;
    while seen.len() < written.len() {
        let e = event(&mut watcher).await;
        // An immediate promotion: a new grade is published at once.
        assert_eq!(e.event, "grade.published", "{e:?}");
        assert!(e.seq > last, "seq {} after {last}", e.seq);
        last = e.seq;
        let data = e.data.expect("the grade");
        seen.push(data["id"].as_i64().expect("id"));
    }
    assert_eq!(seen, written);

    // A new watcher on B replaying with `since` gets the same events from
    // the shared log, no gap, no duplicate.
    let mut late = b.admin().await;
    late.call("watch", json!({"promotion": "P", "since": from}))
        .await
        .expect("watching again on B");
    let mut replayed = Vec::new();
    while replayed.len() < written.len() {
        let e = event(&mut late).await;
        replayed.push(e.data.expect("the grade")["id"].as_i64().expect("id"));
    }
    assert_eq!(replayed, written);
}
