//! Publication (protocol §9) over the wire: under `manual`, a student's
//! every reply is what it would be if the unpublished grades did not
//! exist; teachers see everything with the `published` flag; publishing
//! makes grades count for the student at once.

use crate::common;

use common::{TestServer, err, ok};
use gradebook_client::Client;
use serde_json::{Value, json};

const PASSWORD: &str = "password-of-the-tests";

/// Every reply a student can get about their own record and promotion.
async fn student_view(c: &mut Client, student: i64, promotion: &str) -> Vec<Value> {
    let mut replies = Vec::new();
    for (cmd, args) in [
        ("student.show", json!({"id": student})),
        ("student.average", json!({"id": student})),
        ("student.explain", json!({"id": student})),
        ("grade.list", json!({"student": student})),
        ("promotion.average", json!({"name": promotion})),
        ("promotion.subjects", json!({"name": promotion})),
    ] {
        replies.push(ok(c, cmd, args).await);
    }
    replies
}

/// Takes the ids and promotion names out, which differ between the two
/// promotions compared.
fn without_ids(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            for key in ["id", "grade", "student", "promotion", "name"] {
                map.remove(key);
            }
            for value in map.values_mut() {
                *value = without_ids(value.take());
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = without_ids(item.take());
            }
        }
        _ => {}
    }
    v
}

/// Adds two students to `promotion` and a student account for the first;
/// their ids.
async fn students(admin: &mut Client, promotion: &str, account: &str) -> (i64, i64) {
    let add = |first: &str| json!({"promotion": promotion, "first_name": first, "last_name": "L"});
    let a = ok(admin, "student.add", add("A")).await["id"]
        .as_i64()
        .expect("id");
    let b = ok(admin, "student.add", add("B")).await["id"]
        .as_i64()
        .expect("id");
    ok(
        admin,
        "user.create",
        json!({"username": account, "password": PASSWORD, "role": "student", "student": a}),
    )
    .await;
    (a, b)
}

