//! What only the PostgreSQL backend does, against a real server: the
//! database named by `GRADEBOOK_TEST_POSTGRES` (a throwaway server's
//! superuser URL), a fresh database per test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gradebook_core::{Coefficient, GradeValue, Promotion, Role, User};
use gradebook_store::{
    AuditFilter, Change, ChangeRecord, Follower, NewGrade, NewStudent, Snapshot, Store, StoreError,
    WriteContext,
};
use gradebook_store_postgres::PostgresStore;
use gradebook_store_postgres::testing::{admin_url, fresh_database};

/// A fresh database's URL and a store connected to it.
async fn fresh() -> (String, PostgresStore) {
    let url = fresh_database(&admin_url()).await;
    let store = PostgresStore::connect(&url).await.expect("connects");
    (url, store)
}

/// A plain connection to `url`, for looking behind the store's back.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    client
}

fn grade(student: i64) -> NewGrade {
    NewGrade {
        student,
        subject: "Maths".into(),
        value: GradeValue::parse_mark("ABS").expect("a mark"),
        coefficient: Coefficient::default(),
        label: None,
    }
}

/// A follower that keeps the seq of each entry it is given.
#[derive(Default)]
struct Seqs(Mutex<Vec<i64>>);

impl Seqs {
    fn seqs(&self) -> Vec<i64> {
        self.0.lock().expect("lock").clone()
    }
}

impl Follower for Seqs {
    fn load(&self, _: Snapshot) {}
    fn apply(&self, batch: &[ChangeRecord]) {
        self.0
            .lock()
            .expect("lock")
            .extend(batch.iter().map(|r| r.seq));
    }
}

/// The store with an admin, a promotion `P` and one student (its id).
async fn with_student(store: &PostgresStore) -> i64 {
    let ctx = WriteContext::new("admin", 1);
    let admin = User {
        username: "admin".into(),
        role: Role::Admin,
        student: None,
    };
    store.user_create(&admin, "hash", ctx).await.expect("user");
    store
        .promotion_create(&Promotion::new("P"), None, ctx)
        .await
        .expect("promotion");
    store
        .student_add(
            "P",
            &NewStudent {
                first_name: "A".into(),
                last_name: "B".into(),
                number: None,
                email: None,
            },
            ctx,
        )
        .await
        .expect("student")
        .id
}

#[tokio::test]
async fn only_a_postgres_url_connects_and_an_unreachable_server_is_unavailable() {
    for url in ["sqlite://x.db", "mysql://u@h/db", ""] {
        let r = PostgresStore::connect(url).await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "{url}: {r:?}");
    }
    // Nothing listens on port 1.
    let r = PostgresStore::connect("postgres://u@127.0.0.1:1/db").await;
    assert!(matches!(r, Err(StoreError::Unavailable { .. })), "{r:?}");
}

#[tokio::test]
async fn two_servers_starting_at_once_migrate_once() {
    let url = fresh_database(&admin_url()).await;
    let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    let (a, b) = (a.expect("first connects"), b.expect("second connects"));
    // Each migration recorded once.
    let versions: Vec<i64> = raw(&url)
        .await
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("reads")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    a.close().await;
    b.close().await;
    // Again: nothing left to do.
    let again = PostgresStore::connect(&url).await.expect("reconnects");
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits_and_failures_undo_only_themselves() {
    let (url, store) = fresh().await;
    let student = with_student(&store).await;
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let target = if i % 3 == 0 { 9999 } else { student };
            store
                .grade_add(&grade(target), WriteContext::new("admin", i))
                .await
                .is_ok()
        }));
    }
    let mut acknowledged = 0;
    for t in tasks {
        if t.await.expect("task") {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, 133);
    let n: i64 = raw(&url)
        .await
        .query_one("SELECT COUNT(*) FROM grades", &[])
        .await
        .expect("counts")
        .get(0);
    assert_eq!(n, 133);
    let report = store.verify_log().await.expect("verifies");
    assert_eq!((report.entries, report.problem), (3 + 133, None));
    store.close().await;
}

