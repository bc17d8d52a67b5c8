//! Imports done by the server: lines sent in several messages, checked
//! and written in one transaction, all or nothing (`import.*`).

use crate::common;

use common::{TestServer, assert_client_closed, err, ok};
use gradebook_client::{Client, ClientError};
use gradebook_server::{Limits, TlsMode};
use serde_json::{Value, json};

/// Opens an import; returns its id.
async fn begin(c: &mut Client, kind: &str, promotion: &str, columns: &[&str]) -> i64 {
    let v = ok(
        c,
        "import.begin",
        json!({"kind": kind, "promotion": promotion, "columns": columns}),
    )
    .await;
    v["import"].as_i64().expect("import id")
}

/// The rows of `lines`, numbered from line 2 (the header is line 1).
fn rows(lines: &[&[&str]]) -> Value {
    Value::Array(
        lines
            .iter()
            .enumerate()
            .map(|(i, cells)| json!({"line": i + 2, "cells": cells}))
            .collect(),
    )
}

async fn grade_count(c: &mut Client, promotion: &str) -> usize {
    let students = ok(c, "student.list", json!({"promotion": promotion})).await;
    let mut n = 0;
    for s in students["students"].as_array().expect("students") {
        let g = ok(c, "grade.list", json!({"student": s["id"]})).await;
        n += g["grades"].as_array().expect("grades").len();
    }
    n
}

/// Calls and expects an error; returns it whole (with its `lines`).
async fn refused(c: &mut Client, cmd: &str, args: Value) -> gradebook_proto::WireError {
    match c.call(cmd, args.clone()).await {
        Err(ClientError::Server(e)) => e,
        other => panic!("{cmd} {args}: expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn students_then_grades_in_several_messages_and_a_second_import_adds_nothing() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    ok(&mut c, "promotion.create", json!({"name": "RT1"})).await;

    let students: &[&[&str]] = &[
        &["Lefèvre", "Élodie", "22001"],
        &["Martin", "Alice", ""],
        &["Çelik", "Deniz", "22003"],
    ];
    for round in 0..2 {
        let id = begin(&mut c, "students", "RT1", &["Nom", "Prénom", "Numéro"]).await;
        ok(
            &mut c,
            "import.rows",
            json!({"import": id, "rows": rows(students)}),
        )
        .await;
        let report = ok(&mut c, "import.commit", json!({"import": id})).await;
        if round == 0 {
            assert_eq!(report["added"], 3, "{report}");
        } else {
            assert_eq!(report["added"], 0, "{report}");
            assert_eq!(report["present"], 3, "{report}");
        }
    }

    // Grades in three messages; names matched whatever their case or
    // Unicode form; an empty value is no grade yet.
    let columns = ["Nom", "Prénom", "Matière", "Note", "Coef", "Évaluation"];
    let lines: Vec<Vec<String>> = (0..300)
        .map(|i| {
            let (last, first) = match i % 3 {
                0 => ("LEFÈVRE", "Ele\u{301}odie"),
                1 => ("martin", "alice"),
                _ => ("Çelik", "Deniz"),
            };
            let value = if i == 299 {
                String::new()
            } else {
                format!("{},5", i % 20)
            };
            vec![
                last.to_owned(),
                first.replace("Ele\u{301}", "E\u{301}l"),
                "Réseaux".to_owned(),
                value,
                "2".to_owned(),
                format!("TP{i}"),
            ]
        })
        .collect();
    for round in 0..2 {
        let id = begin(&mut c, "grades", "RT1", &columns).await;
        for (k, chunk) in lines.chunks(100).enumerate() {
            let batch: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(j, cells)| json!({"line": 2 + k * 100 + j, "cells": cells}))
                .collect();
            let r = ok(&mut c, "import.rows", json!({"import": id, "rows": batch})).await;
            assert_eq!(r["rows"], 100 * (k + 1));
        }
        let report = ok(&mut c, "import.commit", json!({"import": id})).await;
        assert_eq!(report["empty"], 1, "{report}");
        if round == 0 {
            assert_eq!(report["added"], 299, "{report}");
        } else {
            assert_eq!(report["added"], 0, "{report}");
            assert_eq!(report["present"], 299, "{report}");
        }
    }
    assert_eq!(grade_count(&mut c, "RT1").await, 299);
    // Each imported grade is in the audit log.
    let log = ok(
        &mut c,
        "audit.list",
        json!({"promotion": "RT1", "limit": 1000}),
    )
    .await;
    let added = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "grade.add")
        .count();
    assert_eq!(added, 299);
}

