//! Every command × role × own/other target against the live server,
//! compared with the permission table; and the roles' promises in words:
//! a teacher sees nothing of a promotion not theirs, a student nothing of
//! another student.

use crate::common;

use common::{ADMIN_PASSWORD, TestServer, err, ok};
use gradebook_client::{Client, ClientError};
use gradebook_core::Role;
use gradebook_proto::Command;
use serde_json::{Value, json};

const TEACHER: &str = "prof";
const STUDENT: &str = "stud";
const PASSWORD: &str = "password-of-the-tests";

/// The world the walk runs in, built by the admin.
struct World {
    server: TestServer,
    admin: Client,
    /// The teacher's granted promotion and the student's promotion.
    mine: String,
    /// A promotion neither of them has anything to do with.
    theirs: String,
    /// The student account's own record, in `mine`.
    own_student: i64,
    /// Another student in `mine`.
    mate: i64,
    /// A student in `theirs`.
    stranger: i64,
    counter: usize,
}

impl World {
    async fn new() -> World {
        let server = TestServer::start().await;
        let mut admin = server.admin().await;
        ok(&mut admin, "promotion.create", json!({"name": "Mine"})).await;
        ok(&mut admin, "promotion.create", json!({"name": "Theirs"})).await;
        let add = |p: &'static str, n: &'static str| json!({"promotion": p, "first_name": n, "last_name": "X"});
        let own = ok(&mut admin, "student.add", add("Mine", "Own")).await["id"]
            .as_i64()
            .expect("id");
        let mate = ok(&mut admin, "student.add", add("Mine", "Mate")).await["id"]
            .as_i64()
            .expect("id");
        let stranger = ok(&mut admin, "student.add", add("Theirs", "Stranger")).await["id"]
            .as_i64()
            .expect("id");
        for s in [own, mate, stranger] {
            ok(
                &mut admin,
                "grade.add",
                json!({"student": s, "subject": "S", "value": 12}),
            )
            .await;
        }
        ok(
            &mut admin,
            "user.create",
            json!({"username": TEACHER, "password": PASSWORD, "role": "teacher"}),
        )
        .await;
        ok(
            &mut admin,
            "user.create",
            json!({"username": STUDENT, "password": PASSWORD, "role": "student", "student": own}),
        )
        .await;
        ok(
            &mut admin,
            "promotion.grant",
            json!({"name": "Mine", "username": TEACHER}),
        )
        .await;
        World {
            server,
            admin,
            mine: "Mine".into(),
            theirs: "Theirs".into(),
            own_student: own,
            mate,
            stranger,
            counter: 0,
        }
    }

