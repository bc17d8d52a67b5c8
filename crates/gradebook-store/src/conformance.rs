//! The conformance suite (feature `conformance`): what every backend must
//! do, checked through the [`Store`] trait only, so that the SQLite and
//! PostgreSQL backends are seen to behave alike: the same errors and
//! client-facing messages, the same order of lists, the same change-log
//! entries, the same at-most-once UDP requests.
//!
//! Each check is an async function that takes a fresh, empty store and
//! closes it at the end. A backend runs them all with
//! [`conformance_tests!`](crate::conformance_tests), given a function that
//! makes a fresh store:
//!
//! ```ignore
//! async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) { … }
//! gradebook_store::conformance_tests!(fresh);
//! ```

// Test code: a failed expectation is the point of a panic here.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use gradebook_core::{Coefficient, GradeValue, Promotion, Publication, Role, User};

use crate::{
    AuditFilter, Change, ChangeRecord, Diff, Fits, Follower, GradePatch, GradeSelection,
    GrantRecord, NewGrade, NewStudent, PromotionPatch, RequestKey, Snapshot, Store, StoreError,
    StudentPatch, WriteContext,
};

/// Declares one `#[tokio::test]` per check of [`crate::conformance`], each
/// running it on the store that `$fresh().await` returns as
/// `(guard, Arc<dyn Store>)` (the guard, a temporary directory or the
/// like, is kept alive until the check ends). The calling crate needs
/// `tokio` with its `macros` and `rt` features.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@each $fresh;
            users_and_credentials,
            sessions,
            promotions,
            grants,
            students,
            grades,
            imports_are_all_or_nothing,
            the_follower_gets_a_snapshot_then_every_batch_in_order,
            audit_lists_grade_changes_newest_first,
            the_chain_of_an_intact_log_checks_out,
            a_request_key_is_recorded_once,
            a_reply_that_does_not_fit_changes_nothing,
            ids_are_never_reused,
            login_failures_are_counted_in_the_store,
            publication_and_locking
        );
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $check() {
                let (_guard, store) = $fresh().await;
                $crate::conformance::$check(store).await;
            }
        )*
    };
}

/// The context of a write by `admin` at time 1.
fn ctx() -> WriteContext<'static> {
    WriteContext::new("admin", 1)
}

fn user(name: &str, role: Role) -> User {
    User {
        username: name.into(),
        role,
        student: None,
    }
}

fn new_student(first: &str, number: Option<&str>) -> NewStudent {
    NewStudent {
        first_name: first.into(),
        last_name: "Doe".into(),
        number: number.map(str::to_owned),
        email: None,
    }
}

/// A grade value: `ABS`, `EXC`, `ATT` or a number of points.
fn value(text: &str) -> GradeValue {
    GradeValue::parse_mark(text).unwrap_or_else(|| {
        let points: f64 = text.parse().unwrap();
        GradeValue::from_code((points * 100.0).round() as i64).unwrap()
    })
}

/// The context of a write for UDP request `id` of `session`.
fn udp<'a>(session: &'a [u8], id: &'a str, fits: &'a Fits) -> WriteContext<'a> {
    WriteContext {
        by: "admin",
        at: 10,
        queued: None,
        request: Some(RequestKey { session, id, fits }),
    }
}

fn new_grade(student: i64, points: &str) -> NewGrade {
    NewGrade {
        student,
        subject: "Maths".into(),
        value: value(points),
        coefficient: Coefficient::default(),
        label: None,
    }
}

/// The message of a `NotFound`, or a panic.
fn not_found<T: std::fmt::Debug>(r: crate::Result<T>) -> String {
    match r {
        Err(StoreError::NotFound(m)) => m,
        other => panic!("expected not found, got {other:?}"),
    }
}

/// The message of a `Conflict`, or a panic.
fn conflict<T: std::fmt::Debug>(r: crate::Result<T>) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// An admin, a promotion `P` and one student in it; the student's id.
async fn with_student(store: &dyn Store) -> i64 {
    store
        .user_create(&user("admin", Role::Admin), "hash", ctx())
        .await
        .unwrap();
    store
        .promotion_create(
            &Promotion {
                year: Some(2025),
                description: Some("first".into()),
                ..Promotion::new("P")
            },
            None,
            ctx(),
        )
        .await
        .unwrap();
    store
        .student_add("P", &new_student("Ann", Some("S1")), ctx())
        .await
        .unwrap()
        .id
}

/// A follower that keeps what it is given.
#[derive(Default)]
struct Recorder {
    snapshot: Mutex<Option<Snapshot>>,
    received: Mutex<Vec<ChangeRecord>>,
}

impl Follower for Recorder {
    fn load(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap() = Some(snapshot);
    }
    fn apply(&self, batch: &[ChangeRecord]) {
        self.received.lock().unwrap().extend_from_slice(batch);
    }
}

impl Recorder {
    fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().unwrap().clone().unwrap()
    }
    fn received(&self) -> Vec<ChangeRecord> {
        self.received.lock().unwrap().clone()
    }
    fn commands(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.command).collect()
    }
}

