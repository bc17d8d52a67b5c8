//! The client library's typed calls against `gradebook serve`: every
//! command of the protocol, each reply read into the type its call names,
//! over TCP (one by one, pipelined, with a saved token) and UDP.

use crate::cli_support;

use cli_support::{ADMIN_PASSWORD, Server};
use gradebook_client::{ConnectOptions, UdpClient, UdpOptions};
use gradebook_proto::call;
use gradebook_proto::command::{
    AuditListArgs, GradeAddArgs, GradeInput, GradeListArgs, GradeUpdateArgs, GrantArgs, HelloArgs,
    IdArgs, ImportAbortArgs, ImportBeginArgs, ImportCommitArgs, ImportRow, ImportRowsArgs, NoArgs,
    PromotionArgs, PromotionCreateArgs, PromotionDeleteArgs, StudentAddArgs, StudentListArgs,
    StudentUpdateArgs, UserCreateArgs, UserPasswordArgs, UsernameArgs,
};
use gradebook_proto::data::{Done, GradeValue, Role};
use gradebook_proto::{ErrorCode, Secret};

const TEACHER_PASSWORD: &str = "a-teacher-password-long-enough";

#[tokio::test]
async fn every_command_replies_with_the_type_its_call_names() {
    let server = Server::plaintext();
    let mut c = server.client().await;

    let hello = c
        .run(call::Hello(HelloArgs { encoding: None }))
        .await
        .expect("hello");
    assert_eq!((hello.server.as_str(), hello.protocol), ("gradebook", 1));
    assert!(c.run(call::Ping(NoArgs {})).await.expect("ping").pong);
    let login = c.login("admin", ADMIN_PASSWORD).await.expect("logs in");
    assert_eq!(login.role, Role::Admin);
    let me = c.run(call::Whoami(NoArgs {})).await.expect("whoami");
    assert_eq!((me.username.as_str(), me.student), ("admin", None));

    let p = c
        .run(call::PromotionCreate(PromotionCreateArgs {
            name: "RT1".into(),
            year: Some(2026),
            description: Some("Réseaux".into()),
            publication: None,
        }))
        .await
        .expect("promotion.create");
    assert_eq!((p.name.as_str(), p.students), ("RT1", 0));
    let a = c
        .run(call::StudentAdd(StudentAddArgs {
            promotion: "RT1".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            number: Some("N1".into()),
            email: None,
        }))
        .await
        .expect("student.add");
    let b = c
        .run(call::StudentAdd(StudentAddArgs {
            promotion: "RT1".into(),
            first_name: "Bob".into(),
            last_name: "Ray".into(),
            number: None,
            email: Some("bob@example.org".into()),
        }))
        .await
        .expect("student.add");
    let updated = c
        .run(call::StudentUpdate(StudentUpdateArgs {
            id: b.id,
            first_name: None,
            last_name: None,
            number: Some(Some("N2".into())),
            email: Some(None),
            promotion: None,
        }))
        .await
        .expect("student.update");
    assert_eq!(
        (updated.number.as_deref(), updated.email),
        (Some("N2"), None)
    );
    let listed = c
        .run(call::StudentList(StudentListArgs {
            promotion: "RT1".into(),
        }))
        .await
        .expect("student.list");
    assert_eq!(listed.students.len(), 2);

    let g = c
        .run(call::GradeAdd(GradeAddArgs {
            student: a.id,
            subject: "Maths".into(),
            value: GradeInput::Number(14.5),
            coefficient: Some(2.0),
            label: Some("Midterm".into()),
        }))
        .await
        .expect("grade.add");
    let abs = c
        .run(call::GradeAdd(GradeAddArgs {
            student: a.id,
            subject: "Networks".into(),
            value: GradeInput::Mark("ABS".into()),
            coefficient: None,
            label: None,
        }))
        .await
        .expect("grade.add");
    assert_eq!(abs.value, GradeValue::Abs);
    let g = c
        .run(call::GradeUpdate(GradeUpdateArgs {
            id: g.id,
            value: Some(GradeInput::Number(16.0)),
            coefficient: None,
            subject: None,
            label: Some(None),
        }))
        .await
        .expect("grade.update");
    assert_eq!(g.label, None);
    let grades = c
        .run(call::GradeList(GradeListArgs { student: a.id }))
        .await
        .expect("grade.list");
    assert_eq!(grades.grades.len(), 2);

    let shown = c
        .run(call::StudentShow(IdArgs { id: a.id }))
        .await
        .expect("student.show");
    assert_eq!(
        (shown.rank, shown.of, shown.subjects.len()),
        (Some(1), 1, 2)
    );
    let average = c
        .run(call::StudentAverage(IdArgs { id: a.id }))
        .await
        .expect("student.average");
    // (16 × 2 + 0 × 1) / 3
    assert_eq!(average.counted, 2);
    assert!(
        average
            .average
            .is_some_and(|x| (x - 32.0 / 3.0).abs() < 1e-9)
    );
    let explained = c
        .run(call::StudentExplain(IdArgs { id: a.id }))
        .await
        .expect("student.explain");
    assert_eq!((explained.id, explained.lines.len()), (a.id, 2));
    assert_eq!(explained.lines[1].contribution, Some(0.0));
    let show = c
        .run(call::PromotionShow(PromotionArgs { name: "RT1".into() }))
        .await
        .expect("promotion.show");
    assert_eq!(show.students.len(), 2);
    let stats = c
        .run(call::PromotionAverage(PromotionArgs { name: "RT1".into() }))
        .await
        .expect("promotion.average");
    assert_eq!(
        (stats.count, stats.students, stats.histogram.len()),
        (1, 2, 20)
    );
    let subjects = c
        .run(call::PromotionSubjects(PromotionArgs {
            name: "RT1".into(),
        }))
        .await
        .expect("promotion.subjects");
    assert_eq!(subjects.subjects.len(), 2);
    let list = c
        .run(call::PromotionList(NoArgs {}))
        .await
        .expect("promotion.list");
    assert_eq!(list.promotions.len(), 1);
    let audit = c
        .run(call::AuditList(AuditListArgs {
            promotion: None,
            student: Some(a.id),
            limit: Some(10),
        }))
        .await
        .expect("audit.list");
    assert_eq!(audit.entries.len(), 3);
    assert_eq!(audit.entries[0].action, "grade.update");
    assert!(audit.entries[2].old.is_none() && audit.entries[2].new.is_some());

    let begun = c
        .run(call::ImportBegin(ImportBeginArgs {
            kind: "students".into(),
            promotion: "RT1".into(),
            columns: vec!["first_name".into(), "last_name".into()],
            ignore: vec![],
        }))
        .await
        .expect("import.begin");
    assert_eq!(begun.columns.len(), 2);
    let received = c
        .run(call::ImportRows(ImportRowsArgs {
            import: begun.import,
            rows: vec![ImportRow {
                line: 2,
                cells: vec!["Cy".into(), "Dee".into()],
            }],
        }))
        .await
        .expect("import.rows");
    assert_eq!(received.rows, 1);
    let report = c
        .run(call::ImportCommit(ImportCommitArgs {
            import: begun.import,
            dry_run: Some(true),
            skip_bad: None,
        }))
        .await
        .expect("import.commit");
    assert!(report.dry_run);
    assert_eq!(report.added, 1);
    let aborted: Done = c
        .run(call::ImportAbort(ImportAbortArgs {
            import: begun.import,
        }))
        .await
        .expect("import.abort");
    assert_eq!(aborted, Done {});

    let teacher = c
        .run(call::UserCreate(UserCreateArgs {
            username: "dupont".into(),
            password: Secret::new(TEACHER_PASSWORD),
            role: "teacher".into(),
            student: None,
        }))
        .await
        .expect("user.create");
    assert_eq!(teacher.role, Role::Teacher);
    let users = c.run(call::UserList(NoArgs {})).await.expect("user.list");
    assert_eq!(users.users.len(), 2);
    let grant = GrantArgs {
        name: "RT1".into(),
        username: "dupont".into(),
    };
    c.run(call::PromotionGrant(grant.clone()))
        .await
        .expect("promotion.grant");
    c.run(call::PromotionRevoke(grant))
        .await
        .expect("promotion.revoke");
    c.run(call::UserPassword(UserPasswordArgs {
        new: Secret::new(format!("{TEACHER_PASSWORD}-2")),
        old: None,
        username: Some("dupont".into()),
    }))
    .await
    .expect("user.password");
    c.run(call::UserDelete(UsernameArgs {
        username: "dupont".into(),
    }))
    .await
    .expect("user.delete");

    c.run(call::GradeDelete(IdArgs { id: abs.id }))
        .await
        .expect("grade.delete");
    c.run(call::StudentRemove(IdArgs { id: b.id }))
        .await
        .expect("student.remove");
    let refused = c
        .run(call::PromotionDelete(PromotionDeleteArgs {
            name: "RT1".into(),
            force: None,
        }))
        .await;
    match refused {
        Err(gradebook_client::ClientError::Server(e)) => assert_eq!(e.code, ErrorCode::Conflict),
        other => panic!("expected a conflict, got {other:?}"),
    }
    c.run(call::PromotionDelete(PromotionDeleteArgs {
        name: "RT1".into(),
        force: Some(true),
    }))
    .await
    .expect("promotion.delete");
    c.run(call::Logout(NoArgs {})).await.expect("auth.logout");
    match c.run(call::Whoami(NoArgs {})).await {
        Err(gradebook_client::ClientError::Server(e)) => {
            assert_eq!(e.code, ErrorCode::Unauthenticated)
        }
        other => panic!("expected unauthenticated, got {other:?}"),
    }
}