    async fn login(&self, role: Role) -> Client {
        match role {
            Role::Admin => self.server.admin().await,
            Role::Teacher | Role::Student => {
                let name = if role == Role::Teacher {
                    TEACHER
                } else {
                    STUDENT
                };
                let mut c = self.server.connect().await;
                c.login(name, PASSWORD).await.expect("logs in");
                c
            }
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    /// A throwaway student in `promotion`, for commands that destroy.
    async fn student_in(&mut self, promotion: &str) -> i64 {
        let s = ok(
            &mut self.admin,
            "student.add",
            json!({"promotion": promotion, "first_name": "Tmp", "last_name": "Tmp"}),
        )
        .await;
        s["id"].as_i64().expect("id")
    }

    /// A new promotion, granted to the teacher if `own`, locked by the
    /// admin if `locked`.
    async fn promotion_for(&mut self, own: bool, locked: bool) -> String {
        let name = self.fresh("Lockable");
        ok(&mut self.admin, "promotion.create", json!({"name": name})).await;
        if own {
            ok(
                &mut self.admin,
                "promotion.grant",
                json!({"name": name, "username": TEACHER}),
            )
            .await;
        }
        if locked {
            ok(&mut self.admin, "promotion.lock", json!({"name": name})).await;
        }
        name
    }

    async fn grade_of(&mut self, student: i64) -> i64 {
        let g = ok(
            &mut self.admin,
            "grade.add",
            json!({"student": student, "subject": "S", "value": 10}),
        )
        .await;
        g["id"].as_i64().expect("id")
    }

    /// Arguments for `cmd` run by `role` on its own target (`own`) or on
    /// someone else's. `None` when the command has no such target.
    async fn args(&mut self, cmd: &str, role: Role, own: bool) -> Option<Value> {
        // The promotion and student "own" means for this role.
        let promotion = if own {
            self.mine.clone()
        } else {
            self.theirs.clone()
        };
        let student = match (role, own) {
            (Role::Student, true) => self.own_student,
            (Role::Student, false) => self.mate,
            (_, true) => self.mate,
            (_, false) => self.stranger,
        };
        let targeted = !matches!(
            cmd,
            "hello"
                | "ping"
                | "auth.login"
                | "auth.logout"
                | "auth.whoami"
                | "user.create"
                | "user.list"
                | "user.delete"
                | "user.password"
                | "promotion.create"
                | "promotion.list"
                | "promotion.grant"
                | "promotion.revoke"
                | "unwatch"
        );
        if !targeted && !own {
            return None;
        }
        Some(match cmd {
            "hello" | "ping" | "auth.logout" | "auth.whoami" | "user.list" | "promotion.list"
            | "unwatch" => json!({}),
            // A student watches a record (their own, or a mate's); the
            // others a promotion.
            "watch" if role == Role::Student => json!({"student": student}),
            "watch" => json!({"promotion": promotion}),
            "auth.login" => json!({"username": TEACHER, "password": PASSWORD}),
            "user.create" => {
                json!({"username": self.fresh("u"), "password": PASSWORD, "role": "teacher"})
            }
            "user.delete" => {
                let name = self.fresh("victim");
                ok(
                    &mut self.admin,
                    "user.create",
                    json!({"username": name, "password": PASSWORD, "role": "teacher"}),
                )
                .await;
                json!({"username": name})
            }
            "user.password" => {
                let current = if role == Role::Admin {
                    ADMIN_PASSWORD
                } else {
                    PASSWORD
                };
                json!({"old": current, "new": current})
            }
            "promotion.create" => json!({"name": self.fresh("New")}),
            "promotion.grant" | "promotion.revoke" => {
                json!({"name": self.theirs, "username": TEACHER})
            }
            "promotion.show" | "promotion.average" | "promotion.subjects" => {
                json!({"name": promotion})
            }
            "promotion.update" => json!({"name": promotion, "description": "updated"}),
            // Locking the walk's own promotions would refuse the commands
            // after it: a promotion of its own, granted if `own`.
            "promotion.lock" | "promotion.unlock" => {
                json!({"name": self.promotion_for(own, cmd == "promotion.unlock").await})
            }
            "grade.publish" | "grade.unpublish" => json!({"promotion": promotion}),
            "promotion.delete" => {
                let name = self.fresh("Doomed");
                ok(&mut self.admin, "promotion.create", json!({"name": name})).await;
                if own {
                    ok(
                        &mut self.admin,
                        "promotion.grant",
                        json!({"name": name, "username": TEACHER}),
                    )
                    .await;
                }
                json!({"name": name})
            }
            "student.add" => {
                json!({"promotion": promotion, "first_name": "New", "last_name": "Student"})
            }
            "student.list" => json!({"promotion": promotion}),
            "student.update" => json!({"id": student, "email": "a@b.c"}),
            "student.remove" => json!({"id": self.student_in(&promotion).await}),
            "student.show" | "student.average" | "student.explain" => json!({"id": student}),
            "grade.add" => json!({"student": student, "subject": "S", "value": 11}),
            "grade.update" => json!({"id": self.grade_of(student).await, "value": 9}),
            "grade.delete" => json!({"id": self.grade_of(student).await}),
            "grade.list" => json!({"student": student}),
            "audit.list" => json!({"promotion": promotion}),
            "audit.verify" => json!({}),
            "import.begin" => {
                json!({"kind": "students", "promotion": promotion, "columns": ["nom", "prénom"]})
            }
            // The walk opens the import on the caller's own connection
            // first (see `open_import`) and puts its id here.
            "import.rows" => json!({"import": 0, "rows": [{"line": 2, "cells": ["A", "B"]}]}),
            "import.commit" | "import.abort" => json!({"import": 0}),
            other => panic!("the walk does not know {other}: add it"),
        })
    }
}

/// For the commands that work on an open import: opens one with the same
/// connection, if the role may, and gives its id to `args`. Lines and
/// aborts go to the caller's own import, opened on their own promotion;
/// a commit's target is the import's promotion, own or not.
async fn open_import(client: &mut Client, cmd: &str, own: bool, mut args: Value) -> Value {
    if !cmd.starts_with("import.") || cmd == "import.begin" {
        return args;
    }
    let promotion = if own || cmd != "import.commit" {
        "Mine"
    } else {
        "Theirs"
    };
    let begun = client
        .call(
            "import.begin",
            json!({"kind": "students", "promotion": promotion, "columns": ["nom", "prénom"]}),
        )
        .await;
    if let Ok(v) = begun {
        args["import"] = v["import"].clone();
    }
    args
}

/// How a role may run a command, as this test states it, apart from the
/// server's own description (a mistake there must not be copied here).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// Anyone, even without a session.
    Anyone,
    /// Any session of this role.
    Yes,
    /// Only on one's own target: a managed promotion for a teacher, one's
    /// own promotion or record for a student.
    Own,
    /// Never.
    No,
}

use Rule::{Anyone, No, Own, Yes};

/// Admin, teacher, student, for every command.
const RULES: &[(&str, [Rule; 3])] = &[
    ("hello", [Anyone, Anyone, Anyone]),
    ("ping", [Anyone, Anyone, Anyone]),
    ("auth.login", [Anyone, Anyone, Anyone]),
    ("auth.logout", [Yes, Yes, Yes]),
    ("auth.whoami", [Yes, Yes, Yes]),
    ("user.create", [Yes, No, No]),
    ("user.list", [Yes, No, No]),
    ("user.delete", [Yes, No, No]),
    ("user.password", [Yes, Yes, Yes]),
    ("promotion.create", [Yes, Yes, No]),
    ("promotion.list", [Yes, Yes, Yes]),
    ("promotion.show", [Yes, Own, No]),
    ("promotion.delete", [Yes, Own, No]),
    ("promotion.grant", [Yes, No, No]),
    ("promotion.revoke", [Yes, No, No]),
    ("promotion.update", [Yes, Own, No]),
    ("promotion.lock", [Yes, Own, No]),
    ("promotion.unlock", [Yes, No, No]),
    ("grade.publish", [Yes, Own, No]),
    ("grade.unpublish", [Yes, Own, No]),
    ("watch", [Yes, Own, Own]),
    ("unwatch", [Yes, Yes, Yes]),
    ("promotion.average", [Yes, Own, Own]),
    ("promotion.subjects", [Yes, Own, Own]),
    ("student.add", [Yes, Own, No]),
    ("student.list", [Yes, Own, No]),
    ("student.update", [Yes, Own, No]),
    ("student.remove", [Yes, Own, No]),
    ("student.show", [Yes, Own, Own]),
    ("student.average", [Yes, Own, Own]),
    ("student.explain", [Yes, Own, Own]),
    ("grade.add", [Yes, Own, No]),
    ("grade.update", [Yes, Own, No]),
    ("grade.delete", [Yes, Own, No]),
    ("grade.list", [Yes, Own, Own]),
    ("audit.list", [Yes, Own, No]),
    ("audit.verify", [Yes, No, No]),
    ("import.begin", [Yes, Own, No]),
    ("import.rows", [Yes, Yes, No]),
    ("import.commit", [Yes, Own, No]),
    ("import.abort", [Yes, Yes, No]),
];

/// Whether the rules let `role` run `cmd` on its own (or another's) target.
fn allowed(cmd: &str, role: Role, own: bool) -> bool {
    let rules = RULES
        .iter()
        .find(|(name, _)| *name == cmd)
        .map(|(_, r)| *r)
        .unwrap_or_else(|| panic!("the test states no rule for {cmd}: add it"));
    let rule = rules[match role {
        Role::Admin => 0,
        Role::Teacher => 1,
        Role::Student => 2,
    }];
    match rule {
        Anyone | Yes => true,
        No => false,
        Own => own,
    }
}

#[test]
fn the_test_states_a_rule_for_every_command() {
    for name in Command::NAMES {
        assert_eq!(RULES.iter().filter(|(n, _)| n == name).count(), 1, "{name}");
    }
    assert_eq!(RULES.len(), Command::NAMES.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_role_and_target_matches_the_table() {
    let mut w = World::new().await;
    let mut checked = 0;
    for role in Role::ALL {
        let mut client = w.login(role).await;
        for cmd in Command::NAMES {
            for own in [true, false] {
                let Some(args) = w.args(cmd, role, own).await else {
                    continue;
                };
                let args = open_import(&mut client, cmd, own, args).await;
                let result = client.call(cmd, args.clone()).await;
                let expected = allowed(cmd, role, own);
                match (&result, expected) {
                    (Ok(_), true) => {}
                    (Err(ClientError::Server(e)), false) if e.code.as_str() == "forbidden" => {}
                    _ => panic!(
                        "{role} {cmd} {args} (own target: {own}): expected {}, got {result:?}",
                        if expected { "success" } else { "forbidden" }
                    ),
                }
                checked += 1;
                // These end the session: log in again for the next command.
                // (A watching connection gets events between replies: the
                // walk goes on with a fresh one.)
                if result.is_ok()
                    && matches!(
                        *cmd,
                        "auth.logout" | "user.password" | "auth.login" | "watch"
                    )
                {
                    client = w.login(role).await;
                    if role == Role::Admin {
                        // A password change logs out every admin session.
                        w.admin = w.login(role).await;
                    }
                }
            }
        }
    }
    assert!(checked > 3 * Command::NAMES.len(), "walked only {checked}");
}

#[tokio::test]
async fn a_teacher_sees_nothing_of_a_promotion_not_theirs() {
    let mut w = World::new().await;
    let mut t = w.login(Role::Teacher).await;
    let list = ok(&mut t, "promotion.list", json!({})).await;
    let names: Vec<&str> = list["promotions"]
        .as_array()
        .expect("promotions")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Mine"]);
    // The same answer whether the promotion exists or not: no probing.
    let exists = err(
        &mut t,
        "promotion.show",
        json!({"name": "Theirs"}),
        "forbidden",
    )
    .await;
    let missing = err(
        &mut t,
        "promotion.show",
        json!({"name": "Nowhere"}),
        "forbidden",
    )
    .await;
    assert_eq!(
        exists.replace("Theirs", "X"),
        missing.replace("Nowhere", "X")
    );
    // Nor which student or grade ids exist outside their promotions.
    let missing = err(&mut t, "student.show", json!({"id": 99_999}), "forbidden").await;
    let other = err(
        &mut t,
        "student.show",
        json!({"id": w.stranger}),
        "forbidden",
    )
    .await;
    assert_eq!(missing, other);
    err(&mut t, "grade.delete", json!({"id": 99_999}), "forbidden").await;
    // A promotion they create is theirs.
    ok(&mut t, "promotion.create", json!({"name": "Created"})).await;
    ok(
        &mut t,
        "student.add",
        json!({"promotion": "Created", "first_name": "A", "last_name": "B"}),
    )
    .await;
    // Moving a student out to a promotion not theirs is refused.
    err(
        &mut t,
        "student.update",
        json!({"id": w.mate, "promotion": "Theirs"}),
        "forbidden",
    )
    .await;
    // Audit without naming a promotion is refused; admins see all.
    err(&mut t, "audit.list", json!({}), "forbidden").await;
    let all = ok(&mut w.admin, "audit.list", json!({})).await;
    assert!(!all["entries"].as_array().expect("entries").is_empty());
}

#[tokio::test]
async fn a_student_reads_only_their_own_record() {
    let w = World::new().await;
    let mut s = w.login(Role::Student).await;
    let me = ok(&mut s, "auth.whoami", json!({})).await;
    assert_eq!(me["role"], "student");
    assert_eq!(me["student"], w.own_student);
    let show = ok(&mut s, "student.show", json!({"id": w.own_student})).await;
    assert_eq!(show["rank"], 1);
    let avg = ok(&mut s, "promotion.average", json!({"name": "Mine"})).await;
    assert_eq!(avg["count"], 2);
    assert!(
        !avg.to_string().contains("Mate"),
        "no other student's name: {avg}"
    );
    for (cmd, args) in [
        ("student.show", json!({"id": w.mate})),
        ("student.average", json!({"id": w.mate})),
        ("student.explain", json!({"id": w.stranger})),
        ("grade.list", json!({"student": w.mate})),
        (
            "grade.add",
            json!({"student": w.own_student, "subject": "S", "value": 20}),
        ),
        ("grade.update", json!({"id": 1, "value": 20})),
        ("grade.delete", json!({"id": 2})),
        ("student.list", json!({"promotion": "Mine"})),
        ("promotion.show", json!({"name": "Mine"})),
        ("promotion.average", json!({"name": "Theirs"})),
        ("audit.list", json!({"student": w.own_student})),
        ("user.list", json!({})),
    ] {
        err(&mut s, cmd, args, "forbidden").await;
    }
    let list = ok(&mut s, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"].as_array().expect("promotions").len(), 1);
}

#[tokio::test]
async fn sessions_end_with_a_password_change_or_deletion() {
    let mut w = World::new().await;
    let mut t = w.login(Role::Teacher).await;
    let mut t2 = w.login(Role::Teacher).await;
    ok(
        &mut t,
        "user.password",
        json!({"old": PASSWORD, "new": "another-long-password"}),
    )
    .await;
    err(&mut t2, "auth.whoami", json!({}), "unauthenticated").await;
    err(&mut t, "auth.whoami", json!({}), "unauthenticated").await;
    // Wrong old password, too short a new one.
    let mut t = w.server.connect().await;
    t.login(TEACHER, "another-long-password")
        .await
        .expect("new password works");
    err(
        &mut t,
        "user.password",
        json!({"old": "wrong-password", "new": "whatever-long"}),
        "unauthenticated",
    )
    .await;
    err(
        &mut t,
        "user.password",
        json!({"old": "another-long-password", "new": "short"}),
        "invalid_value",
    )
    .await;
    err(
        &mut t,
        "user.password",
        json!({"new": "whatever-long", "username": "admin"}),
        "forbidden",
    )
    .await;
    // Deletion ends the session at once.
    ok(&mut w.admin, "user.delete", json!({"username": TEACHER})).await;
    err(&mut t, "auth.whoami", json!({}), "unauthenticated").await;
    err(
        &mut w.admin,
        "user.delete",
        json!({"username": "admin"}),
        "conflict",
    )
    .await;
    // Users never show a password or a hash.
    let users = ok(&mut w.admin, "user.list", json!({})).await;
    let text = users.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
}

#[tokio::test]
async fn each_grade_change_is_audited_with_who_made_it() {
    let mut w = World::new().await;
    let mut t = w.login(Role::Teacher).await;
    let g = ok(
        &mut t,
        "grade.add",
        json!({"student": w.mate, "subject": "Maths", "value": 8}),
    )
    .await;
    let id = g["id"].as_i64().expect("id");
    ok(&mut w.admin, "grade.update", json!({"id": id, "value": 9})).await;
    ok(&mut t, "grade.delete", json!({"id": id})).await;
    // The teacher reads the audit of their promotion, newest first.
    let a = ok(
        &mut t,
        "audit.list",
        json!({"promotion": "Mine", "limit": 3}),
    )
    .await;
    let entries = a["entries"].as_array().expect("entries");
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["by"].as_str().expect("by"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("grade.delete", TEACHER),
            ("grade.update", "admin"),
            ("grade.add", TEACHER)
        ]
    );
    assert_eq!(entries[1]["old"]["value"], json!(8.0));
    assert_eq!(entries[1]["new"]["value"], json!(9.0));
    assert!(
        entries
            .iter()
            .all(|e| e["grade"] == id && e["student"] == w.mate)
    );
    // Not the audit of a promotion they do not manage; no command edits it
    // (the others only read it).
    err(
        &mut t,
        "audit.list",
        json!({"promotion": "Theirs"}),
        "forbidden",
    )
    .await;
    let names = gradebook_proto::Command::NAMES;
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("audit.") && !["audit.list", "audit.verify"].contains(n))
    );
}

/// What the lock walk's commands act on in `Mine`, made beforehand (a
/// locked promotion would refuse making them).
struct Targets {
    grade_to_update: i64,
    grade_to_delete: i64,
    student_to_remove: i64,
}

impl Targets {
    async fn make(w: &mut World) -> Targets {
        let mate = w.mate;
        Targets {
            grade_to_update: w.grade_of(mate).await,
            grade_to_delete: w.grade_of(mate).await,
            student_to_remove: w.student_in("Mine").await,
        }
    }

