//! TLS trust: on first use like ssh (the fingerprint shown and asked about,
//! or given with --accept-fingerprint), remembered in the known-servers
//! file, and a changed certificate refused loudly; or a certificate
//! authority with --ca-cert.

use crate::cli_support;

use cli_support::{ADMIN_PASSWORD, Server, User};

fn fingerprint(u: &User, server: &Server) -> String {
    let cert = server.cert();
    u.run(&["fingerprint", cert.to_str().expect("utf-8")])
        .ok()
        .trim()
        .to_owned()
}

fn known_servers(u: &User) -> Option<String> {
    std::fs::read_to_string(u.config_dir().join("known_servers")).ok()
}

#[test]
fn an_unknown_server_is_trusted_with_its_fingerprint() {
    let server = Server::tls();
    let u = User::new(&server);
    let fp = fingerprint(&u, &server);
    assert!(fp.starts_with("SHA256:") && fp.len() == 7 + 64, "{fp}");

    // Nothing answers the question: no connection, and the fingerprint shown.
    let out = u.run(&["ping"]);
    let err = out.fails(3);
    assert!(err.contains(&fp), "{err}");
    assert!(err.contains("not trusted"), "{err}");
    assert!(known_servers(&u).is_none());

    // A fingerprint that is not the server's.
    let wrong = format!("SHA256:{}", "ab".repeat(32));
    let out = u.run(&["ping", "--accept-fingerprint", &wrong]);
    assert!(out.fails(3).contains("not connecting"), "{}", out.stderr);
    assert!(known_servers(&u).is_none());

    // The right one, typed in capitals with colons as some tools print it.
    let hex = fp.trim_start_matches("SHA256:").to_uppercase();
    let pairs: Vec<String> = hex
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let typed = format!("SHA256:{}", pairs.join(":"));
    let out = u.run(&["ping", "--accept-fingerprint", &typed]);
    assert!(out.ok().starts_with("pong from"), "{}", out.stdout);
    let known = known_servers(&u).expect("the known-servers file");
    assert!(known.contains(&format!("{} {fp}", server.addr)), "{known}");

    // Remembered: no flag needed any more.
    u.run(&["ping"]).ok();
    u.login_admin();
    assert!(u.run(&["whoami"]).ok().starts_with("admin (admin)"));
}

#[test]
fn an_unknown_server_is_trusted_by_answering_yes() {
    let server = Server::tls();
    let u = User::new(&server);
    let fp = fingerprint(&u, &server);

    let out = u.run_stdin(&["login", "admin"], &format!("n\n{ADMIN_PASSWORD}\n"));
    let err = out.fails(3);
    assert!(err.contains(&fp) && err.contains("(y/N)"), "{err}");
    assert!(known_servers(&u).is_none());

    // The question, then the password, both from standard input.
    let out = u.run_stdin(&["login", "admin"], &format!("y\n{ADMIN_PASSWORD}\n"));
    assert!(out.ok().contains("Logged in"), "{}", out.stdout);
    assert!(out.stderr.contains("added to"), "{}", out.stderr);
    assert!(known_servers(&u).is_some_and(|k| k.contains(&fp)));
    u.run(&["promotion", "create", "P"]).ok();
}

#[test]
fn a_changed_certificate_is_refused_naming_the_file_to_edit() {
    let server = Server::tls();
    let u = User::new(&server);
    let fp = fingerprint(&u, &server);
    u.run(&["ping", "--accept-fingerprint", &fp]).ok();
    u.login_admin();

    // The certificate the client remembers is not the one the server has
    // now (as after a new certificate, or someone in the middle).
    let path = u.config_dir().join("known_servers");
    let known = std::fs::read_to_string(&path).expect("known servers");
    let other = format!("SHA256:{}", "0".repeat(64));
    std::fs::write(&path, known.replace(&fp, &other)).expect("writes");

    let out = u.run(&["promotion", "list"]);
    let err = out.fails(3);
    assert!(err.contains("has CHANGED"), "{err}");
    assert!(err.contains(&other) && err.contains(&fp), "{err}");
    assert!(
        err.contains(&path.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains("remove line 2"), "{err}");
    assert!(out.stdout.is_empty());
    // Still refused on the next try: nothing was changed by the refusal.
    u.run(&["ping"]).fails(3);
    assert!(
        std::fs::read_to_string(&path)
            .expect("reads")
            .contains(&other)
    );

    // A certificate authority instead of trust on first use.
    let cert = server.cert();
    let out = u.run(&[
        "promotion",
        "list",
        "--ca-cert",
        cert.to_str().expect("utf-8"),
    ]);
    out.ok();

    // Accepting the new fingerprint explicitly replaces the entry.
    u.run(&["ping", "--accept-fingerprint", &fp]).ok();
    u.run(&["ping"]).ok();
    assert!(
        !std::fs::read_to_string(&path)
            .expect("reads")
            .contains(&other)
    );
}

#[test]
fn plaintext_and_tls_mismatches_fail_with_exit_code_3() {
    let server = Server::tls();
    let u = User::new(&server);
    let out = u.run(&["ping", "--plaintext"]);
    assert!(
        out.fails(3).contains("leave out --plaintext"),
        "{}",
        out.stderr
    );
    let out = u.run(&["ping", "--ca-cert", "/nonexistent/ca.pem"]);
    assert!(
        out.fails(3).contains("/nonexistent/ca.pem"),
        "{}",
        out.stderr
    );
}