#[tokio::test]
async fn two_stores_on_one_database_keep_one_chain_and_the_follower_misses_nothing() {
    let (url, a) = fresh().await;
    let student = with_student(&a).await;
    let b = PostgresStore::connect(&url).await.expect("second server");

    #[derive(Default)]
    struct Recorder {
        snapshot: Mutex<Option<Snapshot>>,
        received: Mutex<Vec<ChangeRecord>>,
    }
    impl Follower for Recorder {
        fn load(&self, snapshot: Snapshot) {
            *self.snapshot.lock().expect("lock") = Some(snapshot);
        }
        fn apply(&self, batch: &[ChangeRecord]) {
            self.received.lock().expect("lock").extend_from_slice(batch);
        }
    }
    let recorder = Arc::new(Recorder::default());
    a.follow(recorder.clone()).await.expect("follows");
    let ctx = WriteContext::new("admin", 5);
    // Alternating servers: each continues the other's chain.
    for i in 0..6 {
        let store = if i % 2 == 0 { &a } else { &b };
        store.grade_add(&grade(student), ctx).await.expect("adds");
    }
    for store in [&a, &b] {
        let report = store.verify_log().await.expect("verifies");
        assert_eq!((report.last_seq, report.problem), (9, None));
    }
    // Once `a` has synced, its follower has every entry, its own and
    // `b`'s (given before `a`'s next batch, by the tail, or by the sync):
    // each once, in order, with no gap.
    a.sync().await.expect("syncs");
    let seqs: Vec<i64> = recorder
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [4, 5, 6, 7, 8, 9]);
    // What the log holds reads back as the follower received it.
    let tail = b.changes_after(3, 100).await.expect("reads");
    assert_eq!(tail.len(), 6);
    assert_eq!(
        &tail[..],
        &recorder.received.lock().expect("lock")[..],
        "changes_after decodes as the writer records"
    );
    assert!(matches!(&tail[5].change, Change::Grade(d) if d.old.is_none()));
    assert_eq!(b.changes_after(8, 1).await.expect("reads").len(), 1);
    assert!(b.changes_after(9, 10).await.expect("reads").is_empty());
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn each_batch_that_logs_notifies_its_last_seq() {
    let (url, store) = fresh().await;
    let (client, mut connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    client
        .batch_execute("LISTEN gradebook_changes")
        .await
        .expect("listens");
    let student = with_student(&store).await;
    // A write that logs nothing (a session) notifies nothing.
    store
        .session_create(b"token", 1, 1, 100)
        .await
        .expect("session");
    store
        .grade_add(&grade(student), WriteContext::new("admin", 2))
        .await
        .expect("adds");
    let mut payloads = Vec::new();
    while payloads.len() < 4 {
        let (channel, payload) = tokio::time::timeout(Duration::from_secs(5), notes.recv())
            .await
            .expect("a notification in time")
            .expect("the listener runs");
        assert_eq!(channel, "gradebook_changes");
        payloads.push(payload);
    }
    assert_eq!(payloads, ["1", "2", "3", "4"]);
    store.close().await;
}

#[tokio::test]
async fn an_edited_or_deleted_entry_breaks_the_chain() {
    let (url, store) = fresh().await;
    let student = with_student(&store).await;
    let ctx = WriteContext::new("admin", 5);
    for _ in 0..3 {
        store.grade_add(&grade(student), ctx).await.expect("adds");
    }
    assert_eq!(store.verify_log().await.expect("verifies").problem, None);
    let db = raw(&url).await;
    db.execute("UPDATE changes SET username = 'mallory' WHERE seq = 5", &[])
        .await
        .expect("edits");
    let p = store.verify_log().await.expect("verifies").problem;
    assert_eq!(p.map(|p| p.seq), Some(5));
    db.execute("UPDATE changes SET username = 'admin' WHERE seq = 5", &[])
        .await
        .expect("restores");
    db.execute("DELETE FROM changes WHERE seq = 6", &[])
        .await
        .expect("deletes the last");
    let p = store.verify_log().await.expect("verifies").problem;
    assert_eq!(p.map(|p| p.seq), Some(6));
    db.execute("DELETE FROM changes WHERE seq = 2", &[])
        .await
        .expect("deletes one in the middle");
    let p = store.verify_log().await.expect("verifies").problem;
    assert_eq!(p.map(|p| p.seq), Some(2));
    let audit = store
        .audit_list(AuditFilter {
            promotion: Some("P"),
            student: None,
            limit: 2,
        })
        .await
        .expect("audit");
    assert_eq!(audit.iter().map(|e| e.id).collect::<Vec<_>>(), [5, 4]);
    store.close().await;
    let closed = store.user_count().await;
    assert!(matches!(closed, Err(StoreError::Closed)), "{closed:?}");
}

#[tokio::test]
async fn a_hole_in_the_log_stops_a_read_rather_than_being_skipped() {
    let (url, store) = fresh().await;
    let student = with_student(&store).await;
    let applied = Arc::new(Seqs::default());
    store.follow(applied.clone()).await.expect("follows");
    store.sync().await.expect("nothing missing yet");
    // Another server's entry two past the end, as if the one between had
    // been deleted behind the servers' backs.
    raw(&url)
        .await
        .batch_execute(
            "CREATE TEMP TABLE e AS SELECT * FROM changes ORDER BY seq DESC LIMIT 1; \
             UPDATE e SET seq = seq + 2; \
             INSERT INTO changes SELECT * FROM e; \
             UPDATE changes_highest SET seq = seq + 2",
        )
        .await
        .expect("makes a hole");
    let read = store.sync().await;
    assert!(
        matches!(&read, Err(StoreError::Corrupt(m)) if m.contains("an entry is missing")),
        "{read:?}"
    );
    assert!(applied.seqs().is_empty(), "nothing skipped to");
    // This server's own next write waits behind the hole too: the
    // follower is given nothing past it.
    let _ = store
        .grade_add(&grade(student), WriteContext::new("admin", 9))
        .await;
    let seqs = applied.seqs();
    assert!(seqs.is_empty(), "{seqs:?}");
    store.close().await;
}

#[tokio::test]
async fn connections_killed_behind_the_stores_back_are_replaced() {
    let (url, store) = fresh().await;
    let student = with_student(&store).await;
    assert_eq!(store.user_count().await.expect("counts"), 1);
    // The server ends every connection of the store (a restart, a
    // failover, an administrator).
    let killed = raw(&url)
        .await
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'gradebook'",
            &[],
        )
        .await
        .expect("terminates")
        .len();
    assert!(killed >= 2, "the writer's and a reader's: {killed}");
    // Give the driver a moment to see the sockets close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Reads and writes go on, on new connections, and the chain with them.
    assert_eq!(store.user_count().await.expect("counts again"), 1);
    store
        .grade_add(&grade(student), WriteContext::new("admin", 3))
        .await
        .expect("writes again");
    let report = store.verify_log().await.expect("verifies");
    assert_eq!((report.last_seq, report.problem), (4, None));
    store.close().await;
}

