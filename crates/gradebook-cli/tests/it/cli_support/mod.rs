//! Shared by the CLI's tests: `gradebook serve` processes (killed on
//! drop) started one way, clients of them, and a user environment per test
//! (its own HOME, so its own saved sessions and known servers) that runs
//! the `gradebook` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use gradebook_client::{Client, ConnectOptions, Trust};

/// The admin password the test servers start with.
pub const ADMIN_PASSWORD: &str = "an-admin-password-for-tests";

/// The `gradebook` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_gradebook");

/// How to start a `gradebook serve` process. Unless told otherwise:
/// plaintext on a free loopback port, a fresh data directory, the admin
/// password [`ADMIN_PASSWORD`], standard error discarded.
#[derive(Debug)]
pub struct Serve {
    plaintext: bool,
    listen: String,
    data: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    admin_password: Option<String>,
    stderr: Stdio,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            plaintext: true,
            listen: "127.0.0.1:0".into(),
            data: None,
            args: Vec::new(),
            env: Vec::new(),
            admin_password: Some(ADMIN_PASSWORD.into()),
            stderr: Stdio::null(),
        }
    }
}

impl Serve {
    /// The defaults.
    pub fn new() -> Serve {
        Serve::default()
    }

    /// TLS with a self-signed certificate instead of plaintext.
    pub fn tls(mut self) -> Serve {
        self.plaintext = false;
        self
    }

    /// Another listening address.
    pub fn listen(mut self, addr: &str) -> Serve {
        self.listen = addr.into();
        self
    }

    /// An existing data directory (restarts), kept by the caller.
    pub fn data(mut self, dir: &Path) -> Serve {
        self.data = Some(dir.to_owned());
        self
    }

