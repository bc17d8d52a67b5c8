//! History stays with what it is about: ids are never given twice, and
//! deletions leave their trace in the audit log (protocol §4).

use crate::common;

use common::{TestServer, err, ok};
use serde_json::{Value, json};

const TEACHER_PASSWORD: &str = "teacher-password-for-tests";

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("an id")
}

fn entries(v: &Value) -> &Vec<Value> {
    v["entries"].as_array().expect("entries")
}

/// The case that was reported: the newest student of one promotion, with a
/// confidential grade, is removed; a teacher adds a student to their own
/// promotion. The new student must not inherit the old one's id, nor show
/// its history.
#[tokio::test]
async fn a_new_student_never_shows_a_removed_students_history() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "Jury"})).await;
    let old = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "Jury", "first_name": "Ana", "last_name": "Old"}),
    )
    .await;
    let grade = ok(
        &mut admin,
        "grade.add",
        json!({"student": id(&old), "subject": "Confidentiel", "value": 3.5,
               "label": "conseil de discipline"}),
    )
    .await;
    ok(&mut admin, "student.remove", json!({"id": id(&old)})).await;

    ok(
        &mut admin,
        "user.create",
        json!({"username": "prof", "password": TEACHER_PASSWORD, "role": "teacher"}),
    )
    .await;
    ok(&mut admin, "promotion.create", json!({"name": "Mine"})).await;
    ok(
        &mut admin,
        "promotion.grant",
        json!({"name": "Mine", "username": "prof"}),
    )
    .await;
    let mut teacher = server.connect().await;
    teacher
        .login("prof", TEACHER_PASSWORD)
        .await
        .expect("teacher logs in");
    let new = ok(
        &mut teacher,
        "student.add",
        json!({"promotion": "Mine", "first_name": "Bob", "last_name": "New"}),
    )
    .await;
    assert_ne!(id(&new), id(&old), "a removed student's id was given again");
    let history = ok(&mut teacher, "audit.list", json!({"student": id(&new)})).await;
    assert!(
        entries(&history).is_empty(),
        "the new student shows someone else's history: {history}"
    );
    // Nor does a new grade take the old grade's id.
    let g = ok(
        &mut teacher,
        "grade.add",
        json!({"student": id(&new), "subject": "Networks", "value": 12}),
    )
    .await;
    assert_ne!(id(&g), id(&grade));
}

/// Promotions and users: deleting the newest and creating another gives a
/// new id, also across a restart (the counter is stored, not recomputed).
#[tokio::test]
async fn ids_are_not_reused_after_a_restart() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "P"})).await;
    let a = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "A", "last_name": "A"}),
    )
    .await;
    let g = ok(
        &mut admin,
        "grade.add",
        json!({"student": id(&a), "subject": "S", "value": 10}),
    )
    .await;
    ok(&mut admin, "grade.delete", json!({"id": id(&g)})).await;
    ok(&mut admin, "student.remove", json!({"id": id(&a)})).await;
    drop(admin);
    let dir = server.stop().await;

    let server =
        TestServer::start_in(dir, gradebook_server::TlsMode::Off, Default::default()).await;
    let mut admin = server.admin().await;
    let b = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "B", "last_name": "B"}),
    )
    .await;
    assert!(id(&b) > id(&a), "student id {} given again", id(&a));
    let h = ok(
        &mut admin,
        "grade.add",
        json!({"student": id(&b), "subject": "S", "value": 10}),
    )
    .await;
    assert!(id(&h) > id(&g), "grade id {} given again", id(&g));
}

