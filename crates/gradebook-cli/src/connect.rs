//! Reaching the server: plaintext, TLS with a certificate authority, or TLS
//! trusted on first use (the fingerprint shown, asked about and remembered
//! in the known-servers file, like ssh); then calls that carry the saved
//! session token.
//!
//! This is the one place that knows the transport: a TCP (or TLS)
//! connection in the chosen encoding, a QUIC connection with `--quic` (the
//! same [`Client`], one stream per request; the certificate trusted and
//! remembered under the server's `--server` address, as over TCP), or UDP
//! datagrams with `--udp` ([`Transport`]). The commands call [`Conn::run`] either way, with one of
//! the protocol's typed calls.

use std::time::{Duration, Instant};

use gradebook_client::{Client, ClientError, ConnectOptions, Trust, UdpClient, UdpOptions};
use gradebook_proto::{Call, Command as WireCommand, Encoding, ErrorCode, Secret};
use serde_json::Value;

use crate::args::{Command, Global, WireEncoding};
use crate::config::{Known, KnownServers, Sessions, normalise_fingerprint};
use crate::error::CliError;
use crate::input;

/// The server closes connections idle for 5 minutes; a shell that sat
/// longer than this reconnects before its next command.
const REUSE_IDLE: Duration = Duration::from_secs(240);

/// `HOST:PORT` for `server`, adding the default port when none is given.
pub fn server_address(server: &str) -> String {
    let server = server.trim();
    let has_port = match server.rsplit_once(':') {
        // `[::1]:7302` has one, `[::1]` and `::1` do not.
        Some((host, port)) => {
            port.chars().all(|c| c.is_ascii_digit())
                && !port.is_empty()
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    };
    if has_port {
        server.to_owned()
    } else if server.contains(':') && !server.starts_with('[') {
        format!("[{server}]:{}", gradebook_proto::DEFAULT_PORT)
    } else {
        format!("{server}:{}", gradebook_proto::DEFAULT_PORT)
    }
}

/// How requests travel: one TCP (or TLS) connection, or one UDP datagram
/// each way per request.
#[derive(Debug)]
pub enum Transport {
    /// A connection (TCP, or QUIC with `--quic`), switched to the chosen
    /// encoding.
    Tcp(Client),
    /// Datagrams; a reply too large for one is fetched again over TCP.
    Udp {
        /// The datagram client, its TCP fallback set like [`open`]'s
        /// (boxed: it is much larger than a connection).
        client: Box<UdpClient>,
        /// The server uses TLS: nothing private may go in a datagram.
        tls: bool,
    },
}

impl Transport {
    /// Sends `call` with `token` in its envelope (or none); returns its
    /// reply's data, typed.
    pub async fn run<C: Call>(
        &mut self,
        token: Option<&Secret>,
        call: C,
    ) -> Result<C::Reply, ClientError> {
        match self {
            Transport::Tcp(client) => {
                client.set_token(token.cloned());
                client.run(call).await
            }
            Transport::Udp { client, tls: false } => {
                client.set_token(token.cloned());
                client.run(call).await
            }
            Transport::Udp { client, tls: true } => {
                // A TLS server serves only hello and ping over UDP (§6) and
                // refuses the rest with insecure_transport. Its users chose
                // TLS so that tokens, passwords and names never cross the
                // network in clear: the datagram carries no token, and
                // other commands go by name alone, without their arguments,
                // just to hear the server's answer (the one request of the
                // command line that no type describes).
                client.set_token(None);
                let command: WireCommand = call.into();
                let name = command.name();
                let data = match command {
                    WireCommand::Hello(_) | WireCommand::Ping(_) => client.run(command).await?,
                    _ => client.call(name, Value::Object(Default::default())).await?,
                };
                gradebook_client::decode::<C>(name, data)
            }
        }
    }

    fn is_udp(&self) -> bool {
        matches!(self, Transport::Udp { .. })
    }
}

/// Refuses, with `--udp`, the commands that do not fit datagrams.
pub fn check_udp(command: &Command) -> Result<(), CliError> {
    let why = match command {
        Command::Shell(_) => {
            "the shell keeps one connection open for many commands; over UDP each command \
             is its own datagram: run the shell without --udp, or run one-shot commands with --udp"
        }
        Command::Import(_) => {
            "an import pipelines many requests over one TCP connection: run it without --udp"
        }
        Command::Export(_) => {
            "an export reads a whole promotion, more than a datagram holds: run it without --udp"
        }
        Command::Serve(_) => "--udp is a client flag (the server always listens on UDP too)",
        Command::Watch(_) => "watch needs a connection for its events: run it without --udp",
        _ => return Ok(()),
    };
    Err(CliError::usage(format!("--udp: {why}")))
}

/// Refuses, with `--quic`, the commands that need one ordered TCP
/// connection.
pub fn check_quic(command: &Command) -> Result<(), CliError> {
    let why = match command {
        Command::Import(_) => {
            "an import pipelines requests that must run in order on one TCP connection, and \
             QUIC streams run concurrently: run it without --quic"
        }
        Command::Serve(_) => {
            "--quic is a client flag (the server listens on QUIC whenever TLS is on; \
             see --quic-listen and --no-quic)"
        }
        _ => return Ok(()),
    };
    Err(CliError::usage(format!("--quic: {why}")))
}

/// The QUIC address of `server` (`HOST:PORT`): its port + 1, or `port`.
pub fn quic_address(server: &str, port: Option<u16>) -> Result<String, CliError> {
    let (host, tcp_port) = server
        .rsplit_once(':')
        .ok_or_else(|| CliError::usage(format!("no port in {server}")))?;
    let port = match port {
        Some(p) => p,
        None => tcp_port
            .parse::<u16>()
            .ok()
            .and_then(|p| p.checked_add(1))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "--quic: cannot add 1 to the port of {server}: give --quic-port"
                ))
            })?,
    };
    Ok(format!("{host}:{port}"))
}