#[tokio::test]
async fn an_unknown_column_is_refused_unless_ignored() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    ok(&mut c, "promotion.create", json!({"name": "P"})).await;
    let columns = ["nom", "prénom", "matière", "note", "Coefficient UE"];
    let message = err(
        &mut c,
        "import.begin",
        json!({"kind": "grades", "promotion": "P", "columns": columns}),
        "invalid_value",
    )
    .await;
    assert!(message.contains("'Coefficient UE'"), "{message}");
    assert!(message.contains("coefficient (coef)"), "{message}");
    let v = ok(
        &mut c,
        "import.begin",
        json!({"kind": "grades", "promotion": "P", "columns": columns,
               "ignore": ["Coefficient UE"]}),
    )
    .await;
    assert_eq!(
        v["columns"],
        json!(["last_name", "first_name", "subject", "value", null])
    );
}

#[tokio::test]
async fn one_bad_line_changes_nothing_and_every_bad_line_is_named() {
    let server = TestServer::start().await;
    let mut c = server.admin().await;
    ok(&mut c, "promotion.create", json!({"name": "P"})).await;
    ok(
        &mut c,
        "student.add",
        json!({"promotion": "P", "first_name": "Ana", "last_name": "A", "number": "1"}),
    )
    .await;
    let lines: &[&[&str]] = &[
        &["1", "Maths", "12"],
        &["1", "Maths", "5,2S"],
        &["9", "Maths", "12"],
        &["1", "Maths", "19.999"],
        &["1", "Physics", "ABS"],
    ];
    let id = begin(&mut c, "grades", "P", &["number", "subject", "value"]).await;
    ok(
        &mut c,
        "import.rows",
        json!({"import": id, "rows": rows(lines)}),
    )
    .await;

    // A dry run lists the bad lines and keeps the import open.
    let e = refused(
        &mut c,
        "import.commit",
        json!({"import": id, "dry_run": true}),
    )
    .await;
    assert_eq!(e.code.as_str(), "invalid_value");
    let bad: Vec<u64> = e.lines.iter().map(|l| l.line).collect();
    assert_eq!(bad, [3, 4, 5], "{e:?}");
    assert!(e.lines[0].message.contains("5,2S"), "{e:?}");
    assert!(
        e.lines[1].message.contains("no student with number 9"),
        "{e:?}"
    );
    assert!(e.message.contains("3 bad lines of 5"), "{}", e.message);

    // Skipping them writes the good ones and reports the others.
    let report = ok(
        &mut c,
        "import.commit",
        json!({"import": id, "dry_run": true, "skip_bad": true}),
    )
    .await;
    assert_eq!(report["added"], 2);
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        grade_count(&mut c, "P").await,
        0,
        "a dry run writes nothing"
    );

    // A real commit with bad lines writes nothing and drops the import.
    let e = refused(&mut c, "import.commit", json!({"import": id})).await;
    assert_eq!(e.lines.len(), 3);
    assert_eq!(grade_count(&mut c, "P").await, 0);
    err(&mut c, "import.commit", json!({"import": id}), "not_found").await;

    let id = begin(&mut c, "grades", "P", &["number", "subject", "value"]).await;
    ok(
        &mut c,
        "import.rows",
        json!({"import": id, "rows": rows(lines)}),
    )
    .await;
    let report = ok(
        &mut c,
        "import.commit",
        json!({"import": id, "skip_bad": true}),
    )
    .await;
    assert_eq!(report["added"], 2);
    assert_eq!(report["skipped"].as_array().expect("skipped").len(), 3);
    assert_eq!(grade_count(&mut c, "P").await, 2);
}