    /// The arguments of `cmd` in `Mine`.
    fn args(&self, w: &World, cmd: &str) -> Value {
        match cmd {
            "student.add" => json!({"promotion": "Mine", "first_name": "N", "last_name": "S"}),
            "student.update" => json!({"id": w.mate, "email": "x@y.z"}),
            "student.remove" => json!({"id": self.student_to_remove}),
            "grade.add" => json!({"student": w.mate, "subject": "S", "value": 11}),
            "grade.update" => json!({"id": self.grade_to_update, "value": 9}),
            "grade.delete" => json!({"id": self.grade_to_delete}),
            "grade.publish" | "grade.unpublish" => json!({"promotion": "Mine"}),
            "promotion.update" => json!({"name": "Mine", "year": 2030}),
            other => panic!("no arguments for {other}"),
        }
    }
}

/// Every role × lock state × command that changes a promotion's students
/// or grades (and the new publication commands): refused with `forbidden`
/// where the role may not, else with `locked` while the promotion is
/// locked (reads and the promotion's own fields still work), else done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_promotion_refuses_changes_to_its_students_and_grades() {
    let mut w = World::new().await;
    let changes = [
        "student.add",
        "student.update",
        "student.remove",
        "grade.add",
        "grade.update",
        "grade.delete",
        "grade.publish",
        "grade.unpublish",
        "promotion.update",
    ];
    let mut checked = 0;
    for locked in [false, true] {
        let mut targets = Vec::new();
        for _ in Role::ALL {
            targets.push(Targets::make(&mut w).await);
        }
        if locked {
            let mut t = w.login(Role::Teacher).await;
            let p = ok(&mut t, "promotion.lock", json!({"name": "Mine"})).await;
            assert_eq!(p["locked"], true);
            // Only an admin unlocks.
            err(
                &mut t,
                "promotion.unlock",
                json!({"name": "Mine"}),
                "forbidden",
            )
            .await;
        }
        for (role, targets) in Role::ALL.into_iter().zip(&targets) {
            let mut client = w.login(role).await;
            for cmd in changes {
                let args = targets.args(&w, cmd);
                let result = client.call(cmd, args.clone()).await;
                let code = match &result {
                    Ok(_) => "ok",
                    Err(ClientError::Server(e)) => e.code.as_str(),
                    Err(other) => panic!("{role} {cmd}: {other}"),
                };
                let expected = if !allowed(cmd, role, true) {
                    "forbidden"
                } else if locked && cmd != "promotion.update" {
                    "locked"
                } else {
                    "ok"
                };
                assert_eq!(code, expected, "{role} {cmd} {args} (locked: {locked})");
                checked += 1;
            }
            // Reads still work, and say whether the promotion is locked.
            if role != Role::Student {
                let show = ok(&mut client, "promotion.show", json!({"name": "Mine"})).await;
                assert_eq!(show["locked"], locked);
            }
            let own = if role == Role::Student {
                w.own_student
            } else {
                w.mate
            };
            ok(&mut client, "student.show", json!({"id": own})).await;
        }
    }
    assert_eq!(checked, 2 * 3 * changes.len());
    let p = ok(&mut w.admin, "promotion.unlock", json!({"name": "Mine"})).await;
    assert_eq!(p["locked"], false);
    ok(
        &mut w.admin,
        "grade.add",
        json!({"student": w.mate, "subject": "S", "value": 11}),
    )
    .await;
    let log = ok(&mut w.admin, "audit.verify", json!({})).await;
    assert_eq!(log["intact"], true, "{log}");
}