/// The wire encoding of the protocol library.
fn encoding(e: WireEncoding) -> Encoding {
    match e {
        WireEncoding::Json => Encoding::Json,
        WireEncoding::Msgpack => Encoding::Msgpack,
    }
}

/// A connection to the server, opened on first use, with the session
/// token saved for that server.
#[derive(Debug)]
pub struct Conn {
    /// The connection settings.
    pub global: Global,
    /// `HOST:PORT`, the key of saved sessions and known servers.
    pub server: String,
    transport: Option<Transport>,
    /// No reply has come on this connection yet.
    fresh: bool,
    last_used: Instant,
    /// Whether the trust question may read standard input (not when
    /// standard input carries a shell script).
    prompts_on_stdin: bool,
}

impl Conn {
    /// Settings only; nothing is opened yet.
    pub fn new(global: Global, prompts_on_stdin: bool) -> Conn {
        let server = server_address(&global.server);
        Conn {
            global,
            server,
            transport: None,
            fresh: true,
            last_used: Instant::now(),
            prompts_on_stdin,
        }
    }

    /// The transport, opening (or reopening) it when needed: the server's
    /// certificate is settled, and a TCP connection switched to the chosen
    /// encoding.
    pub async fn connect(&mut self) -> Result<&mut Transport, CliError> {
        if self.last_used.elapsed() > REUSE_IDLE {
            self.transport = None;
        }
        self.last_used = Instant::now();
        match &mut self.transport {
            Some(t) => Ok(t),
            slot @ None => {
                let transport =
                    open_transport(&self.global, &self.server, self.prompts_on_stdin).await?;
                self.fresh = true;
                Ok(slot.insert(transport))
            }
        }
    }

    /// Counts now as a use of the connection: a connection that watches
    /// waits for events, and the server does not close it as idle, so
    /// the wait must not make the next request reopen it (which would
    /// leave the watch behind).
    pub fn mark_used(&mut self) {
        self.last_used = Instant::now();
    }

    /// The open TCP connection, for what only a connection does
    /// (pipelining); opened when needed. Not with `--udp`.
    pub async fn client(&mut self) -> Result<&mut Client, CliError> {
        match self.connect().await? {
            Transport::Tcp(client) => Ok(client),
            Transport::Udp { .. } => Err(CliError::usage(
                "--udp: this command needs a TCP connection: run it without --udp",
            )),
        }
    }

