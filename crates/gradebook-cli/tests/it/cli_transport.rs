//! The transports of the command line: `--encoding msgpack` over TCP and
//! `--udp` datagrams (with the TCP fallback for replies too large for one)
//! give the same output as JSON over TCP; what UDP refuses, and how.

use crate::cli_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use cli_support::{Out, Server, User};

/// Runs `args` as `u`, whatever GRADEBOOK_ENCODING or GRADEBOOK_UDP the
/// test runner's environment holds.
fn run(u: &User, args: &[&str]) -> Out {
    let mut cmd = u.command(args);
    cmd.env_remove("GRADEBOOK_ENCODING")
        .env_remove("GRADEBOOK_UDP");
    u.run_with(cmd, "")
}

/// Runs `args` with `GRADEBOOK_<name>=value` set.
fn run_env(u: &User, args: &[&str], name: &str, value: &str) -> Out {
    let mut cmd = u.command(args);
    cmd.env_remove("GRADEBOOK_ENCODING")
        .env_remove("GRADEBOOK_UDP")
        .env(name, value);
    u.run_with(cmd, "")
}

/// `args` after `prefix`.
fn with<'a>(prefix: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    prefix.iter().chain(args).copied().collect()
}

/// A promotion with one student and two grades, created through
/// `prefix` (transport flags); returns the student's id as text.
fn create_through(u: &User, prefix: &[&str], promotion: &str) -> String {
    let out = run(
        u,
        &with(
            prefix,
            &["promotion", "create", promotion, "--year", "2026"],
        ),
    );
    assert_eq!(
        out.ok().trim(),
        format!("Created promotion {promotion} (2026).")
    );
    let out = run(
        u,
        &with(
            prefix,
            &["student", "add", promotion, "Ann", "Lee", "--json"],
        ),
    );
    let id = out.json()["id"].as_i64().expect("an id").to_string();
    let out = run(
        u,
        &with(
            prefix,
            &["grade", "add", &id, "Networks", "14,5", "--coef", "2"],
        ),
    );
    assert!(
        out.ok().contains(&format!("for student {id}")),
        "{}",
        out.stdout
    );
    let out = run(
        u,
        &with(prefix, &["grade", "add", &id, "Maths", "ABS", "--json"]),
    );
    assert_eq!(out.json()["value"], "ABS");
    id
}

/// The reads whose output must not depend on the transport.
fn reads(id: &str, promotion: &str) -> Vec<Vec<String>> {
    [
        vec!["student", "show", id, "--json"],
        vec!["student", "show", id],
        vec!["grade", "list", id],
        vec!["promotion", "show", promotion, "--json"],
        vec!["promotion", "average", promotion],
    ]
    .into_iter()
    .map(|a| a.into_iter().map(String::from).collect())
    .collect()
}

/// Asserts that each read prints the same through `prefix` as through JSON
/// over TCP.
#[track_caller]
fn same_output(u: &User, prefix: &[&str], id: &str, promotion: &str) {
    for args in reads(id, promotion) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let expected = run(u, &args);
        let got = run(u, &with(prefix, &args));
        assert_eq!(
            got.ok(),
            expected.ok(),
            "{prefix:?} {args:?} differs\nstderr: {}",
            got.stderr
        );
    }
}

#[test]
fn msgpack_gives_the_same_results_as_json() {
    let server = Server::plaintext();
    let u = User::admin(&server);

    let msgpack = ["--encoding", "msgpack"];
    let id = create_through(&u, &msgpack, "RT1");
    let shown = run(
        &u,
        &["--encoding", "msgpack", "student", "show", &id, "--json"],
    )
    .json();
    assert_eq!(shown["first_name"], "Ann");
    assert_eq!(shown["promotion"], "RT1");
    assert_eq!(shown["grades"][0]["value"], 14.5);
    assert_eq!(shown["grades"][1]["value"], "ABS");
    same_output(&u, &msgpack, &id, "RT1");

    // The same data created over JSON reads the same (but for its ids and
    // promotion).
    let json_id = create_through(&u, &[], "RT2");
    let a = run(&u, &["promotion", "show", "RT1", "--json"]).json();
    let b = run(&u, &["promotion", "show", "RT2", "--json"]).json();
    assert_eq!(a["students"].as_array().map(Vec::len), Some(1));
    assert_eq!(a["students"][0]["average"], b["students"][0]["average"]);
    assert_ne!(id, json_id);

    // The flag also comes after the command, or from the environment.
    let args = ["student", "show", &id, "--json"];
    let expected = run(&u, &args);
    let after = run(&u, &with(&args, &["--encoding", "msgpack"]));
    assert_eq!(after.ok(), expected.ok());
    let env = run_env(&u, &args, "GRADEBOOK_ENCODING", "msgpack");
    assert_eq!(env.ok(), expected.ok());

    // The server's errors come through MessagePack too.
    let out = run(&u, &["--encoding", "msgpack", "student", "show", "999"]);
    assert!(out.fails(1).contains("not_found"), "{}", out.stderr);

    // A shell in MessagePack (connection flags given as flags, not in the
    // environment: its lines need not repeat them).
    let mut cmd = u.command(&["--plaintext", "--encoding", "msgpack", "shell"]);
    cmd.env_remove("GRADEBOOK_PLAINTEXT")
        .env_remove("GRADEBOOK_ENCODING")
        .env_remove("GRADEBOOK_UDP");
    let script = format!("student show {id} --json\n");
    let out = u.run_with(cmd, &script);
    assert_eq!(out.ok(), expected.ok());
    // A line may not switch the shell's encoding.
    let mut cmd = u.command(&["shell"]);
    cmd.env_remove("GRADEBOOK_ENCODING")
        .env_remove("GRADEBOOK_UDP");
    let out = u.run_with(cmd, "--encoding msgpack whoami\n");
    assert!(out.fails(2).contains("--encoding"), "{}", out.stderr);

    let out = run(&u, &["--encoding", "xml", "ping"]);
    assert!(out.fails(2).contains("xml"), "{}", out.stderr);
}