#[tokio::test]
async fn memory_is_bounded_and_an_import_is_the_sessions_own() {
    let limits = Limits {
        max_import_bytes: 10_000,
        ..Limits::default()
    };
    let server = TestServer::start_with(TlsMode::Off, limits).await;
    let mut c = server.admin().await;
    ok(&mut c, "promotion.create", json!({"name": "P"})).await;
    let id = begin(&mut c, "students", "P", &["nom", "prénom"]).await;

    // Another session of the same user cannot reach it.
    let mut other = server.admin().await;
    err(
        &mut other,
        "import.rows",
        json!({"import": id, "rows": rows(&[&["A", "B"]])}),
        "not_found",
    )
    .await;
    err(
        &mut other,
        "import.commit",
        json!({"import": id}),
        "not_found",
    )
    .await;

    let many: Vec<Value> = (0..200)
        .map(|i| json!({"line": i + 2, "cells": ["Some last name", format!("First {i}")]}))
        .collect();
    let message = err(
        &mut c,
        "import.rows",
        json!({"import": id, "rows": many}),
        "invalid_value",
    )
    .await;
    assert!(message.contains("over 10000 bytes"), "{message}");
    err(&mut c, "import.commit", json!({"import": id}), "not_found").await;
    let students = ok(&mut c, "student.list", json!({"promotion": "P"})).await;
    assert!(
        students["students"]
            .as_array()
            .expect("students")
            .is_empty()
    );

    // A new import replaces the session's previous one; abort drops it.
    let first = begin(&mut c, "students", "P", &["nom", "prénom"]).await;
    let second = begin(&mut c, "students", "P", &["nom", "prénom"]).await;
    assert_ne!(first, second);
    err(
        &mut c,
        "import.abort",
        json!({"import": first}),
        "not_found",
    )
    .await;
    ok(&mut c, "import.abort", json!({"import": second})).await;
    err(
        &mut c,
        "import.commit",
        json!({"import": second}),
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_teacher_imports_only_into_their_promotions() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for p in ["Mine", "Theirs"] {
        ok(&mut admin, "promotion.create", json!({"name": p})).await;
    }
    let password = "teacher-password-for-tests";
    ok(
        &mut admin,
        "user.create",
        json!({"username": "prof", "password": password, "role": "teacher"}),
    )
    .await;
    ok(
        &mut admin,
        "promotion.grant",
        json!({"name": "Mine", "username": "prof"}),
    )
    .await;
    let mut t = server.connect().await;
    t.login("prof", password).await.expect("logs in");
    err(
        &mut t,
        "import.begin",
        json!({"kind": "students", "promotion": "Theirs", "columns": ["nom", "prénom"]}),
        "forbidden",
    )
    .await;
    let id = begin(&mut t, "students", "Mine", &["nom", "prénom"]).await;
    ok(
        &mut t,
        "import.rows",
        json!({"import": id, "rows": rows(&[&["A", "B"]])}),
    )
    .await;
    // The grant is taken away before the commit: refused, nothing written.
    ok(
        &mut admin,
        "promotion.revoke",
        json!({"name": "Mine", "username": "prof"}),
    )
    .await;
    err(&mut t, "import.commit", json!({"import": id}), "forbidden").await;
    let students = ok(&mut admin, "student.list", json!({"promotion": "Mine"})).await;
    assert!(
        students["students"]
            .as_array()
            .expect("students")
            .is_empty()
    );
}

/// An import left without lines or commit for the idle timeout is dropped,
/// even when its session lives on; new lines start the idle time again.
#[tokio::test]
async fn an_abandoned_import_is_dropped() {
    let idle = Limits::default().idle_timeout;
    let second = std::time::Duration::from_secs(1);
    let server = TestServer::start_with_clock(Limits::default()).await;
    let (mut c, token) = server.admin_session().await;
    ok(&mut c, "promotion.create", json!({"name": "P"})).await;
    let id = begin(&mut c, "students", "P", &["nom", "prénom"]).await;
    let rows_of = |name: &str| json!({"import": id, "rows": rows(&[&[name, "B"]])});
    server.advance(idle - second);
    // Still open; the session's other connection keeps it alive.
    let mut other = server.connect().await;
    other
        .call_with_token(&token, "import.rows", rows_of("A"))
        .await
        .expect("still open");
    server.advance(idle);
    // The idle connections are gone too; the session is not.
    assert_client_closed(&mut c).await;
    assert_client_closed(&mut other).await;
    let mut again = server.connect().await;
    let e = again
        .call_with_token(&token, "import.rows", rows_of("C"))
        .await
        .expect_err("dropped");
    assert!(e.to_string().contains("not_found"), "{e}");
}