/// Accounts: creation, a name taken, credentials, the list by name,
/// password changes (which revoke sessions), deletion.
pub async fn users_and_credentials(store: Arc<dyn Store>) {
    assert_eq!(store.user_count().await.unwrap(), 0);
    let admin = store
        .user_create(&user("admin", Role::Admin), "hash", ctx())
        .await
        .unwrap();
    assert_eq!(admin, user("admin", Role::Admin));
    let taken = store
        .user_create(&user("admin", Role::Teacher), "other", ctx())
        .await;
    assert_eq!(conflict(taken), "a user named 'admin' already exists");
    for name in ["bob", "Alice", "alice"] {
        store
            .user_create(&user(name, Role::Teacher), "h", ctx())
            .await
            .unwrap();
    }
    assert_eq!(store.user_count().await.unwrap(), 4);
    // By name, byte by byte: capitals first.
    let names: Vec<String> = store
        .user_list()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["Alice", "admin", "alice", "bob"]);

    let creds = store.user_credentials("admin").await.unwrap().unwrap();
    assert_eq!(
        (creds.user.role, creds.password_hash.as_str()),
        (Role::Admin, "hash")
    );
    assert!(store.user_credentials("nobody").await.unwrap().is_none());

    // A student account must name a student that exists.
    let mut linked = user("stu", Role::Student);
    linked.student = Some(999);
    assert_eq!(
        not_found(store.user_create(&linked, "h", ctx()).await),
        "no student with id 999"
    );

    let bob = store.user_credentials("bob").await.unwrap().unwrap();
    store
        .session_create(b"bob's", bob.user_id, 1, 100)
        .await
        .unwrap();
    store.user_set_password("bob", "new", ctx()).await.unwrap();
    let bob = store.user_credentials("bob").await.unwrap().unwrap();
    assert_eq!(bob.password_hash, "new");
    assert!(
        store.session_get(b"bob's").await.unwrap().is_none(),
        "revoked"
    );
    assert_eq!(
        not_found(store.user_set_password("nobody", "x", ctx()).await),
        "no user named 'nobody'"
    );

    store
        .session_create(b"alice's", creds.user_id, 1, 100)
        .await
        .unwrap();
    store.user_delete("admin", ctx()).await.unwrap();
    assert!(store.user_credentials("admin").await.unwrap().is_none());
    assert!(
        store.session_get(b"alice's").await.unwrap().is_none(),
        "deleted with it"
    );
    assert_eq!(
        not_found(store.user_delete("admin", ctx()).await),
        "no user named 'admin'"
    );
    assert_eq!(store.user_count().await.unwrap(), 3);
    store.close().await;
}

/// Sessions: create, get, touch, delete, purge.
pub async fn sessions(store: Arc<dyn Store>) {
    store
        .user_create(&user("admin", Role::Admin), "hash", ctx())
        .await
        .unwrap();
    let id = store
        .user_credentials("admin")
        .await
        .unwrap()
        .unwrap()
        .user_id;
    store.session_create(b"one", id, 10, 1000).await.unwrap();
    store.session_create(b"two", id, 10, 1000).await.unwrap();
    store.session_create(b"old", id, 10, 50).await.unwrap();
    let s = store.session_get(b"one").await.unwrap().unwrap();
    assert_eq!(
        (
            s.user_id,
            s.user.username.as_str(),
            s.created_at,
            s.last_seen,
            s.expires_at
        ),
        (id, "admin", 10, 10, 1000)
    );
    assert!(store.session_get(b"none").await.unwrap().is_none());
    store.session_touch(b"one", 40).await.unwrap();
    assert_eq!(
        store.session_get(b"one").await.unwrap().unwrap().last_seen,
        40
    );
    // Touching or deleting a session that does not exist is no error.
    store.session_touch(b"none", 40).await.unwrap();
    store.session_delete(b"two", ctx()).await.unwrap();
    assert!(store.session_get(b"two").await.unwrap().is_none());
    store.session_delete(b"two", ctx()).await.unwrap();
    // At 60: "old" has expired; "one" was last seen at 40, not idle
    // before 30.
    assert_eq!(store.sessions_purge(60, 30).await.unwrap(), 1);
    assert!(store.session_get(b"old").await.unwrap().is_none());
    // Idle since before 41: "one" goes too.
    assert_eq!(store.sessions_purge(60, 41).await.unwrap(), 1);
    assert!(store.session_get(b"one").await.unwrap().is_none());
    store.close().await;
}

