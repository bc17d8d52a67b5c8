//! What a first user of the command line tripped over (issue 9): a pinned
//! fingerprint that loses to the known-servers file, clap errors cut to a
//! line in the shell, wire names in messages, a removal without a
//! question, bare table headers, names sorted by code point, a short
//! password refused only after typing it twice, a DNS failure blamed on
//! TLS, colour codes and one log line per refused connection in the
//! server's log.

mod cli_support;

use cli_support::{Server, User};

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
