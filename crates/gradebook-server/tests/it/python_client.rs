//! The standard-library Python client of `examples/python/client.py`, run as
//! a subprocess against a real server: what it prints must be the averages
//! worked out by hand below, and what it created must really be in the
//! server. Needs `python3` on the PATH (`.ci/run` installs it).

use crate::common;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{ADMIN_PASSWORD, TestServer, ok};
use serde_json::{Value, json};

/// How long one run of the script may take (it logs in once and sends a
/// few dozen requests; the bound only keeps a hung run from hanging CI).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/python/client.py")
}

/// Runs the client with `args` and the admin password in
/// `GRADEBOOK_PASSWORD`; returns its exit status and output.
async fn run_client(server: &TestServer, args: &[&str]) -> Output {
    run_client_as(server, args, ADMIN_PASSWORD).await
}

async fn run_client_as(server: &TestServer, args: &[&str], password: &str) -> Output {
    let port = server.addr.port().to_string();
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(script())
        .args(["--host", "127.0.0.1", "--port", &port, "--user", "admin"])
        .args(args)
        .env("GRADEBOOK_PASSWORD", password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "python3 is not installed, and this test runs examples/python/client.py with it: \
             install it (e.g. apt-get install python3; .ci/run does)"
        ),
        Err(e) => panic!("cannot run python3: {e}"),
    };
    tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .expect("the Python client finishes in time")
        .expect("the Python client's output can be read")
}

/// Stdout as text, asserting that the run succeeded.
fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python client failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// The words of the line of `section` that starts with `label` (after the
/// indentation), e.g. ["Ada", "Lovelace", "14.83"].
fn line_in<'a>(stdout: &'a str, section: &str, label: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .skip_while(|l| !l.starts_with(section))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line '{label}' under '{section}' in:\n{stdout}"));
    line.split_whitespace().collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// The data the script creates, and its averages worked out by hand:
///
/// | student | grades (value × coefficient)        | average                    |
/// |---------|-------------------------------------|----------------------------|
/// | Ada     | 16 × 2, 12.5 × 1, EXC (not counted) | 44.5 / 3 = 14.8333… → 14.83 |
/// | Alan    | 11 × 2, ABS × 1 (counts as 0)       | 22 / 3 = 7.3333… → 7.33     |
/// | Grace   | 15 × 2, 13 × 1, ATT (pending)       | 43 / 3 = 14.3333… → 14.33   |
///
/// Promotion: (44.5 + 22 + 43) / 3 / 3 = 109.5 / 9 = 12.1666… → 12.17; sorted
/// 7.33, 14.33, 14.83: median 14.33, q1 (7.33 + 14.33) / 2 = 65/6 → 10.83,
/// q3 (14.33 + 14.83) / 2 = 87.5/6 → 14.58; population stddev
/// √(((22−36.5)² + (43−36.5)² + (44.5−36.5)²) / 9 / 3) = √(316.5/27) → 3.42.
const ADA: f64 = 44.5 / 3.0;
const ALAN: f64 = 22.0 / 3.0;
const GRACE: f64 = 43.0 / 3.0;

/// Checks the printed averages against the hand computation.
fn assert_printed_averages(stdout: &str, promotion: &str) {
    let averages = "Student averages:";
    assert_eq!(
        line_in(stdout, averages, "Ada Lovelace"),
        ["Ada", "Lovelace", "14.83"]
    );
    assert_eq!(
        line_in(stdout, averages, "Alan Turing"),
        ["Alan", "Turing", "7.33"]
    );
    let grace = line_in(stdout, averages, "Grace Hopper");
    assert_eq!(grace[..3], ["Grace", "Hopper", "14.33"]);
    assert!(
        grace.contains(&"(incomplete:"),
        "Grace has a pending grade: {grace:?}"
    );

    let heading = format!("Promotion {promotion}: average 12.17 over 3 of 3 students");
    assert!(stdout.contains(&heading), "no '{heading}' in:\n{stdout}");
    assert_eq!(
        line_in(stdout, &format!("Promotion {promotion}:"), "min"),
        [
            "min", "7.33", "q1", "10.83", "median", "14.33", "q3", "14.58", "max", "14.83",
            "stddev", "3.42"
        ]
    );
    // Ranks: Ada, Grace, Alan.
    assert_eq!(
        line_in(stdout, "Ranking:", "1."),
        ["1.", "Ada", "Lovelace", "14.83"]
    );
    assert_eq!(
        line_in(stdout, "Ranking:", "2."),
        ["2.", "Grace", "Hopper", "14.33"]
    );
    assert_eq!(
        line_in(stdout, "Ranking:", "3."),
        ["3.", "Alan", "Turing", "7.33"]
    );
}

