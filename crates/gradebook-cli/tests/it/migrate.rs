//! `gradebook migrate --to postgres://…`: a stopped server's SQLite data,
//! copied into an empty PostgreSQL database (on the throwaway server that
//! `scripts/test` starts), then served from it with the same ids,
//! sessions, passwords and change log.

use crate::cli_support;

use cli_support::{ADMIN_PASSWORD, Serve, User};
use gradebook_store_postgres::testing::{admin_url, fresh_database};
use serde_json::json;

#[tokio::test]
async fn sqlite_data_moves_to_postgres_whole_and_only_into_an_empty_database() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut p = Serve::new().data(data.path()).start();
    let mut c = p.admin().await;
    c.call(
        "user.create",
        json!({"username": "prof", "password": "teacher-password", "role": "teacher"}),
    )
    .await
    .expect("teacher");
    c.call("promotion.create", json!({"name": "RT2", "year": 2026}))
        .await
        .expect("promotion");
    c.call(
        "promotion.grant",
        json!({"name": "RT2", "username": "prof"}),
    )
    .await
    .expect("grant");
    let s = c
        .call(
            "student.add",
            json!({"promotion": "RT2", "first_name": "Alice", "last_name": "Dupont", "number": "A1"}),
        )
        .await
        .expect("student");
    let student = s["id"].as_i64().expect("id");
    let mut last_grade = 0;
    for v in [12.5, 8.0, 17.0] {
        let g = c
            .call(
                "grade.add",
                json!({"student": student, "subject": "Networks", "value": v, "coefficient": 2}),
            )
            .await
            .expect("grade");
        last_grade = g["id"].as_i64().expect("id");
    }
    // The highest grade id is then given no more, even deleted.
    c.call("grade.delete", json!({"id": last_grade}))
        .await
        .expect("deleted");
    let before = c
        .call("student.show", json!({"id": student}))
        .await
        .expect("shown");
    let mut prof = p.client().await;
    let session = prof
        .login("prof", "teacher-password")
        .await
        .expect("prof logs in");
    drop((c, prof));
    assert_eq!(p.terminate().code(), Some(0));

    let url = fresh_database(&admin_url()).await;
    let user = User::new(&p);
    let data_dir = data.path().to_str().expect("UTF-8 path");
    let out = user.run(&["migrate", "--data", data_dir, "--to", &url]);
    let said = out.ok();
    assert!(said.contains("verified"), "{said}");
    assert!(said.contains("2 users"), "{said}");
    assert!(said.contains("2 grades"), "{said}");
    assert!(!said.contains(&url), "the URL is not repeated: {said}");

    // A second copy into the same (now full) database is refused.
    let again = user.run(&["migrate", "--data", data_dir, "--to", &url]);
    assert!(again.fails(1).contains("not empty"), "{}", again.stderr);

    // A server on PostgreSQL serves the same data.
    drop(p);
    let p = Serve::new()
        .args(&["--database", &url])
        .admin_password(None)
        .start();
    let mut c = p.client().await;
    c.login("admin", ADMIN_PASSWORD)
        .await
        .expect("the admin's password came along");
    let after = c
        .call("student.show", json!({"id": student}))
        .await
        .expect("shown");
    assert_eq!(after, before);
    // prof's session came along too.
    let who = c
        .call_with_token(&session.token, "auth.whoami", json!({}))
        .await
        .expect("the session is valid");
    assert_eq!(who["username"], "prof", "{who}");
    let verified = c.call("audit.verify", json!({})).await.expect("verify");
    assert_eq!(verified["intact"], json!(true), "{verified}");
    let g = c
        .call(
            "grade.add",
            json!({"student": student, "subject": "Networks", "value": 10}),
        )
        .await
        .expect("grade");
    assert!(g["id"].as_i64().expect("id") > last_grade, "{g}");
}

#[test]
fn migrate_wants_a_postgres_url() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(cli_support::BIN)
        .args(["migrate", "--to", "mysql://x/y", "--data"])
        .arg(home.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("postgres://"), "{stderr}");
}