    /// Whether a question may be asked on standard input (not when it
    /// carries a shell script).
    pub fn may_prompt(&self) -> bool {
        self.prompts_on_stdin
    }

    /// Forgets the connection (after a failure), so the next call reopens.
    pub fn reset(&mut self) {
        self.transport = None;
    }

    /// The token saved for this server, if any.
    pub fn token(&self) -> Result<Option<Secret>, CliError> {
        Ok(Sessions::load()?.get(&self.server).map(|s| s.token.clone()))
    }

    /// Sends `call` with the saved session token (when there is one) and
    /// returns its reply's data, typed. A protocol [`WireCommand`] is a call
    /// whose data comes back as the server sent it (to print it unchanged).
    pub async fn run<C: Call>(&mut self, call: C) -> Result<C::Reply, CliError> {
        let token = self.token()?;
        self.run_as(token.as_ref(), call).await
    }

    /// Sends `call` with `token` in its envelope (or none).
    pub async fn run_as<C: Call>(
        &mut self,
        token: Option<&Secret>,
        call: C,
    ) -> Result<C::Reply, CliError> {
        let transport = self.connect().await?;
        let udp = transport.is_udp();
        let result = transport.run(token, call).await;
        let fresh = std::mem::replace(&mut self.fresh, false);
        result.map_err(|e| {
            let udp_timeout = match e {
                ClientError::Timeout(waited) if udp => Some(waited),
                _ => None,
            };
            let mut e = CliError::from_client(e, token.is_some());
            match &mut e {
                CliError::Connection(m) => {
                    if let Some(waited) = udp_timeout {
                        *m = format!(
                            "no reply from {} over UDP after {:.1} s of retries: is the server \
                             running, and does UDP reach it? (without --udp, commands use TCP)",
                            self.server,
                            waited.as_secs_f64()
                        );
                    } else if fresh && self.global.plaintext && !udp {
                        // A TLS server closes a plaintext connection at once.
                        m.push_str(" (if the server uses TLS, leave out --plaintext)");
                    }
                    self.reset();
                }
                CliError::Server(w) if udp && w.code == ErrorCode::InsecureTransport => {
                    w.message.push_str(
                        " (UDP carries session tokens only in plaintext mode, to a server \
                         started with --plaintext; with TLS, leave out --udp)",
                    );
                }
                _ => {}
            }
            e
        })
    }
}

/// Opens the transport the settings choose.
async fn open_transport(
    global: &Global,
    server: &str,
    prompts_on_stdin: bool,
) -> Result<Transport, CliError> {
    if global.udp {
        let mut options = UdpOptions::new(server);
        options.encoding = encoding(global.encoding);
        options.fallback = Some(fallback_options(global, server, prompts_on_stdin).await?);
        let client = match UdpClient::connect(&options).await {
            Ok(c) => c,
            Err(e) => return Err(connect_error(server, e, global.plaintext, None).await),
        };
        return Ok(Transport::Udp {
            client: Box::new(client),
            tls: !global.plaintext,
        });
    }
    let mut client = open(global, server, prompts_on_stdin).await?;
    let encoding = encoding(global.encoding);
    if encoding != Encoding::Json {
        client
            .use_encoding(encoding)
            .await
            .map_err(|e| CliError::from_client(e, false))?;
    }
    Ok(Transport::Tcp(client))
}

/// How [`open`] connects, before it checks the certificate: plaintext, a
/// certificate authority, or any certificate (trust on first use, checked
/// against the known servers once the handshake shows it); over TCP, or
/// QUIC with `--quic`.
fn connect_options(global: &Global, server: &str) -> Result<ConnectOptions, CliError> {
    if global.quic {
        let trust = match &global.ca_cert {
            Some(ca) => Trust::CaFile(ca.clone()),
            None => Trust::Tofu,
        };
        return Ok(ConnectOptions::quic(
            quic_address(server, global.quic_port)?,
            trust,
        ));
    }
    Ok(tcp_options(global, server))
}

/// [`connect_options`] over TCP.
fn tcp_options(global: &Global, server: &str) -> ConnectOptions {
    if global.plaintext {
        ConnectOptions::plaintext(server)
    } else if let Some(ca) = &global.ca_cert {
        ConnectOptions::tls(server, Trust::CaFile(ca.clone()))
    } else {
        ConnectOptions::tls(server, Trust::Tofu)
    }
}

