//! What a first user of the command line tripped over (issue 9): a pinned
//! fingerprint that loses to the known-servers file, clap errors cut to a
//! line in the shell, wire names in messages, a removal without a
//! question, bare table headers, names sorted by code point, a short
//! password refused only after typing it twice, a DNS failure blamed on
//! TLS, colour codes and one log line per refused connection in the
//! server's log.

use crate::cli_support;

use std::io::{Read, Write};
use std::time::Duration;

use cli_support::{Serve, Server, User};

/// The id of the student that `student add --json` printed.
fn add_student(u: &User, promotion: &str, first: &str, last: &str) -> String {
    u.run(&["student", "add", promotion, first, last, "--json"])
        .json()["id"]
        .to_string()
}

#[test]
fn accept_fingerprint_wins_over_the_known_servers_file() {
    let server = Server::tls();
    let u = User::new(&server);
    let cert = server.cert();
    let fp = u
        .run(&["fingerprint", cert.to_str().expect("utf-8")])
        .ok()
        .trim()
        .to_owned();
    // The server is trusted and remembered, and a session saved.
    u.run(&["ping", "--accept-fingerprint", &fp]).ok();
    u.login_admin();
    u.run(&["promotion", "list"]).ok();

    // A pin that is not the server's certificate refuses the connection,
    // though the known-servers file trusts it.
    let wrong = format!("SHA256:{}", "ab".repeat(32));
    let out = u.run(&["promotion", "list", "--accept-fingerprint", &wrong]);
    let err = out.fails(3);
    assert!(err.contains("does not match"), "{err}");
    assert!(err.contains(&wrong) && err.contains(&fp), "{err}");
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    // The right pin and no pin still work.
    u.run(&["promotion", "list", "--accept-fingerprint", &fp])
        .ok();
    u.run(&["promotion", "list"]).ok();
}

#[test]
fn the_shell_prints_clap_errors_whole() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let out = u.run_stdin(
        &["shell", "--keep-going"],
        "promotion create\npromotion lsit\nuser create bob --role boss\n",
    );
    let err = out.fails(2);
    // What is missing, and the usage line without the `gradebook` prefix.
    assert!(err.contains("<NAME>"), "{err}");
    assert!(err.contains("Usage: promotion create"), "{err}");
    assert!(!err.contains("Usage: gradebook"), "{err}");
    // "Did you mean", and the possible values.
    assert!(err.contains("'list'"), "{err}");
    assert!(
        err.contains("admin") && err.contains("teacher") && err.contains("student"),
        "{err}"
    );
    assert!(err.contains("help COMMAND"), "{err}");
}

#[test]
fn student_remove_asks_first_or_takes_force() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "RT1"]).ok();
    let id = add_student(&u, "RT1", "Alice", "Dupont");
    u.run(&["grade", "add", &id, "Networks", "12"]).ok();

    // No answer (or no) keeps the student.
    let out = u.run(&["student", "remove", &id]);
    let err = out.fails(1);
    assert!(err.contains("Remove Alice Dupont"), "{err}");
    assert!(err.contains("1 grade"), "{err}");
    assert!(err.contains("--force"), "{err}");
    u.run(&["student", "show", &id]).ok();
    let out = u.run_stdin(&["student", "remove", &id], "n\n");
    out.fails(1);
    u.run(&["student", "show", &id]).ok();

    // Yes removes.
    let out = u.run_stdin(&["student", "remove", &id], "y\n");
    assert!(out.ok().contains("Removed student"), "{}", out.stdout);
    u.run(&["student", "show", &id]).fails(1);

    // A shell script cannot answer: it needs --force.
    let id = add_student(&u, "RT1", "Bob", "Martin");
    let out = u.run_stdin(&["shell"], &format!("student remove {id}\n"));
    assert!(out.fails(2).contains("--force"), "{}", out.stderr);
    u.run(&["student", "show", &id]).ok();
    let out = u.run_stdin(&["shell"], &format!("student remove {id} --force\n"));
    assert!(out.ok().contains("Removed student"), "{}", out.stdout);
}

#[test]
fn messages_speak_in_flags_not_wire_names() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "RT1"]).ok();
    add_student(&u, "RT1", "Alice", "Dupont");
    let out = u.run(&["promotion", "delete", "RT1"]);
    let err = out.fails(1);
    assert!(err.contains("add --force"), "{err}");
    assert!(!err.contains("pass force"), "{err}");
    let id = add_student(&u, "RT1", "Bob", "Martin");
    let long = "x".repeat(300);
    let out = u.run(&["student", "update", &id, "--first-name", &long]);
    assert!(out.fails(1).contains("--first-name"), "{}", out.stderr);
}

#[test]
fn empty_lists_say_so() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    assert_eq!(u.run(&["promotion", "list"]).ok().trim(), "No promotions.");
    u.run(&["promotion", "create", "BUT1"]).ok();
    assert_eq!(
        u.run(&["student", "list", "BUT1"]).ok().trim(),
        "No students in BUT1."
    );
    let show = u.run(&["promotion", "show", "BUT1"]).ok().to_owned();
    assert!(show.contains("No students in BUT1."), "{show}");
    assert!(!show.contains("Rank"), "{show}");
    let subjects = u.run(&["promotion", "subjects", "BUT1"]).ok().to_owned();
    assert!(subjects.starts_with("No subjects in BUT1"), "{subjects}");
    let id = add_student(&u, "BUT1", "Alice", "Dupont");
    assert_eq!(
        u.run(&["grade", "list", &id]).ok().trim(),
        format!("No grades for student {id}.")
    );
}