/// A TCP proxy to `target` that records what clients send.
fn recording_proxy(target: &str) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("an address").to_string();
    let sent: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let target = target.to_owned();
    let record = sent.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&target) else {
                continue;
            };
            let index = {
                let mut all = record.lock().expect("lock");
                all.push(Vec::new());
                all.len() - 1
            };
            let (Ok(mut client_read), Ok(mut server_write)) =
                (client.try_clone(), server.try_clone())
            else {
                continue;
            };
            let record = record.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = client_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    record.lock().expect("lock")[index].extend_from_slice(&buf[..n]);
                    if server_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
            });
        }
    });
    (addr, sent)
}

#[test]
fn msgpack_is_what_crosses_the_wire() {
    let server = Server::plaintext();
    let u = User::new(&server);
    let (proxy, sent) = recording_proxy(&server.addr);
    let out = u.run_stdin(
        &["--server", &proxy, "login", "admin"],
        &format!("{}\n", cli_support::ADMIN_PASSWORD),
    );
    out.ok();
    run(
        &u,
        &[
            "--server",
            &proxy,
            "--encoding",
            "msgpack",
            "promotion",
            "list",
        ],
    )
    .ok();
    let all = sent.lock().expect("lock");
    let bytes = all.last().expect("a connection");
    // The switch, still in JSON, then length-prefixed MessagePack frames.
    let newline = bytes.iter().position(|b| *b == b'\n').expect("a JSON line");
    let hello: serde_json::Value = serde_json::from_slice(&bytes[..newline]).expect("JSON");
    assert_eq!(hello["cmd"], "hello");
    assert_eq!(hello["args"]["encoding"], "msgpack");
    let frame = &bytes[newline + 1..];
    assert!(frame.len() > 4, "{frame:?}");
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(frame.len(), 4 + len, "one frame: {frame:?}");
    assert!(
        (0x80..=0x8f).contains(&frame[4]) || frame[4] == 0xde,
        "a MessagePack map: {frame:?}"
    );
    assert!(
        frame.windows(14).any(|w| w == b"promotion.list"),
        "{frame:?}"
    );
}

#[test]
fn udp_commands_use_the_saved_token() {
    let server = Server::plaintext();
    let u = User::new(&server);

    // Not logged in: the same words as over TCP.
    let out = run(&u, &["--udp", "--plaintext", "promotion", "list"]);
    assert!(out.fails(1).contains("not logged in"), "{}", out.stderr);

    // Logged in over TCP; the saved token goes in the datagrams.
    u.login_admin();
    let udp = ["--udp", "--plaintext"];
    let id = create_through(&u, &udp, "RT1");
    let shown = run(
        &u,
        &["--udp", "--plaintext", "student", "show", &id, "--json"],
    )
    .json();
    assert_eq!(shown["grades"].as_array().map(Vec::len), Some(2));
    same_output(&u, &udp, &id, "RT1");
    same_output(
        &u,
        &["--udp", "--plaintext", "--encoding", "msgpack"],
        &id,
        "RT1",
    );
    assert!(
        run(&u, &["--udp", "--plaintext", "whoami"])
            .ok()
            .starts_with("admin (admin)")
    );
    assert!(
        run(&u, &["--udp", "--plaintext", "ping"])
            .ok()
            .starts_with("pong from")
    );

    // From the environment too.
    let args = ["student", "show", &id];
    let env = run_env(&u, &args, "GRADEBOOK_UDP", "true");
    assert_eq!(env.ok(), run(&u, &args).ok());

    // The server's errors, and a write refused, as over TCP.
    let out = run(&u, &["--udp", "--plaintext", "student", "show", "999"]);
    assert!(out.fails(1).contains("not_found"), "{}", out.stderr);
    let out = run(&u, &["--udp", "--plaintext", "promotion", "create", "RT1"]);
    assert!(out.fails(1).contains("conflict"), "{}", out.stderr);

    // Logging out over UDP closes the saved session.
    run(&u, &["--udp", "--plaintext", "logout"]).ok();
    let out = run(&u, &["--udp", "--plaintext", "whoami"]);
    assert!(out.fails(1).contains("not logged in"), "{}", out.stderr);
}

