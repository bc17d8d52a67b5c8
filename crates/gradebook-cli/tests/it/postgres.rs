//! `gradebook serve --database postgres://…`, on the throwaway PostgreSQL
//! server that `scripts/test` starts.

use crate::cli_support;

use cli_support::Serve;
use gradebook_store_postgres::testing::{admin_url, fresh_database};
use serde_json::json;

#[tokio::test]
async fn one_server_per_database_until_servers_tail_the_log() {
    let url = fresh_database(&admin_url()).await;
    let mut first = Serve::new().args(&["--database", &url]).start();
    let mut c = first.admin().await;
    c.call("promotion.create", json!({"name": "P"}))
        .await
        .expect("created");

    // A second server on the same database would not see the first's
    // writes: it refuses to start, and says why.
    let second = Serve::new().args(&["--database", &url]).output();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another gradebook server is serving this database"),
        "{stderr}"
    );
    assert!(!stderr.contains(&url), "the URL is not repeated: {stderr}");

    // Once the first has stopped, another may take over, with the data.
    drop(c);
    assert_eq!(first.terminate().code(), Some(0));
    let next = Serve::new()
        .args(&["--database", &url])
        .admin_password(None)
        .start();
    let mut c = next.admin().await;
    let p = c
        .call("promotion.show", json!({"name": "P"}))
        .await
        .expect("the promotion is there");
    assert_eq!(p["name"], "P");
}
