//! `gradebook bench` against a live server: it builds its data set under
//! its own account, measures, reports, and cleans up after itself.

use crate::cli_support;

use cli_support::{ADMIN_PASSWORD, Server, User};

fn bench(u: &User, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "bench",
        "--json",
        "--password",
        ADMIN_PASSWORD,
        "-c",
        "3",
        "-n",
        "300",
        "--promotions",
        "2",
        "--students",
        "3",
        "--grades",
        "2",
    ];
    args.extend_from_slice(extra);
    u.run(&args).json()
}

#[test]
fn bench_measures_each_workload_and_leaves_nothing_behind() {
    let server = Server::plaintext();
    let u = User::new(&server);
    for workload in ["average", "read", "write", "mixed", "ping"] {
        let r = bench(&u, &["--workload", workload, "-P", "4"]);
        assert_eq!(r["workload"], workload);
        assert_eq!(r["requests"], 300, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["rps"].as_f64().is_some_and(|x| x > 0.0), "{r}");
        let (p50, p99) = (r["p50_ms"].as_f64(), r["p99_ms"].as_f64());
        assert!(p50.zip(p99).is_some_and(|(a, b)| a <= b), "{r}");
    }
    let msgpack = bench(&u, &["--encoding", "msgpack", "--workload", "write"]);
    assert_eq!(msgpack["encoding"], "msgpack");
    assert_eq!(msgpack["errors"], 0, "{msgpack}");
    let udp = bench(&u, &["--udp", "--workload", "average"]);
    assert_eq!(udp["udp"], true);
    assert_eq!(udp["requests"], 300, "{udp}");
    assert_eq!(udp["errors"], 0, "{udp}");
    // Its promotions and its account are gone.
    u.login_admin();
    let promotions = u.run(&["promotion", "list", "--json"]).json();
    assert_eq!(promotions["promotions"], serde_json::json!([]));
    let users = u.run(&["user", "list", "--json"]).json();
    assert_eq!(users["users"].as_array().map(Vec::len), Some(1), "{users}");
}

#[test]
fn the_fsync_baseline_reports_a_rate() {
    let server = Server::plaintext();
    let u = User::new(&server);
    let mut cmd = u.command(&["bench", "--json", "--fsync-baseline", "20"]);
    cmd.current_dir(u.home());
    let out = u.run_with(cmd, "");
    let r = out.json();
    assert_eq!(r["requests"], 20);
    assert!(r["rps"].as_f64().is_some_and(|x| x > 0.0), "{r}");
}

#[tokio::test]
async fn the_postgres_commit_baseline_reports_a_rate_and_leaves_nothing() {
    use gradebook_store_postgres::testing::{admin_url, fresh_database};
    let url = fresh_database(&admin_url()).await;
    let server = Server::plaintext();
    let u = User::new(&server);
    let out = u.run(&[
        "bench",
        "--json",
        "--fsync-baseline",
        "20",
        "--database",
        &url,
    ]);
    let r = out.json();
    assert_eq!(r["workload"], "commit-baseline");
    assert_eq!(r["requests"], 20);
    assert!(r["rps"].as_f64().is_some_and(|x| x > 0.0), "{r}");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'gradebook_commit_baseline%'",
            &[],
        )
        .await
        .expect("counts")
        .get(0);
    assert_eq!(left, 0, "the scratch table was dropped");
}

#[test]
fn the_import_bench_times_the_cli_import_beside_a_raw_insert_and_cleans_up() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let mut cmd = u.command(&[
        "bench",
        "--json",
        "--import-grades",
        "2000",
        "--students",
        "50",
    ]);
    cmd.current_dir(u.home());
    let out = u.run_with(cmd, "");
    let r = out.json();
    assert_eq!(r["workload"], "import", "{r}");
    assert_eq!(r["grades"], 2000, "{r}");
    assert_eq!(r["imported"], 2000, "{r}");
    let (import, raw) = (r["import_seconds"].as_f64(), r["baseline_seconds"].as_f64());
    assert!(import.is_some_and(|s| s > 0.0), "{r}");
    assert!(raw.is_some_and(|s| s > 0.0), "{r}");
    assert!(r["ratio"].as_f64().is_some_and(|x| x > 0.0), "{r}");

    // The text report carries both figures and the ratio.
    let mut cmd = u.command(&["bench", "--import-grades", "300", "--students", "7"]);
    cmd.current_dir(u.home());
    let out = u.run_with(cmd, "");
    let text = out.ok();
    assert!(text.contains("import: 300 grades of 7 students"), "{text}");
    assert!(text.contains("raw insert: the same 300 rows"), "{text}");
    assert!(text.contains("ratio: "), "{text}");

    // With --keep the grades are there, in the scratch promotion.
    let mut cmd = u.command(&[
        "bench",
        "--json",
        "--import-grades",
        "120",
        "--students",
        "4",
        "--keep",
    ]);
    cmd.current_dir(u.home());
    u.run_with(cmd, "").json();
    let promotions = u.run(&["promotion", "list", "--json"]).json();
    let kept = promotions["promotions"]
        .as_array()
        .and_then(|p| p.first())
        .and_then(|p| p["name"].as_str())
        .unwrap_or_else(|| panic!("one promotion kept: {promotions}"))
        .to_owned();
    let shown = u.run(&["promotion", "show", &kept, "--json"]).json();
    let students = shown["students"].as_array().cloned().unwrap_or_default();
    assert_eq!(students.len(), 4, "{shown}");
    let grades: usize = students
        .iter()
        .map(|s| {
            let id = s["id"].to_string();
            let list = u.run(&["grade", "list", &id, "--json"]).json();
            list["grades"].as_array().map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(grades, 120);
    u.run(&["promotion", "delete", &kept, "--force"]).ok();

    // Imports run over TCP: --udp is refused before anything is created.
    let mut cmd = u.command(&["--udp", "bench", "--import-grades", "10"]);
    cmd.current_dir(u.home());
    let out = u.run_with(cmd, "");
    assert!(out.fails(2).contains("without --udp"), "{}", out.stderr);

    // The other runs left no promotion, and no scratch file behind.
    let promotions = u.run(&["promotion", "list", "--json"]).json();
    assert_eq!(
        promotions["promotions"],
        serde_json::json!([]),
        "{promotions}"
    );
    let left: Vec<_> = std::fs::read_dir(u.home())
        .expect("the home directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gradebook-bench"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