/// Promotions: creation, a name taken, deletion refused while it has
/// students, forced, and what is not found.
pub async fn promotions(store: Arc<dyn Store>) {
    let student = with_student(store.as_ref()).await;
    let p = store
        .promotion_create(&Promotion::new("Q"), None, ctx())
        .await
        .unwrap();
    assert_eq!((p.name.as_str(), p.year, p.students), ("Q", None, 0));
    assert_eq!(
        conflict(
            store
                .promotion_create(&Promotion::new("P"), None, ctx())
                .await
        ),
        "a promotion named 'P' already exists"
    );
    store.promotion_delete("Q", false, ctx()).await.unwrap();
    assert_eq!(
        not_found(store.promotion_delete("Q", false, ctx()).await),
        "no promotion named 'Q'"
    );
    store
        .grade_add(&new_grade(student, "12"), ctx())
        .await
        .unwrap();
    assert_eq!(
        conflict(store.promotion_delete("P", false, ctx()).await),
        "promotion 'P' has 1 student(s): remove them first, or pass force"
    );
    // A student account linked to one of its students stops even force.
    let mut linked = user("ann", Role::Student);
    linked.student = Some(student);
    store.user_create(&linked, "h", ctx()).await.unwrap();
    assert_eq!(
        conflict(store.promotion_delete("P", true, ctx()).await),
        "the account 'ann' is linked to this student: delete the account first"
    );
    store.user_delete("ann", ctx()).await.unwrap();

    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    store.promotion_delete("P", true, ctx()).await.unwrap();
    // The grade, the student, then the promotion, all under the command.
    let received = recorder.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.command == "promotion.delete"));
    assert!(matches!(&received[0].change, Change::Grade(d) if d.new.is_none()));
    assert!(matches!(&received[1].change, Change::Student(d) if d.new.is_none()));
    assert!(matches!(&received[2].change, Change::Promotion(d) if d.new.is_none()));
    assert_eq!(
        not_found(
            store
                .student_update(student, &StudentPatch::default(), ctx())
                .await
        ),
        format!("no student with id {student}")
    );
    store.close().await;
}

/// Grants: given (idempotent, logged once), taken back, and what is not
/// found.
pub async fn grants(store: Arc<dyn Store>) {
    with_student(store.as_ref()).await;
    store
        .user_create(&user("t", Role::Teacher), "h", ctx())
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    assert!(recorder.snapshot().grants.is_empty());
    store.promotion_grant("P", "t", ctx()).await.unwrap();
    store.promotion_grant("P", "t", ctx()).await.unwrap();
    store.promotion_revoke("P", "t", ctx()).await.unwrap();
    store.promotion_revoke("P", "t", ctx()).await.unwrap();
    store.promotion_grant("P", "t", ctx()).await.unwrap();
    assert_eq!(
        recorder.commands(),
        ["promotion.grant", "promotion.revoke", "promotion.grant"]
    );
    let teacher = store.user_credentials("t").await.unwrap().unwrap().user_id;
    let snapshot_promotion = {
        let again = Arc::new(Recorder::default());
        store.follow(again.clone()).await.unwrap();
        let s = again.snapshot();
        assert_eq!(s.grants.len(), 1);
        s.promotions[0].id
    };
    assert!(matches!(
        &recorder.received()[2].change,
        Change::Grant(Diff { old: None, new: Some(GrantRecord { promotion, user }) })
            if *promotion == snapshot_promotion && *user == teacher
    ));
    assert_eq!(
        not_found(store.promotion_grant("nope", "t", ctx()).await),
        "no promotion named 'nope'"
    );
    assert_eq!(
        not_found(store.promotion_grant("P", "nobody", ctx()).await),
        "no user named 'nobody'"
    );
    assert_eq!(
        not_found(store.promotion_revoke("P", "nobody", ctx()).await),
        "no user named 'nobody'"
    );
    store.close().await;
}

/// Students: added, a number taken, changed, moved, removed with their
/// grades, and what is not found.
pub async fn students(store: Arc<dyn Store>) {
    let ann = with_student(store.as_ref()).await;
    store
        .promotion_create(&Promotion::new("Q"), None, ctx())
        .await
        .unwrap();
    let bob = store
        .student_add("P", &new_student("Bob", Some("S2")), ctx())
        .await
        .unwrap();
    assert_eq!(
        (
            bob.first_name.as_str(),
            bob.number.as_deref(),
            bob.promotion.as_str()
        ),
        ("Bob", Some("S2"), "P")
    );
    assert!(bob.id > ann);
    assert_eq!(
        conflict(
            store
                .student_add("Q", &new_student("C", Some("S1")), ctx())
                .await
        ),
        "a student with number 'S1' already exists"
    );
    // Students without a number never conflict.
    store
        .student_add("P", &new_student("D", None), ctx())
        .await
        .unwrap();
    store
        .student_add("P", &new_student("E", None), ctx())
        .await
        .unwrap();
    assert_eq!(
        not_found(
            store
                .student_add("nope", &new_student("F", None), ctx())
                .await
        ),
        "no promotion named 'nope'"
    );

    let patch = StudentPatch {
        first_name: Some("Robert".into()),
        email: Some(Some("bob@example.org".into())),
        number: Some(None),
        promotion: Some("Q".into()),
        ..StudentPatch::default()
    };
    let moved = store.student_update(bob.id, &patch, ctx()).await.unwrap();
    assert_eq!(
        (
            moved.first_name.as_str(),
            moved.last_name.as_str(),
            moved.number,
            moved.email.as_deref(),
            moved.promotion.as_str()
        ),
        ("Robert", "Doe", None, Some("bob@example.org"), "Q")
    );
    let taken = StudentPatch {
        number: Some(Some("S1".into())),
        ..StudentPatch::default()
    };
    assert_eq!(
        conflict(store.student_update(bob.id, &taken, ctx()).await),
        "a student with number 'S1' already exists"
    );
    let nowhere = StudentPatch {
        promotion: Some("nope".into()),
        ..StudentPatch::default()
    };
    assert_eq!(
        not_found(store.student_update(bob.id, &nowhere, ctx()).await),
        "no promotion named 'nope'"
    );
    assert_eq!(
        not_found(
            store
                .student_update(9999, &StudentPatch::default(), ctx())
                .await
        ),
        "no student with id 9999"
    );

    store.grade_add(&new_grade(ann, "10"), ctx()).await.unwrap();
    store.grade_add(&new_grade(ann, "12"), ctx()).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    let snapshot = recorder.snapshot();
    assert_eq!(snapshot.students.len(), 4);
    let ids: Vec<i64> = snapshot.students.iter().map(|s| s.student.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "by id");
    assert_eq!(snapshot.grades.len(), 2);

    store.student_remove(ann, ctx()).await.unwrap();
    assert_eq!(
        recorder.commands(),
        ["student.remove", "student.remove", "student.remove"]
    );
    assert_eq!(
        not_found(store.student_remove(ann, ctx()).await),
        format!("no student with id {ann}")
    );
    assert_eq!(
        not_found(store.grade_add(&new_grade(ann, "1"), ctx()).await),
        format!("no student with id {ann}")
    );
    store.close().await;
}

