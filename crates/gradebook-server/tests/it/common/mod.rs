//! Shared by the integration tests: a real server on port 0 with a fresh
//! temporary database, on the system clock or on a manual one that the
//! test advances (expiry, timeouts and windows without sleeping), and
//! clients connected to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use gradebook_client::{Client, ConnectOptions, Trust};
use gradebook_proto::Secret;
use gradebook_server::{Clock, Config, Limits, Server, TlsMode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod web;

/// The first admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// Which backend the test servers use: unset or `sqlite` for SQLite in
/// the server's data directory, `postgres` for a fresh database on the
/// throwaway PostgreSQL server that `GRADEBOOK_TEST_POSTGRES` names
/// (`scripts/test` starts one and runs this suite on both).
pub const BACKEND_VAR: &str = "GRADEBOOK_TEST_BACKEND";

/// The database URL of a test server started in `dir`: none (SQLite in
/// the directory) or, on PostgreSQL, a fresh database the first time,
/// remembered in the directory so that a restart in it finds its data.
async fn database_for(dir: &std::path::Path) -> Option<String> {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("sqlite") => None,
        Ok("postgres") => {
            let remembered = dir.join("test-database-url");
            if let Ok(url) = std::fs::read_to_string(&remembered) {
                return Some(url);
            }
            let admin = gradebook_store_postgres::testing::admin_url();
            let url = gradebook_store_postgres::testing::fresh_database(&admin).await;
            std::fs::write(&remembered, &url).expect("remembers the database");
            Some(url)
        }
        Ok(other) => panic!("{BACKEND_VAR}={other}: use sqlite or postgres"),
    }
}