#[tokio::test]
async fn a_student_reads_as_if_unpublished_grades_did_not_exist() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    // `Hidden` has published and unpublished grades; `Twin` has only the
    // published ones, written in the same order.
    let p = ok(
        &mut admin,
        "promotion.create",
        json!({"name": "Hidden", "publication": "manual"}),
    )
    .await;
    assert_eq!(
        (p["publication"].as_str(), p["locked"].as_bool()),
        (Some("manual"), Some(false))
    );
    ok(&mut admin, "promotion.create", json!({"name": "Twin"})).await;
    let (me, mate) = students(&mut admin, "Hidden", "me").await;
    let (twin_me, twin_mate) = students(&mut admin, "Twin", "twin").await;
    let grades = [
        // (whose, subject, value, coefficient, label, published)
        (0, "Networks", json!(14.5), 2, "Midterm", true),
        (0, "Networks", json!(4), 1, "Final", false),
        (0, "Maths", json!("ABS"), 1, "Quiz", false),
        (0, "Maths", json!(11), 3, "Exam", true),
        (1, "Networks", json!(19), 1, "Final", false),
        (1, "Physics", json!(9.25), 1, "Exam", true),
    ];
    let mut hidden_ids = Vec::new();
    for (whose, subject, value, coefficient, label, published) in grades.clone() {
        let student = [me, mate][whose];
        let g = ok(
            &mut admin,
            "grade.add",
            json!({"student": student, "subject": subject, "value": value, "coefficient": coefficient, "label": label}),
        )
        .await;
        assert_eq!(g["published"], false, "manual: hidden when written");
        if published {
            ok(
                &mut admin,
                "grade.publish",
                json!({"promotion": "Hidden", "ids": [g["id"]]}),
            )
            .await;
        } else {
            hidden_ids.push(g["id"].as_i64().expect("id"));
        }
        if published {
            let twin = [twin_me, twin_mate][whose];
            let g = ok(
                &mut admin,
                "grade.add",
                json!({"student": twin, "subject": subject, "value": value, "coefficient": coefficient, "label": label}),
            )
            .await;
            assert_eq!(g["published"], true, "immediate: visible at once");
        }
    }

    let mut student = server.connect().await;
    student.login("me", PASSWORD).await.expect("logs in");
    let mut twin = server.connect().await;
    twin.login("twin", PASSWORD).await.expect("logs in");
    let seen = student_view(&mut student, me, "Hidden").await;
    let expected = student_view(&mut twin, twin_me, "Twin").await;
    for (seen, expected) in seen.iter().zip(&expected) {
        assert_eq!(without_ids(seen.clone()), without_ids(expected.clone()));
    }
    let shown = seen[0].to_string();
    for id in &hidden_ids {
        assert!(
            !shown.contains(&format!("\"id\":{id},")),
            "grade {id} leaked: {shown}"
        );
    }
    // The teacher's view has every grade, each with its flag.
    let all = ok(&mut admin, "grade.list", json!({"student": me})).await;
    let flags: Vec<bool> = all["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .map(|g| g["published"].as_bool().expect("flag"))
        .collect();
    assert_eq!(flags, [true, false, false, true]);
    let teacher_avg = ok(&mut admin, "student.average", json!({"id": me})).await;
    assert_ne!(teacher_avg["average"], seen[1]["average"]);

    // Publishing the Final grades makes them count for the student at once.
    let changed = ok(
        &mut admin,
        "grade.publish",
        json!({"promotion": "Hidden", "subject": "Networks", "label": "Final"}),
    )
    .await;
    assert_eq!(changed["changed"], 2);
    let now = ok(&mut student, "student.average", json!({"id": me})).await;
    let teacher_now = ok(&mut admin, "student.average", json!({"id": me})).await;
    assert_ne!(now["average"], seen[1]["average"]);
    // The quiz (ABS, unpublished) still does not count for the student.
    assert_ne!(now["average"], teacher_now["average"]);
    let changed = ok(&mut admin, "grade.publish", json!({"promotion": "Hidden"})).await;
    assert_eq!(changed["changed"], 1);
    let now = ok(&mut student, "student.average", json!({"id": me})).await;
    let teacher_now = ok(&mut admin, "student.average", json!({"id": me})).await;
    assert_eq!(now, teacher_now);

    // Unpublishing hides again; a bad selection is refused.
    let changed = ok(
        &mut admin,
        "grade.unpublish",
        json!({"promotion": "Hidden", "subject": "Maths"}),
    )
    .await;
    assert_eq!(changed["changed"], 2);
    let listed = ok(&mut student, "grade.list", json!({"student": me})).await;
    assert_eq!(listed["grades"].as_array().expect("grades").len(), 2);
    err(
        &mut admin,
        "grade.publish",
        json!({"promotion": "Hidden", "ids": [999_999]}),
        "not_found",
    )
    .await;
    err(
        &mut admin,
        "grade.publish",
        json!({"promotion": "Nowhere"}),
        "not_found",
    )
    .await;
    err(
        &mut admin,
        "promotion.update",
        json!({"name": "Hidden", "publication": "sometimes"}),
        "invalid_value",
    )
    .await;
    err(
        &mut admin,
        "promotion.create",
        json!({"name": "Bad", "publication": "later"}),
        "invalid_value",
    )
    .await;
    let p = ok(
        &mut admin,
        "promotion.update",
        json!({"name": "Hidden", "publication": "immediate", "year": 2027}),
    )
    .await;
    assert_eq!(
        (
            p["publication"].as_str(),
            p["year"].as_i64(),
            p["students"].as_u64()
        ),
        (Some("immediate"), Some(2027), Some(2))
    );
    let g = ok(
        &mut admin,
        "grade.add",
        json!({"student": me, "subject": "Maths", "value": 10}),
    )
    .await;
    assert_eq!(g["published"], true, "immediate again: visible at once");
}