/// Checks through the Rust client that the promotion the script created is
/// really there, with its students, grades and averages.
async fn assert_stored(server: &TestServer, promotion: &str) {
    let mut c = server.admin().await;
    let p = ok(&mut c, "promotion.show", json!({ "name": promotion })).await;
    assert_eq!(p["name"], promotion);
    let students = p["students"].as_array().expect("students");
    let names: Vec<String> = students
        .iter()
        .map(|s| format!("{} {}", s["first_name"], s["last_name"]).replace('"', ""))
        .collect();
    assert_eq!(names, ["Ada Lovelace", "Grace Hopper", "Alan Turing"]);
    let expected = [(ADA, 1, false), (GRACE, 2, true), (ALAN, 3, false)];
    for (s, (average, rank, incomplete)) in students.iter().zip(expected) {
        assert!((f(&s["average"]) - average).abs() < 1e-9, "{s}");
        assert_eq!(s["rank"], rank, "{s}");
        assert_eq!(s["incomplete"], incomplete, "{s}");
    }

    // Every grade arrived, with its coefficient and special marks.
    let ada = students[0]["id"].clone();
    let grades = ok(&mut c, "grade.list", json!({ "student": ada })).await;
    let grades: Vec<(String, Value, f64)> = grades["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .map(|g| {
            (
                g["subject"].as_str().expect("subject").to_owned(),
                g["value"].clone(),
                f(&g["coefficient"]),
            )
        })
        .collect();
    assert_eq!(
        grades,
        [
            ("Networks".to_owned(), json!(16.0), 2.0),
            ("Maths".to_owned(), json!(12.5), 1.0),
            ("Physics".to_owned(), json!("EXC"), 1.0),
        ]
    );

    let stats = ok(&mut c, "promotion.average", json!({ "name": promotion })).await;
    assert!((f(&stats["average"]) - (ADA + ALAN + GRACE) / 3.0).abs() < 1e-9);
    assert_eq!(stats["count"], 3);
    assert_eq!(stats["students"], 3);
    assert_eq!(stats["incomplete"], 1);
    assert!((f(&stats["median"]) - GRACE).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_client_creates_a_promotion_and_prints_its_averages() {
    let server = TestServer::start().await;
    let out = run_client(&server, &["--promotion", "SAE302-demo"]).await;
    let stdout = succeeded(&out);
    assert!(
        stdout.contains("logged in as admin (admin)"),
        "no login line in:\n{stdout}"
    );
    assert!(
        stdout.contains("created promotion SAE302-demo"),
        "no creation line in:\n{stdout}"
    );
    assert_printed_averages(&stdout, "SAE302-demo");
    assert_stored(&server, "SAE302-demo").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_client_exits_non_zero_on_an_error_reply() {
    let server = TestServer::start().await;
    // The promotion exists already: promotion.create gets `conflict`.
    let mut c = server.admin().await;
    ok(&mut c, "promotion.create", json!({ "name": "Taken" })).await;
    let out = run_client(&server, &["--promotion", "Taken"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("conflict: a promotion named 'Taken' already exists"),
        "stderr: {stderr}"
    );
    // Nothing was added to it.
    let p = ok(&mut c, "promotion.show", json!({ "name": "Taken" })).await;
    assert_eq!(p["students"], json!([]));

    // A wrong password: `unauthenticated`, and nothing is created.
    let out = run_client_as(&server, &["--promotion", "Other"], "not-the-password").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("unauthenticated"), "stderr: {stderr}");
    let list = ok(&mut c, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_client_speaks_tls() {
    let server = TestServer::start_tls().await;
    let cert = server.dir.path().join("server-cert.pem");
    let cert = cert.to_str().expect("a UTF-8 temporary path");

    // Trusting the server's own certificate.
    let out = run_client(
        &server,
        &["--tls", "--cafile", cert, "--promotion", "Verified"],
    )
    .await;
    let stdout = succeeded(&out);
    assert!(stdout.contains("(TLS)"), "{stdout}");
    assert_printed_averages(&stdout, "Verified");
    assert_stored(&server, "Verified").await;

    // Without a certificate to trust, the self-signed one is refused...
    let out = run_client(&server, &["--tls", "--promotion", "Unverified"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("CERTIFICATE_VERIFY_FAILED"), "{stderr}");
    // ...unless told not to check.
    let out = run_client(
        &server,
        &["--tls", "--insecure", "--promotion", "Unchecked"],
    )
    .await;
    succeeded(&out);
}
