//! What a first user of the command line tripped over (issue 9): a pinned
//! fingerprint that loses to the known-servers file, clap errors cut to a
//! line in the shell, wire names in messages, a removal without a
//! question, bare table headers, names sorted by code point, a short
//! password refused only after typing it twice, a DNS failure blamed on
//! TLS, colour codes and one log line per refused connection in the
//! server's log.

mod cli_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use cli_support::{ADMIN_PASSWORD, Server, User};

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
    let data = tempfile::tempdir().expect("a data directory");
    let log = data.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradebook"))
        .args(["serve", "--plaintext", "--listen", "127.0.0.1:0"])
        .args(["--max-connections", "1", "--data"])
        .arg(data.path().join("data"))
        .env("GRADEBOOK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("tcp="))
        .unwrap_or_else(|| panic!("no tcp= in {line:?}"))
        .to_owned();

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
    std::thread::sleep(Duration::from_millis(2500));
    let _ = child.kill();
    let _ = child.wait();
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