    /// More arguments to `serve`.
    pub fn args(mut self, args: &[&str]) -> Serve {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// A setting given in the environment rather than as a flag.
    pub fn env(mut self, name: &str, value: &str) -> Serve {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The first admin's password; `None` lets the server generate one.
    pub fn admin_password(mut self, password: Option<&str>) -> Serve {
        self.admin_password = password.map(str::to_owned);
        self
    }

    /// Where the server's standard error (its log) goes.
    pub fn stderr(mut self, stderr: impl Into<Stdio>) -> Serve {
        self.stderr = stderr.into();
        self
    }

    /// The command, not started, the data directory it uses, and that
    /// directory when it is a fresh one.
    fn command(self) -> (Command, PathBuf, Option<tempfile::TempDir>) {
        let (data, own) = match self.data {
            Some(d) => (d, None),
            None => {
                let t = tempfile::tempdir().expect("a data directory");
                (t.path().to_owned(), Some(t))
            }
        };
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", &self.listen, "--data"])
            .arg(&data)
            .args(&self.args)
            .env_remove("GRADEBOOK_ADMIN_PASSWORD")
            .env_remove("GRADEBOOK_PLAINTEXT")
            .env_remove("GRADEBOOK_LISTEN")
            .env_remove("GRADEBOOK_QUIC_LISTEN")
            .env_remove("GRADEBOOK_NO_QUIC")
            .env_remove("GRADEBOOK_HTTP_LISTEN")
            .env_remove("GRADEBOOK_NO_HTTP")
            .env_remove("GRADEBOOK_DATA")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(self.stderr);
        if self.plaintext {
            cmd.arg("--plaintext");
        }
        // The portal's default port is fixed (7380): a server restarted
        // on a known address would share it with every other test's.
        let portal_set = self.args.iter().any(|a| a.contains("http"))
            || self.env.iter().any(|(name, _)| name.contains("HTTP"));
        if !portal_set {
            cmd.args(["--http-listen", "127.0.0.1:0"]);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(p) = &self.admin_password {
            cmd.env("GRADEBOOK_ADMIN_PASSWORD", p);
        }
        (cmd, data, own)
    }

    /// Runs a server that is expected not to start; what it said.
    pub fn output(self) -> std::process::Output {
        let (mut cmd, _, _own) = self.command();
        cmd.stderr(Stdio::piped()).output().expect("runs")
    }

    /// Starts the server and waits for its listening line.
    pub fn start(self) -> Server {
        let plaintext = self.plaintext;
        let (mut cmd, data, own) = self.command();
        let mut child = cmd.spawn().expect("the server starts");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads the listening line");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("tcp="))
            .unwrap_or_else(|| panic!("no tcp= in {line:?}"))
            .to_owned();
        assert_eq!(line.contains("tls=on"), !plaintext, "{line}");
        let quic = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("quic="))
            .map(str::to_owned);
        Server {
            child,
            addr,
            quic,
            tls: !plaintext,
            line,
            data,
            _own: own,
        }
    }
}

/// A `gradebook serve` process; killed when dropped.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub child: Child,
    /// `HOST:PORT` from its listening line.
    pub addr: String,
    /// Its QUIC `HOST:PORT`, when its listening line has one.
    pub quic: Option<String>,
    /// Whether it serves TLS.
    pub tls: bool,
    /// Its listening line.
    pub line: String,
    data: PathBuf,
    _own: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A plaintext server on a free loopback port.
    pub fn plaintext() -> Server {
        Serve::new().start()
    }

    /// A TLS server (self-signed certificate) on a free loopback port.
    pub fn tls() -> Server {
        Serve::new().tls().start()
    }

    /// The generated certificate (TLS servers).
    pub fn cert(&self) -> PathBuf {
        self.data.join("server-cert.pem")
    }

    /// A client connection, not logged in (over TLS, trusting the
    /// server's certificate, on a TLS server).
    pub async fn client(&self) -> Client {
        let options = if self.tls {
            ConnectOptions::tls(self.addr.as_str(), Trust::CaFile(self.cert()))
        } else {
            ConnectOptions::plaintext(self.addr.as_str())
        };
        Client::connect(&options).await.expect("connects")
    }

    /// A client connection logged in as the admin.
    pub async fn admin(&self) -> Client {
        let mut c = self.client().await;
        c.login("admin", ADMIN_PASSWORD).await.expect("logs in");
        c
    }

    /// Stops the server with SIGTERM and waits (20 s at most) for it to
    /// exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        // Polled: std cannot wait for a child with a time limit.
        for _ in 0..200 {
            if let Some(s) = self.child.try_wait().expect("waits") {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not stop within 20 s");
    }
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Out {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns standard output.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts the exit code and returns standard error.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stderr
    }

    /// Standard output as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// A user of the command line: a home directory of their own, and the
/// server they talk to.
pub struct User {
    home: tempfile::TempDir,
    server: String,
    plaintext: bool,
}

impl User {
    /// A new user of `server`, with nothing saved yet.
    pub fn new(server: &Server) -> User {
        User {
            home: tempfile::tempdir().expect("a home directory"),
            server: server.addr.clone(),
            plaintext: !server.tls,
        }
    }

    /// A new user of `server`, logged in as the admin.
    pub fn admin(server: &Server) -> User {
        let u = User::new(server);
        u.login_admin();
        u
    }

    /// Where this user's configuration lives (`$XDG_CONFIG_HOME/gradebook`).
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config").join("gradebook")
    }

    /// The home directory (for files the tests write).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The binary with this user's environment and `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("GRADEBOOK_SERVER", &self.server)
            .env("NO_COLOR", "1")
            .env_remove("GRADEBOOK_PLAINTEXT")
            .env_remove("GRADEBOOK_QUIC")
            .env_remove("GRADEBOOK_QUIC_PORT")
            .env_remove("GRADEBOOK_CA_CERT")
            .env_remove("GRADEBOOK_ACCEPT_FINGERPRINT")
            .env_remove("GRADEBOOK_PASSWORD")
            .env_remove("GRADEBOOK_NEW_PASSWORD");
        if self.plaintext {
            cmd.env("GRADEBOOK_PLAINTEXT", "true");
        }
        cmd
    }

    /// Runs `args` with nothing on standard input.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(self.command(args), "")
    }

    /// Runs `args` with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Out {
        self.run_with(self.command(args), input)
    }

    /// Runs a prepared command with `input` on standard input.
    pub fn run_with(&self, mut cmd: Command, input: &str) -> Out {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("gradebook runs");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            // The command may exit without reading everything.
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().expect("gradebook finishes");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Logs in as the admin (password on standard input).
    pub fn login_admin(&self) {
        self.login("admin", ADMIN_PASSWORD);
    }

    /// Logs in as `username`.
    #[track_caller]
    pub fn login(&self, username: &str, password: &str) {
        let out = self.run_stdin(&["login", username], &format!("{password}\n"));
        assert!(out.ok().contains("Logged in"), "{}", out.stdout);
    }

    /// Writes a file in the home directory; returns its path as text.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, bytes).expect("writes the file");
        path.to_str().expect("a UTF-8 path").to_owned()
    }
}