/// Runs `sql` on the database of a (stopped) test server started in
/// `dir`, behind the server's back, on whichever backend it uses: SQL
/// that both SQLite and PostgreSQL read, with one integer parameter `$1`.
/// Gives the first column of the first row, if the statement returns
/// rows and it is an integer.
pub async fn behind_the_servers_back(dir: &std::path::Path, sql: &str, param: i64) -> Option<i64> {
    match std::fs::read_to_string(dir.join("test-database-url")) {
        Err(_) => {
            let db = rusqlite::Connection::open(dir.join("gradebook.db")).expect("opens");
            let mut stmt = db.prepare(sql).expect("prepares");
            let mut rows = stmt.query([param]).expect("runs");
            rows.next()
                .expect("reads")
                .and_then(|r| r.get::<_, i64>(0).ok())
        }
        Ok(url) => {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connects");
            let task = tokio::spawn(connection);
            let rows = client.query(sql, &[&param]).await.expect("runs");
            drop(client);
            let _ = task.await;
            rows.first().and_then(|r| r.try_get::<_, i64>(0).ok())
        }
    }
}

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The QUIC address (TLS servers; QUIC on a free port).
    pub quic: Option<SocketAddr>,
    pub dir: TempDir,
    pub tls: bool,
    /// The server's clock: the system's, unless started with
    /// [`TestServer::start_with_clock`].
    pub clock: Clock,
    /// The web portal's address.
    pub http: Option<SocketAddr>,
    /// The web portal's routes, to drive in process ([`web::Browser`]).
    pub web: Option<axum::Router>,
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

    /// A plaintext server on a manual clock: its time moves only with
    /// [`TestServer::advance`].
    pub async fn start_with_clock(limits: Limits) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::launch(dir, TlsMode::Off, limits, Clock::manual()).await
    }

    /// A server on an existing data directory (restart tests).
    pub async fn start_in(dir: TempDir, tls: TlsMode, limits: Limits) -> TestServer {
        Self::launch(dir, tls, limits, Clock::system()).await
    }

    /// A server on SQLite in `dir`, whatever the suite's backend: for
    /// tests of SQLite's own data directory (a full disk).
    pub async fn start_sqlite_in(dir: TempDir, tls: TlsMode, limits: Limits) -> TestServer {
        Self::launch_on(dir, None, tls, limits, Clock::system()).await
    }

    async fn launch(dir: TempDir, tls: TlsMode, limits: Limits, clock: Clock) -> TestServer {
        let database = database_for(dir.path()).await;
        Self::launch_on(dir, database, tls, limits, clock).await
    }

    async fn launch_on(
        dir: TempDir,
        database: Option<String>,
        tls: TlsMode,
        limits: Limits,
        clock: Clock,
    ) -> TestServer {
        let mut config = Config::new(dir.path());
        config.database = database;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.tls = tls;
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.limits = limits;
        config.clock = clock.clone();
        let server = Server::bind(config).await.expect("server starts");
        let addr = server.local_addr();
        let quic = server.quic_addr();
        let tls = server.tls();
        let http = server.http_addr();
        let web = server.web_router();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        TestServer {
            addr,
            quic,
            dir,
            tls,
            clock,
            http,
            web,
            shutdown,
            task: Some(task),
        }
    }

    /// Whether this server's data is on PostgreSQL (`scripts/test` runs
    /// the suite a second time so).
    pub fn on_postgres() -> bool {
        std::env::var(BACKEND_VAR).is_ok_and(|b| b == "postgres")
    }

    /// Moves the server's manual clock forward, waking what waits on it.
    pub fn advance(&self, by: Duration) {
        assert!(
            self.clock.is_manual(),
            "advance needs TestServer::start_with_clock"
        );
        self.clock.advance(by);
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

    /// QUIC connection options for this server (TLS servers), trusting
    /// its certificate as a CA, as [`TestServer::options`] does.
    pub fn quic_options(&self) -> ConnectOptions {
        let quic = self.quic.expect("a TLS server listens on QUIC");
        let mut o = ConnectOptions::quic(
            quic.to_string(),
            Trust::CaFile(self.dir.path().join("server-cert.pem")),
        );
        o.timeout = Duration::from_secs(20);
        o
    }

    /// A new QUIC connection, not logged in.
    pub async fn quic_connect(&self) -> Client {
        Client::connect(&self.quic_options())
            .await
            .expect("connects over QUIC")
    }

    /// A new QUIC connection logged in as the admin.
    pub async fn quic_admin(&self) -> Client {
        let mut c = self.quic_connect().await;
        c.login("admin", ADMIN_PASSWORD)
            .await
            .expect("admin logs in over QUIC");
        c
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

    /// A new connection logged in as the admin, and its session token (for
    /// other connections, or datagrams, to use).
    pub async fn admin_session(&self) -> (Client, Secret) {
        let mut c = self.connect().await;
        let token = c
            .login("admin", ADMIN_PASSWORD)
            .await
            .expect("admin logs in")
            .token;
        (c, token)
    }

    /// A raw TCP connection (plaintext servers), not logged in.
    pub async fn raw(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connects")
    }
}

/// Sends one request line on a raw connection and reads its reply.
pub async fn raw_call(tcp: &mut TcpStream, request: Value) -> Value {
    let mut line = request.to_string();
    line.push('\n');
    tcp.write_all(line.as_bytes()).await.expect("writes");
    raw_reply(tcp).await
}

/// Reads one reply line from a raw connection.
pub async fn raw_reply(tcp: &mut TcpStream) -> Value {
    let mut got = Vec::new();
    while !got.ends_with(b"\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut byte))
            .await
            .expect("a reply in time")
            .expect("reads");
        assert!(n > 0, "closed before a whole reply: {got:?}");
        got.push(byte[0]);
    }
    serde_json::from_slice(&got).expect("a JSON reply")
}

/// Asserts that the server closes a raw connection (soon, in real time)
/// with nothing more to say.
pub async fn assert_closed(tcp: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server did not close the connection");
    assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
}

/// Asserts that a raw connection with nothing to answer stays open: no
/// close and no byte for a moment of real time.
pub async fn assert_open(tcp: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut byte)).await;
    assert!(
        read.is_err(),
        "the connection was closed or spoke: {read:?}"
    );
}

/// Asserts that the server closes a client's connection (soon, in real
/// time) without a reply.
pub async fn assert_client_closed(c: &mut Client) {
    let got = tokio::time::timeout(Duration::from_secs(10), c.recv()).await;
    assert!(
        matches!(got, Ok(Err(_))),
        "the server did not close the connection: {got:?}"
    );
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