#[test]
fn a_reply_too_large_for_a_datagram_comes_over_tcp() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    run(&u, &["promotion", "create", "BIG"]).ok();
    let mut csv = String::from("first_name,last_name,number\n");
    for i in 0..50 {
        csv.push_str(&format!("Student{i},Family{i},2026{i:04}\n"));
    }
    let file = u.file("big.csv", csv.as_bytes());
    run(&u, &["import", "students", &file, "--promotion", "BIG"]).ok();

    let args = ["promotion", "show", "BIG", "--json"];
    let expected = run(&u, &args);
    assert!(expected.ok().len() > 1_200, "{}", expected.stdout.len());
    for prefix in [
        &["--udp", "--plaintext"][..],
        &["--udp", "--plaintext", "--encoding", "msgpack"],
    ] {
        let got = run(&u, &with(prefix, &args));
        assert_eq!(got.ok(), expected.ok(), "{prefix:?}: {}", got.stderr);
        let got = run(&u, &with(prefix, &["promotion", "show", "BIG"]));
        assert_eq!(got.ok(), run(&u, &["promotion", "show", "BIG"]).ok());
    }
    let list = run(&u, &["--udp", "--plaintext", "student", "list", "BIG"]);
    assert!(list.ok().contains("Family49"), "{}", list.stdout);
}

#[test]
fn udp_refuses_what_does_not_fit_datagrams() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    for args in [
        &["--udp", "shell"][..],
        &["shell", "--udp"],
        &["--udp", "import", "students", "x.csv", "--promotion", "P"],
        &["--udp", "export", "promotion", "P"],
    ] {
        let out = run(&u, args);
        let err = out.fails(2);
        assert!(
            err.contains("--udp") && err.contains("without --udp"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    // Nor on a shell's line.
    let out = u.run_with(
        {
            let mut cmd = u.command(&["shell"]);
            cmd.env_remove("GRADEBOOK_UDP")
                .env_remove("GRADEBOOK_ENCODING");
            cmd
        },
        "--udp whoami\n",
    );
    assert!(out.fails(2).contains("--udp"), "{}", out.stderr);
}

#[test]
fn over_udp_a_tls_server_refuses_all_but_ping() {
    let server = Server::tls();
    let u = User::new(&server);
    let cert = server.cert();
    let fp = run(&u, &["fingerprint", cert.to_str().expect("utf-8")])
        .ok()
        .trim()
        .to_owned();
    run(&u, &["--accept-fingerprint", &fp, "ping"]).ok();
    u.login_admin();

    let out = run(&u, &["--udp", "student", "show", "1"]);
    let err = out.fails(1);
    assert!(err.contains("insecure_transport"), "{err}");
    assert!(err.contains("plaintext"), "{err}");
    // Logging in over UDP is refused the same way.
    let mut cmd = u.command(&["--udp", "login", "admin"]);
    cmd.env_remove("GRADEBOOK_UDP")
        .env_remove("GRADEBOOK_ENCODING");
    let out = u.run_with(cmd, &format!("{}\n", cli_support::ADMIN_PASSWORD));
    assert!(
        out.fails(1).contains("insecure_transport"),
        "{}",
        out.stderr
    );
    // The session saved over TCP still works there.
    assert!(run(&u, &["whoami"]).ok().starts_with("admin (admin)"));
    // ping and hello are served over UDP.
    assert!(run(&u, &["--udp", "ping"]).ok().starts_with("pong from"));
    assert!(run(&u, &["--udp", "hello"]).ok().contains("protocol"));
}

#[test]
fn no_reply_over_udp_is_a_connection_failure() {
    let server = Server::plaintext();
    let u = User::new(&server);
    // A UDP port that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds");
    let addr = silent.local_addr().expect("an address").to_string();
    let out = run(&u, &["--udp", "--plaintext", "--server", &addr, "ping"]);
    let err = out.fails(3);
    assert!(err.contains("no reply") && err.contains("UDP"), "{err}");
    let mut buf = [0u8; 2048];
    let (n, _) = silent.recv_from(&mut buf).expect("the request came");
    assert!(buf[..n].windows(6).any(|w| w == b"\"ping\""), "{n}");
}
