//! The one-shot commands, driven as a user would: every command family,
//! human and JSON output, saved sessions, exit codes.

use crate::cli_support;

use cli_support::{ADMIN_PASSWORD, Server, User};
use serde_json::Value;

/// Adds a student and returns its id.
fn add_student(u: &User, promotion: &str, first: &str, last: &str, extra: &[&str]) -> i64 {
    let mut args = vec!["student", "add", promotion, first, last, "--json"];
    args.extend_from_slice(extra);
    u.run(&args).json()["id"].as_i64().expect("an id")
}

#[test]
fn logging_in_saves_a_private_token_that_later_commands_use() {
    let server = Server::plaintext();
    let u = User::new(&server);

    let out = u.run(&["promotion", "list"]);
    assert!(
        out.fails(1)
            .contains("not logged in: log in first (gradebook login)")
    );

    let out = u.run_stdin(&["login", "admin"], "wrong password\n");
    assert!(out.fails(1).contains("unauthenticated"), "{}", out.stderr);

    let out = u.run_stdin(&["login", "admin"], &format!("{ADMIN_PASSWORD}\n"));
    let text = out.ok();
    assert!(text.contains("Logged in to"), "{text}");
    assert!(text.contains("as admin (admin)"), "{text}");

    let file = u.config_dir().join("sessions.json");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("the sessions file")).expect("JSON");
    let token = saved["servers"][&server.addr]["token"]
        .as_str()
        .expect("a token for this server")
        .to_owned();
    assert!(token.len() >= 32);
    assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "sessions.json must be private");
    }

    assert_eq!(
        u.run(&["whoami"]).ok().trim(),
        format!("admin (admin) on {}", server.addr)
    );
    // Named like the protocol too.
    assert!(u.run(&["auth", "whoami"]).ok().starts_with("admin (admin)"));
    let who = u.run(&["whoami", "--json"]).json();
    assert_eq!(who["username"], "admin");
    assert_eq!(who["role"], "admin");

    // A token the server no longer accepts: a clear message.
    let damaged = std::fs::read_to_string(&file)
        .expect("reads")
        .replace(&token, "0000000000000000000000000000000000000000000");
    std::fs::write(&file, damaged).expect("writes");
    let out = u.run(&["promotion", "list"]);
    assert!(
        out.fails(1)
            .contains("session expired: log in again (gradebook login)"),
        "{}",
        out.stderr
    );

    // The password from the environment, for scripts.
    let mut cmd = u.command(&["login", "admin"]);
    cmd.env("GRADEBOOK_PASSWORD", ADMIN_PASSWORD);
    u.run_with(cmd, "").ok();
    u.run(&["promotion", "list"]).ok();

    let out = u.run(&["logout"]);
    assert!(out.ok().contains("Logged out of"), "{}", out.stdout);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("the sessions file")).expect("JSON");
    assert!(saved["servers"].get(&server.addr).is_none(), "{saved}");
    assert!(u.run(&["whoami"]).fails(1).contains("not logged in"));
    assert!(u.run(&["logout"]).ok().contains("Not logged in"));
}

