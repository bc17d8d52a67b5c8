//! `gradebook backup`: a consistent copy of a running server's database,
//! taken while it writes, and restored as docs/deployment.md says.

use crate::cli_support;

use cli_support::{Serve, User};
use serde_json::json;

// Two threads: the writer task goes on while this one waits for the
// backup process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_restores_to_a_consistent_server() {
    let data = tempfile::tempdir().expect("tempdir");
    let p = Serve::new().data(data.path()).start();
    let mut c = p.admin().await;
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
    let id = s["id"].as_i64().expect("id");
    for i in 0..100 {
        c.call(
            "grade.add",
            json!({"student": id, "subject": "S", "value": i % 21}),
        )
        .await
        .expect("added");
    }
    // Writes go on, acknowledged one by one, while the backup runs.
    let writer = tokio::spawn(async move {
        let mut acked = 0u32;
        for i in 0..400 {
            c.call(
                "grade.add",
                json!({"student": id, "subject": "T", "value": i % 21}),
            )
            .await
            .expect("added");
            acked += 1;
        }
        acked
    });
    let user = User::new(&p);
    let file = user.home().join("copy.db");
    let file = file.to_str().expect("UTF-8 path");
    let data_dir = data.path().to_str().expect("UTF-8 path");
    // Once the writes are under way.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let out = user.run(&["--json", "backup", file, "--data", data_dir]);
    let report = out.json();
    assert_eq!(writer.await.expect("the writer ends"), 400);

    // The copy holds the 100 grades written before it began, and a
    // consistent share of the 400 written during it.
    let grades = report["grades"].as_i64().expect("grades");
    assert!((100..=500).contains(&grades), "{report}");
    assert_eq!(report["users"], 1);
    assert_eq!(report["students"], 1);
    // One change-log entry per write: the admin's account, the promotion,
    // the student, each grade.
    assert_eq!(report["changes"].as_i64(), Some(3 + grades), "{report}");

    // Never over an existing file.
    let again = user.run(&["backup", file, "--data", data_dir]);
    assert!(
        again.fails(1).contains("exists already"),
        "{}",
        again.stderr
    );

    // Restored in a new data directory, as docs/deployment.md says: the
    // server serves exactly the copy, and its change log verifies.
    drop(p);
    let restored = tempfile::tempdir().expect("tempdir");
    std::fs::copy(file, restored.path().join("gradebook.db")).expect("copies");
    let p = Serve::new()
        .data(restored.path())
        .admin_password(None)
        .start();
    let admin = User::admin(&p);
    let listed = admin
        .run(&["--json", "grade", "list", &id.to_string()])
        .json();
    let listed = listed["grades"].as_array().expect("grades").len() as i64;
    assert_eq!(listed, grades);
    let verified = admin.run(&["audit", "verify"]);
    assert!(verified.ok().contains("intact"), "{}", verified.stdout);
    // Written after the restore, the next ids follow the copy's.
    let mut c = p.admin().await;
    let g = c
        .call(
            "grade.add",
            json!({"student": id, "subject": "S", "value": 10}),
        )
        .await
        .expect("added");
    assert!(g["id"].as_i64().expect("id") > grades, "{g}");
}

#[test]
fn a_backup_needs_a_database() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(cli_support::BIN)
        .args(["backup", "x.db", "--data"])
        .arg(home.path())
        .current_dir(home.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(!home.path().join("x.db").exists());
}