/// Grades: added, changed, deleted, and what is not found.
pub async fn grades(store: Arc<dyn Store>) {
    let student = with_student(store.as_ref()).await;
    let mut new = new_grade(student, "12.25");
    new.coefficient = Coefficient::from_hundredths(150).unwrap();
    new.label = Some("test 1".into());
    let g = store.grade_add(&new, ctx()).await.unwrap();
    assert_eq!(
        (
            g.student,
            g.subject.as_str(),
            g.value,
            g.coefficient,
            g.label.as_deref()
        ),
        (student, "Maths", new.value, new.coefficient, Some("test 1"))
    );
    let marks = store
        .grade_add(&new_grade(student, "ABS"), ctx())
        .await
        .unwrap();
    assert!(marks.id > g.id);

    let patch = GradePatch {
        value: Some(value("20")),
        coefficient: Some(Coefficient::from_hundredths(200).unwrap()),
        subject: Some("Physics".into()),
        label: Some(None),
    };
    let changed = store.grade_update(g.id, &patch, ctx()).await.unwrap();
    assert_eq!(
        (
            changed.id,
            changed.subject.as_str(),
            changed.label.as_deref()
        ),
        (g.id, "Physics", None)
    );
    assert_eq!(changed.value, value("20"));
    // An empty patch changes nothing and still answers the grade.
    let same = store
        .grade_update(g.id, &GradePatch::default(), ctx())
        .await
        .unwrap();
    assert_eq!(same, changed);

    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    let snapshot = recorder.snapshot();
    assert_eq!(snapshot.grades, [changed.clone(), marks.clone()]);

    store.grade_delete(g.id, ctx()).await.unwrap();
    assert_eq!(
        not_found(store.grade_delete(g.id, ctx()).await),
        format!("no grade with id {}", g.id)
    );
    assert_eq!(
        not_found(store.grade_update(g.id, &patch, ctx()).await),
        format!("no grade with id {}", g.id)
    );
    assert_eq!(
        not_found(store.grade_add(&new_grade(9999, "1"), ctx()).await),
        "no student with id 9999"
    );
    let received = recorder.received();
    assert_eq!(received.len(), 1);
    assert!(matches!(
        &received[0].change,
        Change::Grade(Diff { old: Some(old), new: None }) if *old == changed
    ));
    store.close().await;
}

/// Imports: all or nothing, a conflicting line named.
pub async fn imports_are_all_or_nothing(store: Arc<dyn Store>) {
    let student = with_student(store.as_ref()).await;
    let lines = vec![
        (2, new_student("B", Some("S2"))),
        (3, new_student("C", Some("S1"))),
        (4, new_student("D", None)),
    ];
    assert_eq!(
        conflict(store.import_students("P", lines, ctx()).await),
        "line 3: a student with number 'S1' already exists"
    );
    let duplicate_in_file = vec![
        (2, new_student("B", Some("S2"))),
        (5, new_student("C", Some("S2"))),
    ];
    assert_eq!(
        conflict(store.import_students("P", duplicate_in_file, ctx()).await),
        "line 5: a student with number 'S2' already exists"
    );
    assert_eq!(
        not_found(store.import_students("nope", vec![], ctx()).await),
        "no promotion named 'nope'"
    );
    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    assert_eq!(recorder.snapshot().students.len(), 1, "nothing was added");

    let lines = vec![
        (2, new_student("B", Some("S2"))),
        (3, new_student("C", None)),
    ];
    assert_eq!(store.import_students("P", lines, ctx()).await.unwrap(), 2);
    assert_eq!(recorder.commands(), ["student.add", "student.add"]);

    let grades = vec![(2, new_grade(student, "10")), (3, new_grade(9999, "11"))];
    assert_eq!(
        conflict(store.import_grades(grades, ctx()).await),
        "line 3: student 9999 was removed during the import"
    );
    let grades = vec![(2, new_grade(student, "10")), (3, new_grade(student, "11"))];
    assert_eq!(store.import_grades(grades, ctx()).await.unwrap(), 2);
    assert_eq!(
        recorder.commands(),
        ["student.add", "student.add", "grade.add", "grade.add"]
    );
    store.close().await;
}