#[tokio::test]
async fn calls_pipeline_carry_a_saved_token_and_travel_over_udp() {
    let server = Server::plaintext();
    let mut admin = server.client().await;
    let login = admin.login("admin", ADMIN_PASSWORD).await.expect("logs in");
    admin
        .run(call::PromotionCreate(PromotionCreateArgs {
            name: "P".into(),
            year: None,
            description: None,
            publication: None,
        }))
        .await
        .expect("promotion.create");

    // Another connection, never logged in, with the token in each envelope.
    let mut c = server.client().await;
    c.set_token(Some(login.token.clone()));
    let queued: Vec<_> = (0..50)
        .map(|i| {
            c.queue(call::StudentAdd(StudentAddArgs {
                promotion: "P".into(),
                first_name: format!("F{i}"),
                last_name: format!("L{i}"),
                number: None,
                email: None,
            }))
            .expect("queued")
        })
        .collect();
    let mut ids = Vec::new();
    for q in queued {
        ids.push(c.reply_to(q).await.expect("student.add").id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "replies in order");

    let mut options = UdpOptions::new(server.addr.clone());
    options.fallback = Some(ConnectOptions::plaintext(server.addr.clone()));
    let udp = UdpClient::connect(&options).await.expect("binds");
    assert!(udp.run(call::Ping(NoArgs {})).await.expect("ping").pong);
    udp.set_token(Some(login.token));
    let shown = udp
        .run(call::StudentShow(IdArgs { id: ids[0] }))
        .await
        .expect("student.show over UDP");
    assert_eq!(shown.first_name, "F0");
    // Too large for a datagram: fetched again over TCP, typed all the same.
    let all = udp
        .run(call::StudentList(StudentListArgs {
            promotion: "P".into(),
        }))
        .await
        .expect("student.list through the fallback");
    assert_eq!(all.students.len(), 50);
}