/// Where a UDP request whose reply is `too_large` goes again: the TCP
/// connection [`open`] would make. The client library connects it on its
/// own, with no chance to ask about the certificate, so trust on first
/// use becomes the fingerprint trusted for this server: the remembered
/// one, or (an unknown or changed server) the one that [`open`] settles
/// now with its usual question and checks.
async fn fallback_options(
    global: &Global,
    server: &str,
    prompts_on_stdin: bool,
) -> Result<ConnectOptions, CliError> {
    let mut options = tcp_options(global, server);
    if options.tls == Some(Trust::Tofu) {
        let accepted = global
            .accept_fingerprint
            .as_deref()
            .map(normalise_fingerprint);
        let pinned = match KnownServers::load()?.lookup(server) {
            Known::Fingerprint { fingerprint, .. }
                if accepted.as_ref().is_none_or(|a| *a == fingerprint) =>
            {
                fingerprint
            }
            _ => {
                let client = open(global, server, prompts_on_stdin).await?;
                client
                    .server_fingerprint()
                    .map(normalise_fingerprint)
                    .ok_or_else(|| CliError::connection("the server sent no certificate"))?
            }
        };
        options.tls = Some(Trust::Fingerprint(pinned));
    }
    Ok(options)
}

/// Opens a connection as the settings say, asking about an unknown
/// server's certificate when they leave trust open.
async fn open(global: &Global, server: &str, prompts_on_stdin: bool) -> Result<Client, CliError> {
    let options = connect_options(global, server)?;
    let failed = |e| {
        connect_error(
            server,
            e,
            global.plaintext,
            options.quic.then_some(&options),
        )
    };
    if options.tls != Some(Trust::Tofu) {
        return match Client::connect(&options).await {
            Ok(client) => Ok(client),
            Err(e) => Err(failed(e).await),
        };
    }
    let mut known = KnownServers::load()?;
    // The handshake proves the server holds its certificate's key; which
    // certificate to trust is decided here, before anything is sent.
    let client = match Client::connect(&options).await {
        Ok(client) => client,
        Err(e) => return Err(failed(e).await),
    };
    let seen = client
        .server_fingerprint()
        .map(normalise_fingerprint)
        .ok_or_else(|| CliError::connection("the server sent no certificate"))?;
    let accepted = global
        .accept_fingerprint
        .as_deref()
        .map(normalise_fingerprint);
    // A fingerprint given on the command line is a pin, checked before the
    // known-servers file: that file may be old (or written by someone
    // else), and a user who names the certificate they expect must never
    // reach another one.
    if let Some(accepted) = &accepted
        && *accepted != seen
    {
        return Err(CliError::connection(format!(
            "the certificate of {server} does not match --accept-fingerprint:\n  \
             expected: {accepted}\n  \
             actual:   {seen}\n\
             Nothing was sent: not connecting."
        )));
    }
    match known.lookup(server) {
        Known::Fingerprint { fingerprint, .. } if fingerprint == seen => Ok(client),
        Known::Fingerprint { fingerprint, line } => {
            if accepted.is_some() {
                known.trust(server, &seen)?;
                eprintln!(
                    "gradebook: the certificate of {server} changed; the new one ({seen}) is trusted as --accept-fingerprint says"
                );
                return Ok(client);
            }
            Err(CliError::connection(format!(
                "\
@@@ the TLS certificate of {server} has CHANGED since you trusted it @@@
  trusted: {fingerprint}
  now:     {seen}
Someone may be intercepting the connection, or the server got a new certificate.
Nothing was sent. If the change is expected (check with the server's administrator:
`gradebook fingerprint DATA/server-cert.pem` on the server shows its fingerprint),
remove line {line} of {file}
or connect once with --accept-fingerprint and the new fingerprint.",
                file = known.file().display()
            )))
        }
        Known::Unknown => {
            // Checked above: an accepted fingerprint is the one seen.
            if accepted.is_some() {
                known.trust(server, &seen)?;
                return Ok(client);
            }
            if !prompts_on_stdin {
                return Err(CliError::connection(format!(
                    "{server} is not a known server; its certificate's fingerprint is {seen}.\n\
                     Check it with the server's administrator, then connect with --accept-fingerprint {seen}"
                )));
            }
            eprintln!(
                "The server {server} is not known yet. Its certificate's SHA-256 fingerprint is\n  {seen}\n\
                 Check it with the server's administrator (`gradebook fingerprint DATA/server-cert.pem`\n\
                 on the server shows it)."
            );
            if input::confirm("Trust this server and remember it?")? {
                known.trust(server, &seen)?;
                eprintln!("gradebook: {server} added to {}", known.file().display());
                Ok(client)
            } else {
                Err(CliError::connection(format!(
                    "{server} not trusted: not connecting"
                )))
            }
        }
    }
}

