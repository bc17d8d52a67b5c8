//! `gradebook bench` against a live server: it builds its data set under
//! its own account, measures, reports, and cleans up after itself.

mod cli_support;

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
