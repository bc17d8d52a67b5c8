//! `--quic`: one-shot commands, the shell and the benchmark over QUIC,
//! with the server's certificate trusted on first use and remembered as
//! over TCP; `gradebook serve` announcing (or not) its QUIC address.

use crate::cli_support;

use cli_support::{ADMIN_PASSWORD, Serve, Server, User};

/// `--quic --quic-port PORT` for `server` (its QUIC port is not the TCP
/// port + 1 when both were picked by the system).
fn quic_flags(server: &Server) -> Vec<String> {
    let quic = server
        .quic
        .as_deref()
        .expect("a quic= on the listening line");
    let port = quic.rsplit(':').next().expect("a port").to_owned();
    vec!["--quic".into(), "--quic-port".into(), port]
}

fn run(u: &User, server: &Server, args: &[&str]) -> cli_support::Out {
    let mut all: Vec<String> = quic_flags(server);
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    u.run(&all)
}

#[test]
fn the_listening_line_ends_with_http_then_quic_when_tls_is_on() {
    let server = Server::tls();
    let parts: Vec<&str> = server.line.split_whitespace().collect();
    assert_eq!(parts.len(), 6, "{:?}", server.line);
    assert_eq!(parts[3], "tls=on");
    assert!(parts[4].starts_with("http=127.0.0.1:"), "{:?}", server.line);
    assert!(parts[5].starts_with("quic=127.0.0.1:"), "{:?}", server.line);
    assert_ne!(parts[5], "quic=127.0.0.1:0");
    // Off with --no-quic, and never with --plaintext.
    let off = Serve::new().tls().args(&["--no-quic"]).start();
    assert!(!off.line.contains("quic="), "{:?}", off.line);
    assert!(!Server::plaintext().line.contains("quic="));
    let refused = Serve::new()
        .args(&["--quic-listen", "127.0.0.1:0"])
        .output();
    assert!(!refused.status.success());
}

#[test]
fn one_shot_commands_over_quic_trust_the_server_as_over_tcp() {
    let server = Server::tls();
    let u = User::new(&server);
    let cert = server.cert();
    let fp = u
        .run(&["fingerprint", cert.to_str().expect("utf-8")])
        .ok()
        .trim()
        .to_owned();
    // Unknown server: nothing sent, the fingerprint shown.
    let err = run(&u, &server, &["ping"]).fails(3).to_owned();
    assert!(err.contains(&fp), "{err}");
    // Accepted once over QUIC, remembered for TCP too (same certificate,
    // same --server key).
    let out = run(&u, &server, &["ping", "--accept-fingerprint", &fp]);
    assert!(out.ok().starts_with("pong from"), "{}", out.stdout);
    u.run(&["ping"]).ok();

    let out = u.run_stdin(
        &[
            "--quic",
            "--quic-port",
            server
                .quic
                .as_deref()
                .and_then(|q| q.rsplit(':').next())
                .expect("port"),
            "login",
            "admin",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(out.ok().contains("Logged in"), "{}", out.stdout);
    run(
        &u,
        &server,
        &["promotion", "create", "RT2", "--year", "2026"],
    )
    .ok();
    let s = run(
        &u,
        &server,
        &["student", "add", "RT2", "Alice", "Dupont", "--json"],
    )
    .json();
    let id = s["id"].as_i64().expect("an id").to_string();
    run(
        &u,
        &server,
        &[
            "grade",
            "add",
            &id,
            "Networks",
            "14.5",
            "--coefficient",
            "2",
        ],
    )
    .ok();
    run(&u, &server, &["grade", "add", &id, "Maths", "11"]).ok();
    let avg = run(&u, &server, &["student", "average", &id, "--json"]).json();
    assert!((avg["average"].as_f64().expect("a number") - 40.0 / 3.0).abs() < 1e-9);
    // The session saved over QUIC works over TCP, and back.
    let list = u.run(&["promotion", "list", "--json"]).json();
    assert_eq!(list["promotions"][0]["name"], "RT2");
    // MessagePack over QUIC prints the same.
    let again = run(
        &u,
        &server,
        &["--encoding", "msgpack", "student", "average", &id, "--json"],
    )
    .json();
    assert_eq!(again, avg);
    // An import needs ordered requests on one TCP connection.
    let file = u.file("s.csv", b"first_name,last_name\nBob,Martin\n");
    let refused = run(
        &u,
        &server,
        &["import", "students", &file, "--promotion", "RT2"],
    );
    assert!(refused.fails(2).contains("--quic"), "{}", refused.stderr);
}

#[test]
fn the_shell_and_the_benchmark_over_quic() {
    let server = Server::tls();
    let u = User::new(&server);
    let cert = server.cert();
    let fp = u
        .run(&["fingerprint", cert.to_str().expect("utf-8")])
        .ok()
        .trim()
        .to_owned();
    run(&u, &server, &["ping", "--accept-fingerprint", &fp]).ok();
    let mut args = quic_flags(&server);
    args.push("shell".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let script =
        format!("login admin\n{ADMIN_PASSWORD}\npromotion create P\npromotion list\nwhoami\n");
    let out = u.run_stdin(&args, &script);
    let stdout = out.ok();
    assert!(stdout.contains("admin (admin)"), "{stdout}");
    assert!(stdout.contains('P'), "{stdout}");

    let mut args = quic_flags(&server);
    for a in [
        "bench",
        "--json",
        "--password",
        ADMIN_PASSWORD,
        "-c",
        "2",
        "-n",
        "200",
        "--promotions",
        "1",
        "--students",
        "3",
        "--grades",
        "2",
        "--workload",
        "average",
    ] {
        args.push(a.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = u.run(&args).json();
    assert_eq!(report["quic"], true, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["requests"], 200, "{report}");
}