#[tokio::test]
async fn a_follower_learns_another_servers_writes_without_writing_itself() {
    let (url, a) = fresh().await;
    let student = with_student(&a).await;
    let b = PostgresStore::connect(&url).await.expect("second server");
    let seqs = Arc::new(Seqs::default());
    a.follow(seqs.clone()).await.expect("follows");
    let ctx = WriteContext::new("admin", 5);
    for _ in 0..3 {
        b.grade_add(&grade(student), ctx).await.expect("adds");
    }
    // The tail, woken by b's notifications, brings them without `a`
    // writing or syncing (the notification only wakes it: what it applies
    // is read from the log).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seqs.seqs().len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seqs.seqs(), [4, 5, 6]);
    a.close().await;
    b.close().await;
}

/// Runs `writes` in the order given, all queued while another session
/// holds the writers' lock, so that they share batches; their results in
/// the same order.
async fn queued_together<T, F>(url: &str, writes: Vec<F>) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    const WRITE_LOCK: i64 = 0x6772_6164_6562_0001;
    let blocker = raw(url).await;
    blocker.batch_execute("BEGIN").await.expect("begins");
    blocker
        .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await
        .expect("locks");
    // `join_all` polls its futures in order the first time: each write is
    // queued before the next.
    let all = tokio::spawn(futures_util::future::join_all(writes));
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.batch_execute("COMMIT").await.expect("unlocks");
    all.await.expect("writes")
}

