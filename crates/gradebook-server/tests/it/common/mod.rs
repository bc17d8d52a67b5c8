//! Shared by the integration tests: a real server on port 0 with a fresh
//! temporary database, and clients connected to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use gradebook_client::{Client, ConnectOptions, Trust};
use gradebook_proto::Secret;
use gradebook_server::{Config, Limits, Server, TlsMode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The first admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub tls: bool,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A plaintext server with default limits.
    pub async fn start() -> TestServer {
        Self::start_with(TlsMode::Off, Limits::default()).await
    }

    /// A server with TLS (self-signed) and default limits.
    pub async fn start_tls() -> TestServer {
        Self::start_with(TlsMode::SelfSigned, Limits::default()).await
    }

    /// A server with the given TLS mode and limits.
    pub async fn start_with(tls: TlsMode, limits: Limits) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::start_in(dir, tls, limits).await
    }

    /// A server on an existing data directory (restart tests).
    pub async fn start_in(dir: TempDir, tls: TlsMode, limits: Limits) -> TestServer {
        let mut config = Config::new(dir.path());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.tls = tls;
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.limits = limits;
        let server = Server::bind(config).await.expect("server starts");
        let addr = server.local_addr();
        let tls = server.tls();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        TestServer {
            addr,
            dir,
            tls,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the server and waits for it; gives back the data directory.
    pub async fn stop(mut self) -> TempDir {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Connection options for this server.
    pub fn options(&self) -> ConnectOptions {
        let mut o = if self.tls {
            ConnectOptions::tls(
                self.addr.to_string(),
                Trust::CaFile(self.dir.path().join("server-cert.pem")),
            )
        } else {
            ConnectOptions::plaintext(self.addr.to_string())
        };
        o.timeout = Duration::from_secs(20);
        o
    }

    /// A new connection, not logged in.
    pub async fn connect(&self) -> Client {
        Client::connect(&self.options()).await.expect("connects")
    }

    /// A new connection logged in as the admin.
    pub async fn admin(&self) -> Client {
        let mut c = self.connect().await;
        c.login("admin", ADMIN_PASSWORD)
            .await
            .expect("admin logs in");
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Calls and expects success.
pub async fn ok(c: &mut Client, cmd: &str, args: Value) -> Value {
    match c.call(cmd, args.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{cmd} {args} failed: {e}"),
    }
}

/// Calls and expects the error `code`; returns the message.
pub async fn err(c: &mut Client, cmd: &str, args: Value, code: &str) -> String {
    match c.call(cmd, args.clone()).await {
        Ok(v) => panic!("{cmd} {args} succeeded with {v}, expected {code}"),
        Err(gradebook_client::ClientError::Server(e)) => {
            assert_eq!(e.code.as_str(), code, "{cmd} {args}: {}", e.message);
            e.message
        }
        Err(e) => panic!("{cmd} {args}: transport error {e}, expected {code}"),
    }
}

/// Creates a promotion with `n` students; returns their ids.
pub async fn promotion_with_students(c: &mut Client, name: &str, n: usize) -> Vec<i64> {
    ok(c, "promotion.create", json!({ "name": name })).await;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let s = ok(
            c,
            "student.add",
            json!({ "promotion": name, "first_name": format!("First{i}"), "last_name": format!("Last{i}") }),
        )
        .await;
        ids.push(s["id"].as_i64().expect("student id"));
    }
    ids
}