/// `follow`: the data as of a seq, then every committed batch in order,
/// each before its writes are acknowledged; failing writes log nothing.
pub async fn the_follower_gets_a_snapshot_then_every_batch_in_order(store: Arc<dyn Store>) {
    let student = with_student(store.as_ref()).await;
    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    let snapshot = recorder.snapshot();
    // The admin account, the promotion and the student came before.
    assert_eq!(snapshot.seq, 3);
    assert_eq!(snapshot.promotions.len(), 1);
    assert_eq!(
        (
            snapshot.promotions[0].name.as_str(),
            snapshot.promotions[0].year,
            snapshot.promotions[0].description.as_deref()
        ),
        ("P", Some(2025), Some("first"))
    );
    assert_eq!(snapshot.students.len(), 1);
    assert_eq!(snapshot.students[0].student.id, student);
    assert_eq!(snapshot.students[0].promotion_id, snapshot.promotions[0].id);

    let at = WriteContext::new("teacher", 5);
    let g = store
        .grade_add(&new_grade(student, "12"), at)
        .await
        .unwrap();
    // Acknowledged: the follower has it already.
    assert_eq!(recorder.received().len(), 1);
    let patch = GradePatch {
        coefficient: Some(Coefficient::from_hundredths(200).unwrap()),
        ..GradePatch::default()
    };
    store.grade_update(g.id, &patch, at).await.unwrap();
    assert_eq!(recorder.received().len(), 2);
    store.student_remove(student, at).await.unwrap();
    assert!(store.grade_delete(g.id, at).await.is_err());

    // Many writes at once share batches, and still arrive in order.
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .promotion_create(
                        &Promotion::new(format!("X{i}")),
                        None,
                        WriteContext::new("admin", 6),
                    )
                    .await
                    .unwrap();
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }

    let received = recorder.received();
    let seqs: Vec<i64> = received.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (4..=27).collect::<Vec<_>>());
    assert_eq!(
        (
            received[0].at,
            received[0].by.as_str(),
            received[0].command.as_str()
        ),
        (5, "teacher", "grade.add")
    );
    let commands: Vec<&str> = received[..4].iter().map(|r| r.command.as_str()).collect();
    assert_eq!(
        commands,
        [
            "grade.add",
            "grade.update",
            "student.remove",
            "student.remove"
        ]
    );
    assert!(
        matches!(&received[0].change, Change::Grade(d) if d.old.is_none() && d.new.as_ref() == Some(&g))
    );
    assert!(matches!(&received[1].change, Change::Grade(d) if d.old.as_ref() == Some(&g)));
    assert!(matches!(&received[2].change, Change::Grade(d) if d.new.is_none()));
    assert!(matches!(&received[3].change, Change::Student(d) if d.new.is_none()));
    assert!(
        received[4..]
            .iter()
            .all(|r| r.command == "promotion.create")
    );

    // A follower that starts now gets the data as of now.
    let late = Arc::new(Recorder::default());
    store.follow(late.clone()).await.unwrap();
    let now = late.snapshot();
    assert_eq!(now.seq, 27);
    assert_eq!(
        (now.promotions.len(), now.students.len(), now.grades.len()),
        (21, 0, 0)
    );
    store.close().await;
}