#[test]
fn names_sort_as_people_expect() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "RT1"]).ok();
    for (first, last) in [
        ("Zoé", "Zola"),
        ("Sean", "O'Brien"),
        ("Mesut", "Ozil"),
        ("Ayşe", "Çelik"),
        ("Anna", "Oberon"),
        ("Émile", "Dupont"),
        ("Emma", "Dupont"),
        ("emile", "dupont"),
    ] {
        add_student(&u, "RT1", first, last);
    }
    let list = u.run(&["student", "list", "RT1"]).ok().to_owned();
    let order: Vec<&str> = [
        "Çelik", "Émile", "emile", "Emma", "Oberon", "O'Brien", "Ozil", "Zola",
    ]
    .into_iter()
    .collect();
    let positions: Vec<usize> = order
        .iter()
        .map(|n| list.find(n).unwrap_or_else(|| panic!("{n} in\n{list}")))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "expected {order:?} in that order:\n{list}"
    );
}

#[test]
fn a_short_password_is_refused_before_the_server() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let out = u.run_stdin(&["user", "create", "bob", "--role", "teacher"], "short\n");
    let err = out.fails(2);
    assert!(err.contains("at least 10 characters"), "{err}");
    let huge = "x".repeat(1025);
    let out = u.run_stdin(
        &["user", "create", "bob", "--role", "teacher"],
        &format!("{huge}\n"),
    );
    assert!(out.fails(2).contains("1 KiB"), "{}", out.stderr);
    u.run_stdin(
        &["user", "create", "bob", "--role", "teacher"],
        "a-good-long-password\n",
    )
    .ok();
}

#[test]
fn an_unknown_host_is_not_blamed_on_tls() {
    let server = Server::plaintext();
    let u = User::new(&server);
    for flags in [&["--plaintext"][..], &[][..]] {
        let mut args = vec!["ping", "--server", "no-such-host.invalid:7302"];
        args.extend_from_slice(flags);
        let mut cmd = u.command(&args);
        cmd.env_remove("GRADEBOOK_PLAINTEXT");
        let out = u.run_with(cmd, "");
        let err = out.fails(3);
        assert!(
            err.contains("could not resolve host 'no-such-host.invalid'"),
            "{err}"
        );
        assert!(!err.contains("--plaintext"), "{err}");
    }
    // A closed port: the server is not running, TLS has nothing to do with it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let mut cmd = u.command(&["ping", "--server", &format!("127.0.0.1:{port}")]);
    cmd.env_remove("GRADEBOOK_PLAINTEXT");
    let out = u.run_with(cmd, "");
    let err = out.fails(3);
    assert!(err.contains("is the server running?"), "{err}");
    assert!(!err.contains("--plaintext"), "{err}");
    // TLS to a plaintext server: there the hint is right.
    let mut cmd = u.command(&["ping"]);
    cmd.env_remove("GRADEBOOK_PLAINTEXT");
    let out = u.run_with(cmd, "");
    assert!(out.fails(3).contains("add --plaintext"), "{}", out.stderr);
}

#[test]
fn the_server_log_has_no_colour_and_sums_refused_connections() {
    let logs = tempfile::tempdir().expect("a log directory");
    let log = logs.path().join("stderr.log");
    let mut server = Serve::new()
        .args(&["--max-connections", "1"])
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .start();
    let addr = server.addr.clone();

    // One connection takes the only slot (its reply proves it is served).
    let mut held = std::net::TcpStream::connect(&addr).expect("connects");
    held.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    held.write_all(b"{\"id\": 1, \"cmd\": \"ping\", \"args\": {}}\n")
        .expect("writes");
    let mut reply = [0u8; 256];
    assert!(held.read(&mut reply).expect("a reply") > 0);
    // The next ones are refused: closed at once.
    for _ in 0..5 {
        let mut s = std::net::TcpStream::connect(&addr).expect("connects");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a timeout");
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf);
    }
    // The count of the second under way is logged at shutdown: no need to
    // wait for the next second.
    server.terminate();
    drop(held);

    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        !text.contains('\x1b'),
        "colour codes in a log file:\n{text}"
    );
    let refused: Vec<&str> = text.lines().filter(|l| l.contains("refused")).collect();
    // One line a second, not one per connection (two if the five
    // straddled a second).
    assert!(
        !refused.is_empty() && refused.len() <= 2,
        "{refused:#?}\n{text}"
    );
    let total: u64 = refused
        .iter()
        .filter_map(|l| {
            let after = l.split("refused ").nth(1)?;
            after.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(total, 5, "{text}");
    assert!(
        refused
            .iter()
            .any(|l| l.contains("in the last second: at the cap of 1")),
        "{text}"
    );
}