#[test]
fn promotions_students_and_grades_in_tables() {
    let server = Server::plaintext();
    let u = User::admin(&server);

    let out = u.run(&["promotion", "create", "RT2-2026", "--year", "2026"]);
    assert_eq!(out.ok().trim(), "Created promotion RT2-2026 (2026).");
    let alice = add_student(&u, "RT2-2026", "Alice", "Dupont", &["--number", "22001"]);
    let bob = add_student(&u, "RT2-2026", "Bob", "Martin", &[]);
    let out = u.run(&["student", "add", "RT2-2026", "Chloé", "Petit"]);
    assert!(
        out.ok().contains("Added Chloé Petit to RT2-2026 with id"),
        "{}",
        out.stdout
    );

    let a = alice.to_string();
    let b = bob.to_string();
    u.run(&["grade", "add", &a, "Networks", "14,5", "--coef", "2"])
        .ok();
    u.run(&["grade", "add", &a, "Networks", "abs", "--label", "Midterm"])
        .ok();
    u.run(&["grade", "add", &a, "Maths", "12"]).ok();
    u.run(&["grade", "add", &a, "English", "EXC", "--coef", "3"])
        .ok();
    u.run(&["grade", "add", &b, "Maths", "16.25"]).ok();
    u.run(&["grade", "add", &b, "English", "ATT"]).ok();

    // Grouped by subject, subject averages, the general average, the rank.
    let show = u.run(&["student", "show", &a]).ok().to_owned();
    assert!(
        show.starts_with(&format!(
            "Alice Dupont · id {alice} · number 22001 · RT2-2026"
        )),
        "{show}"
    );
    let networks = show
        .lines()
        .find(|l| l.contains("Networks"))
        .expect("a Networks row");
    assert!(
        networks.contains("9.67") && networks.contains("14.50") && networks.contains("2.00"),
        "{networks}"
    );
    let abs = show
        .lines()
        .find(|l| l.contains("ABS"))
        .expect("an ABS row");
    assert!(
        abs.contains("Midterm") && !abs.contains("Networks"),
        "{abs}"
    );
    assert!(
        show.lines()
            .any(|l| l.contains("English") && l.contains("EXC") && l.contains("—")),
        "{show}"
    );
    assert!(show.contains("General average: 10.25"), "{show}");
    assert!(show.contains("Rank: 2/2"), "{show}");

    // Students by rank, the pending grade flagged.
    let show = u.run(&["promotion", "show", "RT2-2026"]).ok().to_owned();
    let rows: Vec<&str> = show.lines().filter(|l| l.contains("┆")).collect();
    assert!(
        rows[1].contains("Martin") && rows[1].contains("16.25 *"),
        "{show}"
    );
    assert!(
        rows[2].contains("Dupont") && rows[2].contains("10.25"),
        "{show}"
    );
    assert!(rows[3].contains("Petit") && rows[3].contains("—"), "{show}");
    assert!(show.contains("a grade is pending (ATT)"), "{show}");

    // Statistics, then the histogram of the student averages under them.
    let avg = u.run(&["promotion", "average", "RT2-2026"]).ok().to_owned();
    assert!(
        avg.contains("3 students enrolled, 2 with an average, 1 with a pending grade"),
        "{avg}"
    );
    let stat = |name: &str| {
        avg.lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{avg}"))
            .to_owned()
    };
    assert!(stat("average").contains("13.25"));
    assert!(stat("q1").contains("11.75"));
    assert!(stat("stddev").contains("3.00"));
    let bars: Vec<&str> = avg.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(bars.len(), 20, "{avg}");
    assert!(
        bars[10].starts_with("[10, 11) │█") && bars[10].ends_with(" 1"),
        "{avg}"
    );
    assert!(
        bars[16].starts_with("[16, 17) │█") && bars[16].ends_with(" 1"),
        "{avg}"
    );
    assert_eq!(bars[0], "[ 0,  1) │");
    assert!(bars[19].starts_with("[19, 20] │"));
    let stats_end = avg.find("stddev").expect("stats");
    assert!(
        avg.find("[ 0,  1)").expect("histogram") > stats_end,
        "histogram under the statistics"
    );

    let subjects = u
        .run(&["promotion", "subjects", "RT2-2026"])
        .ok()
        .to_owned();
    assert!(
        subjects.lines().any(|l| l.contains("Maths")
            && l.contains("14.13")
            && l.contains("12.00")
            && l.contains("16.25")),
        "{subjects}"
    );

    let out = u.run(&["student", "average", &a]).ok().to_owned();
    assert!(
        out.contains(&format!(
            "Student {alice}: average 10.25 (3 grades counted, coefficients 4.00)"
        )),
        "{out}"
    );
    let out = u.run(&["student", "explain", &a]).ok().to_owned();
    assert!(
        out.contains("Average = (29 + 0 + 12) / (2 + 1 + 1) = 10.25"),
        "{out}"
    );
    assert!(out.contains("EXC: excused, not counted"), "{out}");

    let list = u.run(&["grade", "list", &a, "--json"]).json();
    let grades = list["grades"].as_array().expect("grades");
    assert_eq!(grades.len(), 4);
    let first = grades[0]["id"].as_i64().expect("id").to_string();
    let out = u.run(&["grade", "update", &first, "--value", "16", "--clear-label"]);
    assert!(out.ok().contains("16.00"), "{}", out.stdout);
    let grades_table = u.run(&["grade", "list", &a]).ok().to_owned();
    assert!(
        grades_table.contains("16.00") && grades_table.contains("ABS"),
        "{grades_table}"
    );
    assert_eq!(
        u.run(&["grade", "delete", &first]).ok().trim(),
        format!("Deleted grade {first}.")
    );
    assert_eq!(
        u.run(&["grade", "list", &a, "--json"]).json()["grades"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let out = u.run(&[
        "student",
        "update",
        &b,
        "--email",
        "bob@example.org",
        "--number",
        "22002",
    ]);
    assert!(out.ok().contains("bob@example.org"), "{}", out.stdout);
    let out = u
        .run(&["student", "update", &b, "--clear-email", "--json"])
        .json();
    assert_eq!(out["email"], Value::Null);
    assert_eq!(out["number"], "22002");
    let list = u.run(&["student", "list", "RT2-2026"]).ok().to_owned();
    assert!(list.contains("Dupont") && list.contains("22002"), "{list}");
    assert!(
        u.run(&["student", "remove", &b, "--force"])
            .ok()
            .contains("Removed student")
    );
    assert!(
        u.run(&["student", "show", &b])
            .fails(1)
            .contains("not_found")
    );

    let list = u.run(&["promotion", "list"]).ok().to_owned();
    assert!(
        list.lines()
            .any(|l| l.contains("RT2-2026") && l.contains("2026") && l.contains('2')),
        "{list}"
    );
    let out = u.run(&["promotion", "delete", "RT2-2026"]);
    assert!(out.fails(1).contains("conflict"), "{}", out.stderr);
    u.run(&["promotion", "delete", "RT2-2026", "--force"]).ok();
    assert!(
        u.run(&["promotion", "list", "--json"]).json()["promotions"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[test]
fn json_prints_the_servers_data_unchanged() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let p = u
        .run(&[
            "promotion",
            "create",
            "P",
            "--description",
            "Réseaux",
            "--json",
        ])
        .json();
    assert_eq!(
        p,
        serde_json::json!({
            "name": "P", "year": null, "description": "Réseaux", "students": 0,
            "publication": "immediate", "locked": false,
        })
    );
    let id = add_student(&u, "P", "Ann", "Lee", &[]);
    let g = u
        .run(&[
            "grade",
            "add",
            &id.to_string(),
            "Maths",
            "12,25",
            "--coef",
            "1.5",
            "--json",
        ])
        .json();
    assert_eq!(g["value"], 12.25);
    assert_eq!(g["coefficient"], 1.5);
    let show = u
        .run(&["student", "show", &id.to_string(), "--json"])
        .json();
    assert_eq!(show["average"], 12.25);
    assert_eq!(show["rank"], 1);
    assert_eq!(show["of"], 1);
    let avg = u.run(&["--json", "promotion", "average", "P"]).json();
    assert_eq!(avg["histogram"].as_array().map(Vec::len), Some(20));
    assert_eq!(avg["histogram"][12], 1);
    assert_eq!(
        u.run(&["ping", "--json"]).json(),
        serde_json::json!({"pong": true})
    );
    assert_eq!(u.run(&["hello", "--json"]).json()["protocol"], 1);
    assert_eq!(
        u.run(&["grade", "delete", "1", "--json"]).json(),
        serde_json::json!({})
    );
}

#[test]
fn users_grants_and_the_audit_trail() {
    let server = Server::plaintext();
    let admin = User::admin(&server);
    let mut cmd = admin.command(&["user", "create", "dupont", "--role", "teacher"]);
    cmd.env("GRADEBOOK_NEW_PASSWORD", "teacher password 1");
    assert_eq!(
        admin.run_with(cmd, "").ok().trim(),
        "Created user dupont (teacher)."
    );
    // The password from standard input when it is not a terminal.
    let out = admin.run_stdin(
        &["user", "create", "martin", "--role", "teacher"],
        "teacher password 2\n",
    );
    assert!(out.ok().contains("Created user martin"), "{}", out.stdout);
    let users = admin.run(&["user", "list"]).ok().to_owned();
    assert!(
        users
            .lines()
            .any(|l| l.contains("dupont") && l.contains("teacher")),
        "{users}"
    );
    assert!(
        users
            .lines()
            .any(|l| l.contains("admin") && l.contains("admin")),
        "{users}"
    );

    admin.run(&["promotion", "create", "A"]).ok();
    let teacher = User::new(&server);
    teacher.login("dupont", "teacher password 1");
    let out = teacher.run(&["promotion", "show", "A"]);
    assert!(out.fails(1).contains("forbidden"), "{}", out.stderr);
    assert_eq!(
        admin
            .run(&["promotion", "grant", "A", "dupont"])
            .ok()
            .trim(),
        "dupont may now manage A."
    );
    let id = add_student(&teacher, "A", "Ann", "Lee", &[]).to_string();
    teacher
        .run(&[
            "grade", "add", &id, "Maths", "14.5", "--coef", "2", "--label", "Final",
        ])
        .ok();
    let g = teacher.run(&["grade", "list", &id, "--json"]).json();
    let gid = g["grades"][0]["id"].as_i64().expect("id").to_string();
    teacher
        .run(&["grade", "update", &gid, "--value", "ABS"])
        .ok();
    let audit = admin
        .run(&["audit", "list", "--promotion", "A"])
        .ok()
        .to_owned();
    let rows: Vec<&str> = audit.lines().filter(|l| l.contains("dupont")).collect();
    assert_eq!(rows.len(), 2, "{audit}");
    assert!(
        rows[0].contains("grade.update")
            && rows[0].contains("14.50 ×2.00 (Final)")
            && rows[0].contains("ABS ×2.00 (Final)"),
        "{audit}"
    );
    assert!(
        rows[1].contains("grade.add") && rows[1].contains("Maths"),
        "{audit}"
    );
    let entries = admin
        .run(&["audit", "list", "--student", &id, "--limit", "1", "--json"])
        .json();
    assert_eq!(entries["entries"].as_array().map(Vec::len), Some(1));
    // The change log's chain checks out, for the admin only.
    let verified = admin.run(&["audit", "verify"]).ok().to_owned();
    assert!(
        verified.starts_with("The change log is intact:"),
        "{verified}"
    );
    let report = admin.run(&["audit", "verify", "--json"]).json();
    assert_eq!(report["intact"], serde_json::json!(true), "{report}");
    teacher.run(&["audit", "verify"]).fails(1);

    assert_eq!(
        admin
            .run(&["promotion", "revoke", "A", "dupont"])
            .ok()
            .trim(),
        "dupont no longer manages A."
    );
    assert!(
        teacher
            .run(&["student", "show", &id])
            .fails(1)
            .contains("forbidden")
    );

    // A user's own password: the old one, then the new; the session ends.
    let out = teacher.run_stdin(
        &["user", "password"],
        "teacher password 1\nteacher password 3\n",
    );
    assert!(out.ok().contains("log in again"), "{}", out.stdout);
    assert!(teacher.run(&["whoami"]).fails(1).contains("not logged in"));
    teacher.login("dupont", "teacher password 3");
    // An admin resets someone else's.
    let mut cmd = admin.command(&["user", "password", "--user", "dupont"]);
    cmd.env("GRADEBOOK_NEW_PASSWORD", "teacher password 4");
    assert!(
        admin
            .run_with(cmd, "")
            .ok()
            .contains("Password of dupont changed")
    );
    assert!(
        teacher
            .run(&["whoami"])
            .fails(1)
            .contains("session expired")
    );
    teacher.login("dupont", "teacher password 4");

    assert_eq!(
        admin.run(&["user", "delete", "martin"]).ok().trim(),
        "Deleted user martin."
    );
    assert!(!admin.run(&["user", "list"]).ok().contains("martin"));
}

#[test]
fn exit_codes_tell_usage_server_and_connection_failures_apart() {
    let server = Server::plaintext();
    let u = User::admin(&server);

    // 2: usage.
    let out = u.run(&["promotion", "frobnicate"]);
    assert!(
        out.fails(2).contains("unrecognized subcommand"),
        "{}",
        out.stderr
    );
    assert!(
        u.run(&["grade", "add", "1", "Maths"])
            .fails(2)
            .contains("VALUE")
    );
    let out = u.run(&["grade", "add", "1", "Maths", "twelve"]);
    assert!(
        out.fails(2)
            .contains("neither a number nor ABS, EXC or ATT"),
        "{}",
        out.stderr
    );
    assert!(
        u.run(&["student", "show", "twelve"])
            .fails(2)
            .contains("invalid value")
    );

    // 1: the server's error, its code printed, on stderr only.
    let out = u.run(&["student", "show", "999"]);
    assert!(out.fails(1).contains("not_found"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    u.run(&["promotion", "create", "P"]).ok();
    let id = add_student(&u, "P", "A", "B", &[]).to_string();
    let out = u.run(&["grade", "add", &id, "Maths", "20.5"]);
    assert!(out.fails(1).contains("invalid_value"), "{}", out.stderr);
    let out = u.run(&["grade", "add", &id, "Maths", "-1"]);
    assert!(out.fails(1).contains("invalid_value"), "{}", out.stderr);
    assert!(
        u.run(&["promotion", "create", "P"])
            .fails(1)
            .contains("conflict")
    );
    assert!(
        !out.stderr.contains('\x1b'),
        "no colour with NO_COLOR or off a terminal"
    );

    // 3: the connection. A port that was just free.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let out = u.run(&["ping", "--server", &format!("127.0.0.1:{port}")]);
    assert!(out.fails(3).contains("cannot connect"), "{}", out.stderr);
    // TLS to a plaintext server.
    let mut cmd = u.command(&["ping"]);
    cmd.env_remove("GRADEBOOK_PLAINTEXT");
    let out = u.run_with(cmd, "");
    assert!(out.fails(3).contains("--plaintext"), "{}", out.stderr);

    // 0: help, with an example, for every command.
    assert!(u.run(&["--help"]).ok().contains("Examples:"));
    let leaves: &[&[&str]] = &[
        &["auth"],
        &["user"],
        &["promotion"],
        &["student"],
        &["grade"],
        &["audit"],
        &["import"],
        &["export"],
        &["login"],
        &["logout"],
        &["whoami"],
        &["ping"],
        &["hello"],
        &["auth", "login"],
        &["auth", "logout"],
        &["auth", "whoami"],
        &["user", "create"],
        &["user", "list"],
        &["user", "delete"],
        &["user", "password"],
        &["promotion", "create"],
        &["promotion", "list"],
        &["promotion", "show"],
        &["promotion", "average"],
        &["promotion", "subjects"],
        &["promotion", "delete"],
        &["promotion", "grant"],
        &["promotion", "revoke"],
        &["student", "add"],
        &["student", "list"],
        &["student", "show"],
        &["student", "average"],
        &["student", "explain"],
        &["student", "update"],
        &["student", "remove"],
        &["grade", "add"],
        &["grade", "list"],
        &["grade", "update"],
        &["grade", "delete"],
        &["audit", "list"],
        &["import", "students"],
        &["import", "grades"],
        &["export", "promotion"],
        &["shell"],
        &["completions"],
        &["fingerprint"],
        &["serve"],
    ];
    for leaf in leaves {
        let mut args = leaf.to_vec();
        args.push("--help");
        let out = u.run(&args);
        assert!(
            out.ok().contains("Example"),
            "no example in `{}`:\n{}",
            leaf.join(" "),
            out.stdout
        );
    }
}

#[test]
fn completion_scripts_for_three_shells() {
    let server = Server::plaintext();
    let u = User::new(&server);
    for shell in ["bash", "zsh", "fish"] {
        let out = u.run(&["completions", shell]);
        let script = out.ok();
        assert!(
            script.contains("promotion") && script.contains("average"),
            "{shell}"
        );
    }
    assert_eq!(u.run(&["completions", "tcsh"]).code, 2);
}
