//! `gradebook serve` as a process: the listening line, the admin
//! bootstrap, durability across `kill -9`, a clean exit on SIGTERM.

use crate::cli_support;

use std::io::{BufRead, BufReader, Read};

use cli_support::Serve;
use serde_json::json;

#[tokio::test]
async fn the_listening_line_follows_the_spec() {
    let p = Serve::new().start();
    let parts: Vec<&str> = p.line.split_whitespace().collect();
    assert_eq!(parts.len(), 5, "{:?}", p.line);
    assert_eq!(parts[0], "listening");
    assert!(parts[1].starts_with("tcp=127.0.0.1:"));
    let port = parts[1].rsplit(':').next().expect("port");
    assert_ne!(port, "0");
    assert_eq!(parts[2], format!("udp=127.0.0.1:{port}"));
    assert_eq!(parts[3], "tls=off");
    // The web portal, on loopback like the rest with --plaintext.
    assert!(parts[4].starts_with("http=127.0.0.1:"), "{:?}", p.line);
    assert_ne!(parts[4], "http=127.0.0.1:0");
    // Off with --no-http; refused on a public address in plaintext.
    let off = Serve::new().args(&["--no-http"]).start();
    assert_eq!(off.line.split_whitespace().count(), 4, "{:?}", off.line);
    // As from the environment, where an on/off setting takes 1 or true.
    for on in ["1", "true"] {
        let off = Serve::new().env("GRADEBOOK_NO_HTTP", on).start();
        assert_eq!(off.line.split_whitespace().count(), 4, "{:?}", off.line);
    }
    // Set off there, it leaves --http-listen free; set on, it refuses it.
    let on = Serve::new()
        .env("GRADEBOOK_NO_HTTP", "0")
        .args(&["--http-listen", "127.0.0.1:0"])
        .start();
    assert_eq!(on.line.split_whitespace().count(), 5, "{:?}", on.line);
    let both = Serve::new()
        .env("GRADEBOOK_NO_HTTP", "yes")
        .args(&["--http-listen", "127.0.0.1:0"])
        .output();
    assert_eq!(both.status.code(), Some(2));
    let said = String::from_utf8_lossy(&both.stderr);
    assert!(
        said.contains("'--http-listen' cannot be used with '--no-http'"),
        "{said}"
    );
    let refused = Serve::new().args(&["--http-listen", "0.0.0.0:0"]).output();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("loopback"), "{said}");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Serve::new().data(dir.path()).start();
    let mut c = p.admin().await;
    c.call("promotion.create", json!({"name": "P"}))
        .await
        .expect("created");
    let s = c
        .call(
            "student.add",
            json!({"promotion": "P", "first_name": "A", "last_name": "B"}),
        )
        .await
        .expect("added");
    let id = s["id"].as_i64().expect("id");
    // Pipelined writes: every reply read is an acknowledgement.
    for i in 0..200 {
        c.send(
            "grade.add",
            json!({"student": id, "subject": "S", "value": i % 21}),
        )
        .expect("queued");
    }
    for _ in 0..200 {
        assert!(c.recv().await.expect("reply").result.is_ok());
    }
    // SIGKILL right after the last acknowledgement.
    p.child.kill().expect("kill -9");
    p.child.wait().expect("reaped");
    drop(p);

    let p = Serve::new().data(dir.path()).admin_password(None).start();
    let mut c = p.admin().await;
    let grades = c
        .call("grade.list", json!({"student": id}))
        .await
        .expect("list");
    assert_eq!(grades["grades"].as_array().expect("grades").len(), 200);
}

#[tokio::test]
async fn sigterm_stops_the_server_with_status_0() {
    let mut p = Serve::new().start();
    let mut c = p.admin().await;
    c.call("promotion.create", json!({"name": "P"}))
        .await
        .expect("created");
    assert_eq!(p.terminate().code(), Some(0));
}

#[tokio::test]
async fn a_random_admin_password_is_printed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = || {
        Serve::new()
            .data(dir.path())
            .admin_password(None)
            .stderr(std::process::Stdio::piped())
            .start()
    };
    let mut p = serve();
    // The password is on stderr; read it, then stop the server.
    let mut stderr = p.child.stderr.take().expect("stderr");
    let mut reader = BufReader::new(&mut stderr);
    let mut password = None;
    for _ in 0..50 {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("reads") == 0 {
            break;
        }
        if let Some(rest) = line.split("password: ").nth(1) {
            password = Some(rest.trim().to_owned());
            break;
        }
    }
    let password = password.expect("a generated password on stderr");
    assert!(password.len() >= 16, "{password:?}");
    let mut c = p.client().await;
    c.login("admin", &password)
        .await
        .expect("the printed password works");
    drop(c);
    let _ = p.child.kill();
    let _ = p.child.wait();
    drop(p);

    // Second start on the same data: no new password.
    let mut p = serve();
    let _ = p.child.kill();
    let _ = p.child.wait();
    let mut rest = String::new();
    if let Some(mut e) = p.child.stderr.take() {
        let _ = e.read_to_string(&mut rest);
    }
    assert!(!rest.contains("password: "), "printed again: {rest}");
}

#[test]
fn plaintext_refuses_a_public_address_without_insecure_bind() {
    let out = Serve::new().listen("0.0.0.0:0").output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-bind"), "{err}");
}