/// `audit_list`: grade entries only, filtered by promotion or student,
/// newest first, at most `limit`.
pub async fn audit_lists_grade_changes_newest_first(store: Arc<dyn Store>) {
    let ann = with_student(store.as_ref()).await;
    store
        .promotion_create(&Promotion::new("Q"), None, ctx())
        .await
        .unwrap();
    let bob = store
        .student_add("Q", &new_student("Bob", None), ctx())
        .await
        .unwrap()
        .id;
    let g1 = store
        .grade_add(&new_grade(ann, "10"), WriteContext::new("t1", 10))
        .await
        .unwrap();
    let g2 = store
        .grade_add(&new_grade(bob, "11"), WriteContext::new("t2", 11))
        .await
        .unwrap();
    let patch = GradePatch {
        value: Some(value("15")),
        ..GradePatch::default()
    };
    let g1b = store
        .grade_update(g1.id, &patch, WriteContext::new("t1", 12))
        .await
        .unwrap();
    store
        .grade_delete(g2.id, WriteContext::new("t2", 13))
        .await
        .unwrap();

    let all = store
        .audit_list(AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["grade.delete", "grade.update", "grade.add", "grade.add"]
    );
    let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let e = &all[1];
    assert_eq!(
        (e.at, e.by.as_str(), e.grade, e.student),
        (12, "t1", g1.id, ann)
    );
    assert_eq!((e.old.as_ref(), e.new.as_ref()), (Some(&g1), Some(&g1b)));
    assert_eq!(
        (all[0].old.as_ref(), all[0].new.as_ref()),
        (Some(&g2), None)
    );

    let in_p = store
        .audit_list(AuditFilter {
            promotion: Some("P"),
            student: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        in_p.iter().map(|e| e.grade).collect::<Vec<_>>(),
        [g1.id, g1.id]
    );
    let of_bob = store
        .audit_list(AuditFilter {
            promotion: None,
            student: Some(bob),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        of_bob.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["grade.delete", "grade.add"]
    );
    let last = store
        .audit_list(AuditFilter {
            promotion: None,
            student: None,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].action, "grade.delete");
    let none = store
        .audit_list(AuditFilter {
            promotion: Some("Q"),
            student: Some(ann),
            limit: 100,
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(
        not_found(
            store
                .audit_list(AuditFilter {
                    promotion: Some("nope"),
                    student: None,
                    limit: 10,
                })
                .await
        ),
        "no promotion named 'nope'"
    );
    store.close().await;
}

/// `verify_log`: an intact chain checks out, its head named.
pub async fn the_chain_of_an_intact_log_checks_out(store: Arc<dyn Store>) {
    let empty = store.verify_log().await.unwrap();
    assert_eq!((empty.entries, empty.last_seq, empty.problem), (0, 0, None));
    assert_eq!(empty.head, "0".repeat(64));
    let student = with_student(store.as_ref()).await;
    for i in 0..5 {
        store
            .grade_add(&new_grade(student, "10"), WriteContext::new("admin", i))
            .await
            .unwrap();
    }
    // A failing write in between leaves no gap.
    assert!(store.grade_delete(9999, ctx()).await.is_err());
    store.student_remove(student, ctx()).await.unwrap();
    let report = store.verify_log().await.unwrap();
    assert_eq!(
        (report.entries, report.last_seq, report.problem),
        (14, 14, None)
    );
    assert_eq!(report.head.len(), 64);
    assert_ne!(report.head, empty.head);
    store.close().await;
}

/// A UDP request's key and reply are recorded with its write; the same
/// key again is a duplicate that changes nothing.
pub async fn a_request_key_is_recorded_once(store: Arc<dyn Store>) {
    let student = with_student(store.as_ref()).await;
    let fits: Fits = Arc::new(|_: &serde_json::Value| true);
    let fits = &fits;
    let with = udp;
    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();

    let g = store
        .grade_add(&new_grade(student, "10"), with(b"session", "7", fits))
        .await
        .unwrap();
    let recorded = store.request_reply(b"session", "7").await.unwrap().unwrap();
    let recorded: gradebook_core::Grade = serde_json::from_str(&recorded).unwrap();
    assert_eq!(recorded, g);
    let again = store
        .grade_add(&new_grade(student, "10"), with(b"session", "7", fits))
        .await;
    assert!(matches!(again, Err(StoreError::Duplicate)), "{again:?}");
    assert_eq!(
        recorder.received().len(),
        1,
        "the duplicate changed nothing"
    );
    // Another id, or another session, is another request; `"7"` is not `7`.
    for (session, id) in [(&b"other"[..], "7"), (&b"session"[..], "\"7\"")] {
        store
            .grade_add(&new_grade(student, "10"), with(session, id, fits))
            .await
            .unwrap();
    }
    assert_eq!(recorder.received().len(), 3);
    // Writes that return nothing record `{}`.
    store
        .grade_delete(g.id, with(b"session", "\"d\"", fits))
        .await
        .unwrap();
    assert_eq!(
        store
            .request_reply(b"session", "\"d\"")
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
    assert_eq!(store.request_reply(b"session", "8").await.unwrap(), None);
    // A write that fails records nothing.
    let failed = store.grade_delete(g.id, with(b"session", "9", fits)).await;
    assert!(matches!(failed, Err(StoreError::NotFound(_))), "{failed:?}");
    assert_eq!(store.request_reply(b"session", "9").await.unwrap(), None);
    // Purged by age: all four were recorded at 10.
    assert_eq!(store.requests_purge(10).await.unwrap(), 0);
    assert_eq!(store.requests_purge(11).await.unwrap(), 4);
    assert_eq!(store.request_reply(b"session", "7").await.unwrap(), None);
    store.close().await;
}

/// A reply that does not fit its datagram: `TooLarge`, and nothing
/// changes, not even the request's record.
pub async fn a_reply_that_does_not_fit_changes_nothing(store: Arc<dyn Store>) {
    let student = with_student(store.as_ref()).await;
    let fits: Fits = Arc::new(|_: &serde_json::Value| false);
    let ctx = udp(b"session", "1", &fits);
    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    let r = store.grade_add(&new_grade(student, "10"), ctx).await;
    assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
    let r = store
        .promotion_create(&Promotion::new("Q"), None, ctx)
        .await;
    assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
    let r = store.student_remove(student, ctx).await;
    assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
    assert!(recorder.received().is_empty());
    assert_eq!(store.request_reply(b"session", "1").await.unwrap(), None);
    // All still there, and the name still free.
    store
        .promotion_create(&Promotion::new("Q"), None, WriteContext::new("admin", 11))
        .await
        .unwrap();
    let again = Arc::new(Recorder::default());
    store.follow(again.clone()).await.unwrap();
    let s = again.snapshot();
    assert_eq!(
        (s.students.len(), s.grades.len(), s.promotions.len()),
        (1, 0, 2)
    );
    store.close().await;
}

/// Ids are never given twice, even after the newest row is deleted.
pub async fn ids_are_never_reused(store: Arc<dyn Store>) {
    let first = with_student(store.as_ref()).await;
    store.student_remove(first, ctx()).await.unwrap();
    let second = store
        .student_add("P", &new_student("B", None), ctx())
        .await
        .unwrap()
        .id;
    assert!(second > first, "{second} after {first}");

    let g = store
        .grade_add(&new_grade(second, "1"), ctx())
        .await
        .unwrap();
    store.grade_delete(g.id, ctx()).await.unwrap();
    let g2 = store
        .grade_add(&new_grade(second, "1"), ctx())
        .await
        .unwrap();
    assert!(g2.id > g.id, "{} after {}", g2.id, g.id);

    store
        .user_create(&user("u", Role::Teacher), "h", ctx())
        .await
        .unwrap();
    let u1 = store.user_credentials("u").await.unwrap().unwrap().user_id;
    store.user_delete("u", ctx()).await.unwrap();
    store
        .user_create(&user("u", Role::Teacher), "h", ctx())
        .await
        .unwrap();
    let u2 = store.user_credentials("u").await.unwrap().unwrap().user_id;
    assert!(u2 > u1, "{u2} after {u1}");

    let recorder = Arc::new(Recorder::default());
    store
        .promotion_create(&Promotion::new("Q"), None, ctx())
        .await
        .unwrap();
    store.follow(recorder.clone()).await.unwrap();
    let q1 = recorder.snapshot().promotions[1].id;
    store.promotion_delete("Q", false, ctx()).await.unwrap();
    store
        .promotion_create(&Promotion::new("Q"), None, ctx())
        .await
        .unwrap();
    let created = recorder.received();
    let q2 = match &created[1].change {
        Change::Promotion(Diff { new: Some(p), .. }) => p.id,
        other => panic!("expected a promotion, got {other:?}"),
    };
    assert!(q2 > q1, "{q2} after {q1}");
    store.close().await;
}

/// Login failures: counted per key, the fifth blocks for the rest of the
/// minute, a success forgets the name's, and the purge forgets old ones.
pub async fn login_failures_are_counted_in_the_store(store: Arc<dyn Store>) {
    use crate::throttle::{WINDOW, addr_key, user_key};
    let name = user_key("alice");
    let addr = addr_key([10, 0, 0, 1].into());
    let both = [name.clone(), addr.clone()];
    let t = 1_000_000;
    for i in 0..4 {
        store.login_failed(&both, t + i).await.expect("counted");
        assert_eq!(store.login_wait(&both, t + i).await.expect("read"), None);
    }
    store.login_failed(&both, t + 4).await.expect("counted");
    assert_eq!(
        store
            .login_wait(std::slice::from_ref(&name), t + 4)
            .await
            .expect("read"),
        Some(WINDOW - 4)
    );
    // The address too, with another name.
    let other = [user_key("bob"), addr.clone()];
    assert!(
        store
            .login_wait(&other, t + 10)
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        store
            .login_wait(&[user_key("bob")], t + 10)
            .await
            .expect("read"),
        None
    );
    // A success forgets the name's failures, not the address's.
    store.login_succeeded(&name).await.expect("forgotten");
    assert_eq!(
        store
            .login_wait(std::slice::from_ref(&name), t + 10)
            .await
            .expect("read"),
        None
    );
    assert!(
        store
            .login_wait(std::slice::from_ref(&addr), t + 10)
            .await
            .expect("read")
            .is_some()
    );
    // Past the window, free; long after, the row goes.
    assert_eq!(
        store.login_wait(&both, t + WINDOW).await.expect("read"),
        None
    );
    assert_eq!(
        store.login_failures_purge(t + 10).await.expect("purged"),
        0,
        "nothing recent is purged"
    );
    assert_eq!(
        store
            .login_failures_purge(t + 20 * WINDOW)
            .await
            .expect("purged"),
        1
    );
}

/// The message of a `Locked`, or a panic.
fn locked<T: std::fmt::Debug>(r: crate::Result<T>) -> String {
    match r {
        Err(StoreError::Locked(m)) => m,
        other => panic!("expected locked, got {other:?}"),
    }
}

/// Publication (grades written hidden under `manual`, published and
/// unpublished by subject, label or id) and locking (every change to a
/// locked promotion's students and grades refused, publication included),
/// each logged.
pub async fn publication_and_locking(store: Arc<dyn Store>) {
    let student = with_student(store.as_ref()).await;
    let recorder = Arc::new(Recorder::default());
    store.follow(recorder.clone()).await.unwrap();
    let visible = store
        .grade_add(&new_grade(student, "12"), ctx())
        .await
        .unwrap();
    assert!(visible.published, "immediate: visible at once");

    let patch = PromotionPatch {
        publication: Some(Publication::Manual),
        year: Some(None),
        ..PromotionPatch::default()
    };
    let p = store.promotion_update("P", &patch, ctx()).await.unwrap();
    assert_eq!(
        (p.publication, p.year, p.students, p.locked),
        (Publication::Manual, None, 1, false)
    );
    let hidden = store
        .grade_add(&new_grade(student, "8"), ctx())
        .await
        .unwrap();
    assert!(!hidden.published, "manual: hidden until published");
    let mut labelled = new_grade(student, "15");
    labelled.subject = "Networks".into();
    labelled.label = Some("Midterm".into());
    let labelled = store.grade_add(&labelled, ctx()).await.unwrap();

    let networks = GradeSelection {
        subject: Some("Networks".into()),
        ..GradeSelection::default()
    };
    assert_eq!(
        store
            .grades_publish("P", &networks, true, ctx())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .grades_publish("P", &networks, true, ctx())
            .await
            .unwrap(),
        0,
        "already published: nothing changes"
    );
    let by_id = GradeSelection {
        ids: Some(vec![hidden.id, 99_999]),
        ..GradeSelection::default()
    };
    assert_eq!(
        not_found(store.grades_publish("P", &by_id, true, ctx()).await),
        "no grade with id 99999 in promotion 'P'"
    );
    let all = GradeSelection::default();
    assert_eq!(
        store.grades_publish("P", &all, false, ctx()).await.unwrap(),
        2
    );
    assert_eq!(
        store.grades_publish("P", &all, true, ctx()).await.unwrap(),
        3
    );

    let p = store.promotion_lock("P", true, ctx()).await.unwrap();
    assert!(p.locked);
    let refused = "promotion 'P' is locked: its students and grades cannot change until an \
                   admin unlocks it";
    assert_eq!(
        locked(store.grade_add(&new_grade(student, "1"), ctx()).await),
        refused
    );
    let patch = GradePatch {
        value: Some(value("1")),
        ..GradePatch::default()
    };
    assert_eq!(
        locked(store.grade_update(labelled.id, &patch, ctx()).await),
        refused
    );
    assert_eq!(
        locked(store.grade_delete(labelled.id, ctx()).await),
        refused
    );
    assert_eq!(
        locked(store.grades_publish("P", &all, false, ctx()).await),
        refused
    );
    assert_eq!(
        locked(
            store
                .student_add("P", &new_student("Bob", None), ctx())
                .await
        ),
        refused
    );
    let rename = StudentPatch {
        first_name: Some("Anne".into()),
        ..StudentPatch::default()
    };
    assert_eq!(
        locked(store.student_update(student, &rename, ctx()).await),
        refused
    );
    assert_eq!(locked(store.student_remove(student, ctx()).await), refused);
    assert_eq!(
        locked(
            store
                .import_grades(vec![(2, new_grade(student, "3"))], ctx())
                .await
        ),
        refused
    );
    assert_eq!(
        locked(
            store
                .import_students("P", vec![(2, new_student("C", None))], ctx())
                .await
        ),
        refused
    );
    assert_eq!(
        locked(store.promotion_delete("P", true, ctx()).await),
        refused
    );
    // Moving a student into a locked promotion is refused too.
    store
        .promotion_create(&Promotion::new("Q"), None, ctx())
        .await
        .unwrap();
    let other = store
        .student_add("Q", &new_student("Dan", None), ctx())
        .await
        .unwrap();
    let move_in = StudentPatch {
        promotion: Some("P".into()),
        ..StudentPatch::default()
    };
    assert_eq!(
        locked(store.student_update(other.id, &move_in, ctx()).await),
        refused
    );

    let p = store.promotion_lock("P", false, ctx()).await.unwrap();
    assert!(!p.locked);
    store.grade_delete(labelled.id, ctx()).await.unwrap();

    assert_eq!(
        recorder.commands(),
        [
            "grade.add",
            "promotion.update",
            "grade.add",
            "grade.add",
            "grade.publish",
            "grade.unpublish",
            "grade.unpublish",
            "grade.publish",
            "grade.publish",
            "grade.publish",
            "promotion.lock",
            "promotion.create",
            "student.add",
            "promotion.unlock",
            "grade.delete",
        ]
    );
    // The snapshot a new follower starts from has the flags too.
    let again = Arc::new(Recorder::default());
    store.follow(again.clone()).await.unwrap();
    let snapshot = again.snapshot();
    let p = snapshot.promotions.iter().find(|p| p.name == "P").unwrap();
    assert_eq!((p.publication, p.locked), (Publication::Manual, false));
    assert!(snapshot.grades.iter().all(|g| g.published));
    store.close().await;
}