#[tokio::test]
async fn a_grade_the_database_refuses_fails_alone_and_its_neighbours_commit_in_order() {
    let (url, store) = fresh().await;
    let student = with_student(&store).await;
    // A rule of the database's that no write checks beforehand: the
    // statement adding the run's grades fails, and they go one at a time.
    raw(&url)
        .await
        .batch_execute("ALTER TABLE grades ADD CONSTRAINT no_poison CHECK (subject <> 'poison')")
        .await
        .expect("adds a constraint");
    let writes = (0..20i64)
        .map(|i| {
            let store = store.clone();
            let mut g = grade(if i == 5 { 9999 } else { student });
            if i == 13 {
                g.subject = "poison".into();
            }
            async move { store.grade_add(&g, WriteContext::new("admin", i)).await }
        })
        .collect();
    let results = queued_together(&url, writes).await;
    let mut ids = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (5, Err(StoreError::NotFound(_))) | (13, Err(StoreError::Backend(_))) => {}
            (5 | 13, r) => panic!("write {i} should have failed: {r:?}"),
            (_, Ok(g)) => ids.push(g.id),
            (_, Err(e)) => panic!("write {i} failed: {e}"),
        }
    }
    // Ids in the order the writes were sent.
    assert_eq!(ids.len(), 18);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let client = raw(&url).await;
    let stored: Vec<i64> = client
        .query("SELECT id FROM grades ORDER BY id", &[])
        .await
        .expect("reads")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, ids);
    // Each kept grade logged once, in order, with its student's promotion.
    let logged: Vec<(i64, Option<i64>, Option<i64>)> = client
        .query(
            "SELECT grade_id, student_id, promotion_id FROM changes WHERE kind = 'grade' \
             ORDER BY seq",
            &[],
        )
        .await
        .expect("reads")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let promotion: i64 = client
        .query_one("SELECT id FROM promotions WHERE name = 'P'", &[])
        .await
        .expect("reads")
        .get(0);
    let expected: Vec<_> = ids
        .iter()
        .map(|id| (*id, Some(student), Some(promotion)))
        .collect();
    assert_eq!(logged, expected);
    let report = store.verify_log().await.expect("verifies");
    assert_eq!((report.entries, report.problem), (3 + 18, None));
    store.close().await;
}

#[tokio::test]
async fn grades_and_other_writes_in_one_batch_keep_their_order() {
    let (url, store) = fresh().await;
    let student = with_student(&store).await;
    let add = |at: i64| {
        let store = store.clone();
        Box::pin(async move {
            store
                .grade_add(&grade(student), WriteContext::new("admin", at))
                .await
                .map(|_| ())
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
    };
    let remove = {
        let store = store.clone();
        Box::pin(async move {
            store
                .student_remove(student, WriteContext::new("admin", 3))
                .await
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
    };
    // Two grades, the student's removal, one more grade: the last finds
    // no student, whatever batches they share.
    let results = queued_together(&url, vec![add(1), add(2), remove, add(4)]).await;
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert!(
        matches!(results[3], Err(StoreError::NotFound(_))),
        "{results:?}"
    );
    let kinds: Vec<(String, String)> = raw(&url)
        .await
        .query(
            "SELECT command, kind FROM changes WHERE seq > 3 ORDER BY seq",
            &[],
        )
        .await
        .expect("reads")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [
        ("grade.add", "grade"),
        ("grade.add", "grade"),
        ("student.remove", "grade"),
        ("student.remove", "grade"),
        ("student.remove", "student"),
    ]
    .map(|(c, k)| (c.to_owned(), k.to_owned()));
    assert_eq!(kinds, expected);
    let report = store.verify_log().await.expect("verifies");
    assert_eq!(report.problem, None);
    store.close().await;
}
