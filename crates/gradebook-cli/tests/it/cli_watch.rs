//! `gradebook watch` as a student runs it, over TCP and over QUIC: each
//! new grade printed as it is published, with the average now; after a
//! server restart it reconnects by itself and resumes, missing nothing and
//! showing nothing twice.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::cli_support;

use cli_support::{Serve, User};
use serde_json::json;

const PASSWORD: &str = "password-of-the-tests";

/// The lines a running `gradebook watch` prints, read on a thread.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watcher {
    fn start(user: &User, args: &[&str]) -> Watcher {
        let mut child = user
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gradebook watch starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watcher {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; panics after 30 s.
    fn expect(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(e) => panic!("no line with {text:?} ({e}); got {:?}", self.seen),
            }
        }
    }

    /// Every line printed within `wait`, after those seen.
    fn rest(&mut self, wait: Duration) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(wait) {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_sees_new_grades_live_across_a_server_restart() {
    live_across_a_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_a_student_sees_new_grades_live_across_a_server_restart() {
    live_across_a_restart(true).await;
}

/// A server started the way a test wants it: plaintext, or TLS (with
/// QUIC) for `quic`, with `args`.
fn serve(quic: bool, dir: &std::path::Path, args: &[&str]) -> Serve {
    let serve = Serve::new().data(dir).args(args);
    if quic { serve.tls() } else { serve }
}

/// A student watches with `gradebook watch` (with `--quic` for `quic`)
/// while grades are published, and across a restart of the server.
async fn live_across_a_restart(quic: bool) {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut server = serve(quic, dir.path(), &[]).start();
    let mut admin = server.admin().await;
    admin
        .call(
            "promotion.create",
            json!({"name": "RT2", "publication": "manual"}),
        )
        .await
        .expect("promotion");
    let me = admin
        .call(
            "student.add",
            json!({"promotion": "RT2", "first_name": "Ada", "last_name": "L"}),
        )
        .await
        .expect("student")["id"]
        .as_i64()
        .expect("id");
    admin
        .call(
            "user.create",
            json!({"username": "ada", "password": PASSWORD, "role": "student", "student": me}),
        )
        .await
        .expect("account");
    let student = User::new(&server);
    let mut args = Vec::new();
    if quic {
        // The certificate accepted once (over QUIC), then QUIC on the
        // port the server chose.
        let cert = server.cert();
        let cert = cert.to_str().expect("utf-8");
        let fp = student.run(&["fingerprint", cert]).ok().trim().to_owned();
        let port = server.quic.as_deref().and_then(|q| q.rsplit(':').next());
        let port = port.expect("a quic= on the listening line").to_owned();
        args.extend(["--quic".to_owned(), "--quic-port".to_owned(), port]);
        let mut ping: Vec<&str> = args.iter().map(String::as_str).collect();
        ping.extend(["ping", "--accept-fingerprint", &fp]);
        student.run(&ping).ok();
    }
    student.login("ada", PASSWORD);
    let mut watch_args: Vec<&str> = args.iter().map(String::as_str).collect();
    watch_args.push("watch");
    let mut watch = Watcher::start(&student, &watch_args);
    watch.expect(&format!("Watching student {me}"));

    // Hidden, then published: only the publication shows.
    let g = admin
        .call(
            "grade.add",
            json!({"student": me, "subject": "Networks", "value": 14.5, "coefficient": 2, "label": "Midterm"}),
        )
        .await
        .expect("grade");
    admin
        .call(
            "grade.publish",
            json!({"promotion": "RT2", "ids": [g["id"]]}),
        )
        .await
        .expect("published");
    let line = watch.expect("New grade in Networks");
    assert_eq!(
        line,
        "New grade in Networks: 14.50 ×2 (Midterm), average now 14.50"
    );

    // The server restarts on the same addresses and data; a grade
    // published while it was away from the watcher is shown once it is
    // back.
    let addr = server.addr.clone();
    let quic_listen = server.quic.clone().unwrap_or_default();
    server.terminate();
    drop(server);
    let again: &[&str] = if quic {
        &["--quic-listen", &quic_listen]
    } else {
        &[]
    };
    let server = serve(quic, dir.path(), again).listen(&addr).start();
    let mut admin = server.admin().await;
    admin
        .call(
            "promotion.update",
            json!({"name": "RT2", "publication": "immediate"}),
        )
        .await
        .expect("immediate");
    admin
        .call(
            "grade.add",
            json!({"student": me, "subject": "Maths", "value": 9, "label": "Quiz"}),
        )
        .await
        .expect("grade");
    let line = watch.expect("New grade in Maths");
    assert_eq!(
        line,
        "New grade in Maths: 9.00 ×1 (Quiz), average now 12.67"
    );
    admin
        .call("promotion.lock", json!({"name": "RT2"}))
        .await
        .expect("locked");
    watch.expect("Promotion RT2 locked");
    let all = watch.rest(Duration::from_millis(500));
    let midterm = all.iter().filter(|l| l.contains("14.50 ×2")).count();
    assert_eq!(midterm, 1, "shown once: {all:?}");
    assert_eq!(
        all.iter().filter(|l| l.contains("9.00 ×1")).count(),
        1,
        "{all:?}"
    );
}

#[test]
fn watch_says_what_it_needs() {
    let server = cli_support::Server::plaintext();
    let admin = User::admin(&server);
    let out = admin.run(&["watch", "--udp"]);
    assert!(out.fails(2).contains("watch needs a connection"), "{out:?}");
}