/// `student.remove` and `promotion.delete force` record the removal of
/// every grade they take with them, with the grade as it was.
#[tokio::test]
async fn removing_a_student_or_a_promotion_audits_each_grade() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "P"})).await;
    let s = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "A", "last_name": "A"}),
    )
    .await;
    let t = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "B", "last_name": "B"}),
    )
    .await;
    let mut grades = Vec::new();
    for (student, value) in [(&s, 11), (&s, 12), (&t, 13)] {
        let g = ok(
            &mut admin,
            "grade.add",
            json!({"student": id(student), "subject": "S", "value": value}),
        )
        .await;
        grades.push(id(&g));
    }

    ok(&mut admin, "student.remove", json!({"id": id(&s)})).await;
    let log = ok(&mut admin, "audit.list", json!({"student": id(&s)})).await;
    let removed: Vec<(i64, &str, f64)> = entries(&log)
        .iter()
        .filter(|e| e["new"].is_null())
        .map(|e| {
            (
                e["grade"].as_i64().expect("grade id"),
                e["action"].as_str().expect("action"),
                e["old"]["value"].as_f64().expect("old value"),
            )
        })
        .collect();
    assert_eq!(
        removed,
        [
            (grades[1], "student.remove", 12.0),
            (grades[0], "student.remove", 11.0)
        ],
        "{log}"
    );
    // The removals are filed under the promotion too.
    let by_promotion = ok(
        &mut admin,
        "audit.list",
        json!({"promotion": "P", "student": id(&s)}),
    )
    .await;
    assert_eq!(entries(&by_promotion), entries(&log), "{by_promotion}");

    err(
        &mut admin,
        "promotion.delete",
        json!({"name": "P"}),
        "conflict",
    )
    .await;
    ok(
        &mut admin,
        "promotion.delete",
        json!({"name": "P", "force": true}),
    )
    .await;
    let log = ok(&mut admin, "audit.list", json!({"student": id(&t)})).await;
    let last = &entries(&log)[0];
    assert_eq!(last["action"], "promotion.delete", "{log}");
    assert_eq!(last["grade"], grades[2]);
    assert_eq!(last["old"]["value"], json!(13.0));
    assert!(last["new"].is_null());
}

/// The change log is hash-chained: `audit.verify` finds an entry edited in
/// the database file behind the server's back, and names it.
#[tokio::test]
async fn an_entry_edited_behind_the_servers_back_is_found() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "P"})).await;
    let a = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "A", "last_name": "A"}),
    )
    .await;
    for value in [8, 9, 10] {
        ok(
            &mut admin,
            "grade.add",
            json!({"student": id(&a), "subject": "S", "value": value}),
        )
        .await;
    }
    let intact = ok(&mut admin, "audit.verify", json!({})).await;
    assert_eq!(intact["intact"], json!(true), "{intact}");
    assert_eq!(intact["problem"], Value::Null);
    let last = intact["last_seq"].as_i64().expect("a seq");
    assert!(last >= 5, "{intact}");
    drop(admin);
    let dir = server.stop().await;

    // A grade of 8 rewritten as 18 in its log entry.
    let edited = common::behind_the_servers_back(
        dir.path(),
        "SELECT seq FROM changes WHERE kind = 'grade' AND seq > $1 ORDER BY seq LIMIT 1",
        0,
    )
    .await
    .expect("a grade entry");
    common::behind_the_servers_back(
        dir.path(),
        "UPDATE changes SET new = replace(new, '\"value\":8.0', '\"value\":18.0') WHERE seq = $1",
        edited,
    )
    .await;

    let server =
        TestServer::start_in(dir, gradebook_server::TlsMode::Off, Default::default()).await;
    let mut admin = server.admin().await;
    let broken = ok(&mut admin, "audit.verify", json!({})).await;
    assert_eq!(broken["intact"], json!(false), "{broken}");
    assert_eq!(broken["problem"]["seq"], json!(edited), "{broken}");
    // Only the admin may run the check.
    ok(
        &mut admin,
        "user.create",
        json!({"username": "prof", "password": TEACHER_PASSWORD, "role": "teacher"}),
    )
    .await;
    let mut t = server.connect().await;
    t.login("prof", TEACHER_PASSWORD).await.expect("logs in");
    err(&mut t, "audit.verify", json!({}), "forbidden").await;
}
