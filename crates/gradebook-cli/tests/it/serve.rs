//! `gradebook serve` as a process: the listening line, the admin
//! bootstrap, durability across `kill -9`, a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gradebook_client::{Client, ConnectOptions};
use serde_json::json;

const PASSWORD: &str = "a-test-admin-password";

/// A server process; killed when dropped.
struct Proc {
    child: Child,
    addr: String,
    line: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data: &Path, extra: &[&str], admin_password: Option<&str>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gradebook"));
    cmd.args(["serve", "--plaintext", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env_remove("GRADEBOOK_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = admin_password {
        cmd.env("GRADEBOOK_ADMIN_PASSWORD", p);
    }
    let mut child = cmd.spawn().expect("the server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the listening line");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("tcp="))
        .unwrap_or_else(|| panic!("no tcp= in {line:?}"))
        .to_owned();
    Proc { child, addr, line }
}

async fn admin(addr: &str) -> Client {
    let mut c = Client::connect(&ConnectOptions::plaintext(addr))
        .await
        .expect("connects");
    c.login("admin", PASSWORD).await.expect("logs in");
    c
}

#[tokio::test]
async fn the_listening_line_follows_the_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = serve(dir.path(), &[], Some(PASSWORD));
    let parts: Vec<&str> = p.line.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "{:?}", p.line);
    assert_eq!(parts[0], "listening");
    assert!(parts[1].starts_with("tcp=127.0.0.1:"));
    let port = parts[1].rsplit(':').next().expect("port");
    assert_ne!(port, "0");
    assert_eq!(parts[2], format!("udp=127.0.0.1:{port}"));
    assert_eq!(parts[3], "tls=off");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = serve(dir.path(), &[], Some(PASSWORD));
    let mut c = admin(&p.addr).await;
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

    let p = serve(dir.path(), &[], None);
    let mut c = admin(&p.addr).await;
    let grades = c
        .call("grade.list", json!({"student": id}))
        .await
        .expect("list");
    assert_eq!(grades["grades"].as_array().expect("grades").len(), 200);
}

#[tokio::test]
async fn sigterm_stops_the_server_with_status_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = serve(dir.path(), &[], Some(PASSWORD));
    let mut c = admin(&p.addr).await;
    c.call("promotion.create", json!({"name": "P"}))
        .await
        .expect("created");
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut waited = 0;
    let code = loop {
        if let Some(s) = p.child.try_wait().expect("waits") {
            break s;
        }
        assert!(waited < 200, "the server did not stop within 20 s");
        waited += 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code.code(), Some(0));
}

#[tokio::test]
async fn a_random_admin_password_is_printed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = serve(dir.path(), &[], None);
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
    let mut c = Client::connect(&ConnectOptions::plaintext(p.addr.as_str()))
        .await
        .expect("connects");
    c.login("admin", &password)
        .await
        .expect("the printed password works");
    drop(c);
    let _ = p.child.kill();
    let _ = p.child.wait();
    drop(p);

    // Second start on the same data: no new password.
    let mut p = serve(dir.path(), &[], None);
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
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_gradebook"))
        .args(["serve", "--plaintext", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .env("GRADEBOOK_ADMIN_PASSWORD", PASSWORD)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-bind"), "{err}");
}