/// Words for a failed connection, with a hint only where the cause is
/// known: `--plaintext` is suggested when a TLS handshake met a plaintext
/// server, never for a name that does not resolve or a closed port.
async fn connect_error(
    server: &str,
    e: ClientError,
    plaintext: bool,
    quic: Option<&ConnectOptions>,
) -> CliError {
    if let (Some(quic), ClientError::Timeout(d)) = (quic, &e) {
        // A QUIC client hears nothing back from a closed UDP port.
        return CliError::connection(format!(
            "no QUIC answer from {} within {d:?}: is the server running with TLS and QUIC \
             (its listening line shows quic=HOST:PORT; --quic-port if that port is not the \
             TCP port + 1), and does UDP reach it?",
            quic.address
        ));
    }
    match e {
        ClientError::Io(e) => {
            // The system's words for a failed lookup vary (and carry no
            // stable error kind): looking the name up again tells.
            if tokio::net::lookup_host(server).await.is_err() {
                return CliError::connection(format!(
                    "could not resolve host '{}' ({e})",
                    host_of(server)
                ));
            }
            CliError::connection(format!(
                "cannot connect to {server}: {e} (is the server running?)"
            ))
        }
        ClientError::NotTls(m) if !plaintext => CliError::connection(format!(
            "TLS with {server} failed: the server did not answer in TLS ({m}); \
             if it was started with --plaintext, add --plaintext"
        )),
        ClientError::Tls(m) | ClientError::NotTls(m) => {
            CliError::connection(format!("TLS with {server} failed: {m}"))
        }
        ClientError::Timeout(d) => CliError::connection(format!(
            "{server} did not answer within {d:?} (is the server running, and reachable?)"
        )),
        other => CliError::connection(format!("cannot connect to {server}: {other}")),
    }
}

/// The host part of `HOST:PORT` (`[::1]:7302` gives `::1`).
fn host_of(server: &str) -> &str {
    server
        .rsplit_once(':')
        .map_or(server, |(host, _)| host)
        .trim_matches(['[', ']'])
}

/// The fingerprint of the first certificate in a PEM file, as the client
/// shows it on first connection.
pub fn pem_fingerprint(pem: &str) -> Result<String, CliError> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = pem
        .find(begin)
        .ok_or_else(|| CliError::usage("no certificate (BEGIN CERTIFICATE) in the file"))?;
    let body = &pem[start + begin.len()..];
    let stop = body
        .find(end)
        .ok_or_else(|| CliError::usage("the certificate is not terminated (END CERTIFICATE)"))?;
    let der = base64_decode(&body[..stop])
        .ok_or_else(|| CliError::usage("the certificate is not valid base64"))?;
    Ok(gradebook_client::fingerprint(&der))
}

/// Decodes standard base64, ignoring whitespace.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let digits = digits
        .strip_suffix(b"==")
        .or_else(|| digits.strip_suffix(b"="))
        .unwrap_or(&digits);
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in digits {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_the_default_port() {
        assert_eq!(server_address("localhost"), "localhost:7302");
        assert_eq!(server_address("localhost:9"), "localhost:9");
        assert_eq!(server_address("[::1]:9"), "[::1]:9");
        assert_eq!(server_address("[::1]"), "[::1]:7302");
        assert_eq!(server_address("::1"), "[::1]:7302");
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVs\nbG8h").as_deref(), Some(&b"hello!"[..]));
        assert_eq!(base64_decode("a?=="), None);
    }
}
