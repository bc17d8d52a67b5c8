//! Reaching the server: plaintext, TLS with a certificate authority, or TLS
//! trusted on first use (the fingerprint shown, asked about and remembered
//! in the known-servers file, like ssh); then calls that carry the saved
//! session token.

use std::time::{Duration, Instant};

use gradebook_client::{Client, ConnectOptions, Trust};
use gradebook_proto::Secret;
use serde_json::Value;

use crate::args::Global;
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

/// A connection to the server, opened on first use, with the session
/// token saved for that server.
#[derive(Debug)]
pub struct Conn {
    /// The connection settings.
    pub global: Global,
    /// `HOST:PORT`, the key of saved sessions and known servers.
    pub server: String,
    client: Option<Client>,
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
            client: None,
            fresh: true,
            last_used: Instant::now(),
            prompts_on_stdin,
        }
    }

    /// The open connection, opening (or reopening) it when needed.
    pub async fn client(&mut self) -> Result<&mut Client, CliError> {
        if self.last_used.elapsed() > REUSE_IDLE {
            self.client = None;
        }
        self.last_used = Instant::now();
        match &mut self.client {
            Some(c) => Ok(c),
            slot @ None => {
                let client = open(&self.global, &self.server, self.prompts_on_stdin).await?;
                self.fresh = true;
                Ok(slot.insert(client))
            }
        }
    }

    /// Forgets the connection (after a failure), so the next call reopens.
    pub fn reset(&mut self) {
        self.client = None;
    }

    /// The token saved for this server, if any.
    pub fn token(&self) -> Result<Option<Secret>, CliError> {
        Ok(Sessions::load()?.get(&self.server).map(|s| s.token.clone()))
    }

    /// Calls `cmd` with the saved session token (when there is one) and
    /// returns the server's data.
    pub async fn call(&mut self, cmd: &str, args: Value) -> Result<Value, CliError> {
        let token = self.token()?;
        self.call_as(token.as_ref(), cmd, args).await
    }

    /// Calls `cmd` with `token` in its envelope (or none).
    pub async fn call_as(
        &mut self,
        token: Option<&Secret>,
        cmd: &str,
        args: Value,
    ) -> Result<Value, CliError> {
        let client = self.client().await?;
        let result = match token {
            Some(t) => client.call_with_token(t, cmd, args).await,
            None => client.call(cmd, args).await,
        };
        let fresh = std::mem::replace(&mut self.fresh, false);
        result.map_err(|e| {
            let mut e = CliError::from_client(e, token.is_some());
            if let CliError::Connection(m) = &mut e {
                // A TLS server closes a plaintext connection at once.
                if fresh && self.global.plaintext {
                    m.push_str(" (if the server uses TLS, leave out --plaintext)");
                }
                self.reset();
            }
            e
        })
    }
}

/// Opens a connection as the settings say, asking about an unknown
/// server's certificate when they leave trust open.
async fn open(global: &Global, server: &str, prompts_on_stdin: bool) -> Result<Client, CliError> {
    if global.plaintext {
        let client = Client::connect(&ConnectOptions::plaintext(server))
            .await
            .map_err(|e| connect_error(server, e, true))?;
        return Ok(client);
    }
    if let Some(ca) = &global.ca_cert {
        return Client::connect(&ConnectOptions::tls(server, Trust::CaFile(ca.clone())))
            .await
            .map_err(|e| connect_error(server, e, false));
    }
    let mut known = KnownServers::load()?;
    // The handshake proves the server holds its certificate's key; which
    // certificate to trust is decided here, before anything is sent.
    let client = Client::connect(&ConnectOptions::tls(server, Trust::Tofu))
        .await
        .map_err(|e| connect_error(server, e, false))?;
    let seen = client
        .server_fingerprint()
        .map(normalise_fingerprint)
        .ok_or_else(|| CliError::connection("the server sent no certificate"))?;
    let accepted = global
        .accept_fingerprint
        .as_deref()
        .map(normalise_fingerprint);
    match known.lookup(server) {
        Known::Fingerprint { fingerprint, .. } if fingerprint == seen => Ok(client),
        Known::Fingerprint { fingerprint, line } => {
            if accepted.as_deref() == Some(seen.as_str()) {
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
            if let Some(accepted) = accepted {
                if accepted != seen {
                    return Err(CliError::connection(format!(
                        "the certificate of {server} has fingerprint {seen}, not {accepted} as --accept-fingerprint says: not connecting"
                    )));
                }
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

/// Words for a failed connection, with a hint for the usual mistakes.
fn connect_error(server: &str, e: gradebook_client::ClientError, plaintext: bool) -> CliError {
    use gradebook_client::ClientError;
    let hint = if plaintext {
        " (is the server running? if it uses TLS, leave out --plaintext)"
    } else {
        " (is the server running? if it was started with --plaintext, add --plaintext)"
    };
    match e {
        ClientError::Io(e) => {
            CliError::connection(format!("cannot connect to {server}: {e}{hint}"))
        }
        ClientError::Tls(m) => CliError::connection(format!("TLS with {server} failed: {m}{hint}")),
        ClientError::Timeout(d) => {
            CliError::connection(format!("{server} did not answer within {d:?}{hint}"))
        }
        other => CliError::connection(format!("cannot connect to {server}: {other}")),
    }
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
