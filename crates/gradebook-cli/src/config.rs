//! The client's files: saved session tokens (one per server, mode 0600),
//! the known-servers file (certificate fingerprints trusted on first use,
//! like ssh's `known_hosts`) and the shell history.
//!
//! They live in `$XDG_CONFIG_HOME/gradebook` (or `~/.config/gradebook`;
//! the platform's configuration directory elsewhere); the history in
//! `$XDG_DATA_HOME/gradebook` (or `~/.local/share/gradebook`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use gradebook_proto::Secret;
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The directory named by `var` when it is set to an absolute path (the
/// XDG rule: a relative path is ignored).
fn xdg(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(dirs::home_dir)
}

/// The configuration directory, `.../gradebook`.
pub fn config_dir() -> Result<PathBuf, CliError> {
    let base = if cfg!(unix) {
        xdg("XDG_CONFIG_HOME").or_else(|| home().map(|h| h.join(".config")))
    } else {
        dirs::config_dir()
    };
    base.map(|b| b.join("gradebook")).ok_or_else(|| {
        CliError::usage("cannot find a configuration directory: set HOME or XDG_CONFIG_HOME")
    })
}

/// The data directory, `.../gradebook` (the shell history).
pub fn data_dir() -> Result<PathBuf, CliError> {
    let base = if cfg!(unix) {
        xdg("XDG_DATA_HOME").or_else(|| home().map(|h| h.join(".local").join("share")))
    } else {
        dirs::data_dir()
    };
    base.map(|b| b.join("gradebook"))
        .ok_or_else(|| CliError::usage("cannot find a data directory: set HOME or XDG_DATA_HOME"))
}

/// Creates `dir` (and its parents), readable by its owner only when new.
fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", dir.display())))
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over it),
/// with mode 0600 on Unix: the file may hold session tokens.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = path
        .parent()
        .ok_or_else(|| CliError::usage(format!("{} has no directory", path.display())))?;
    ensure_dir(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let fail = |e: std::io::Error| CliError::usage(format!("cannot write {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

/// One saved session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedSession {
    /// Who logged in.
    pub username: String,
    /// Their role when they logged in.
    pub role: String,
    /// The session token: sent in each request's envelope.
    pub token: Secret,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionsFile {
    #[serde(default)]
    servers: BTreeMap<String, SavedSession>,
}

/// The saved session tokens, keyed by server address.
#[derive(Debug)]
pub struct Sessions {
    path: PathBuf,
    file: SessionsFile,
}

impl Sessions {
    /// The file's path in the configuration directory.
    pub fn path() -> Result<PathBuf, CliError> {
        Ok(config_dir()?.join("sessions.json"))
    }

    /// Reads the saved sessions (none when the file does not exist).
    pub fn load() -> Result<Sessions, CliError> {
        let path = Self::path()?;
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CliError::usage(format!(
                    "{} is damaged ({e}): delete it and log in again",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SessionsFile::default(),
            Err(e) => {
                return Err(CliError::usage(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(Sessions { path, file })
    }

    /// The session saved for `server`.
    pub fn get(&self, server: &str) -> Option<&SavedSession> {
        self.file.servers.get(server)
    }

    /// Saves a session for `server`, replacing any other.
    pub fn set(&mut self, server: &str, session: SavedSession) -> Result<(), CliError> {
        self.file.servers.insert(server.to_owned(), session);
        self.save()
    }

    /// Forgets the session of `server`; whether there was one.
    pub fn remove(&mut self, server: &str) -> Result<bool, CliError> {
        let had = self.file.servers.remove(server).is_some();
        if had {
            self.save()?;
        }
        Ok(had)
    }

    fn save(&self) -> Result<(), CliError> {
        let mut bytes = serde_json::to_vec_pretty(&self.file)
            .map_err(|e| CliError::usage(format!("cannot encode the sessions: {e}")))?;
        bytes.push(b'\n');
        write_private(&self.path, &bytes)
    }
}

/// What the known-servers file says about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// Never seen.
    Unknown,
    /// Trusted with this fingerprint, written on this line of the file.
    Fingerprint { fingerprint: String, line: usize },
}

/// The known-servers file: one `HOST:PORT SHA256:hex` per line, `#`
/// comments, like ssh's `known_hosts`.
#[derive(Debug)]
pub struct KnownServers {
    path: PathBuf,
    text: String,
}

impl KnownServers {
    /// The file's path in the configuration directory.
    pub fn path() -> Result<PathBuf, CliError> {
        Ok(config_dir()?.join("known_servers"))
    }

    /// Reads the file (empty when it does not exist).
    pub fn load() -> Result<KnownServers, CliError> {
        let path = Self::path()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(CliError::connection(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(KnownServers { path, text })
    }

    /// Where the file is (named in messages, so the user can edit it).
    pub fn file(&self) -> &Path {
        &self.path
    }

    /// What the file says about `server`.
    pub fn lookup(&self, server: &str) -> Known {
        for (i, line) in self.text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            if let (Some(host), Some(fp)) = (words.next(), words.next())
                && host == server
            {
                return Known::Fingerprint {
                    fingerprint: normalise_fingerprint(fp),
                    line: i + 1,
                };
            }
        }
        Known::Unknown
    }

    /// Remembers `fingerprint` for `server`, replacing a previous entry.
    pub fn trust(&mut self, server: &str, fingerprint: &str) -> Result<(), CliError> {
        let mut out = String::new();
        if self.text.is_empty() {
            out.push_str("# Servers trusted by gradebook: HOST:PORT and the SHA-256 fingerprint of its certificate.\n");
        }
        for line in self.text.lines() {
            let first = line.split_whitespace().next();
            if first != Some(server) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(&format!("{server} {fingerprint}\n"));
        write_private(&self.path, out.as_bytes())?;
        self.text = out;
        Ok(())
    }
}

/// Normalises a fingerprint typed by a person: `SHA256:` then lower-case
/// hex, colons removed (`AB:CD…` and `sha256:abcd…` are the same).
pub fn normalise_fingerprint(fp: &str) -> String {
    let fp = fp.trim();
    let hex = fp
        .strip_prefix("SHA256:")
        .or_else(|| fp.strip_prefix("sha256:"))
        .unwrap_or(fp);
    let hex: String = hex.chars().filter(|c| *c != ':').collect();
    format!("SHA256:{}", hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised() {
        assert_eq!(normalise_fingerprint("sha256:AB:cd"), "SHA256:abcd");
        assert_eq!(normalise_fingerprint(" SHA256:abcd "), "SHA256:abcd");
        assert_eq!(normalise_fingerprint("ABCD"), "SHA256:abcd");
    }

    #[test]
    fn known_servers_are_found_by_address() {
        let k = KnownServers {
            path: PathBuf::from("/x"),
            text: "# comment\n\nlocalhost:7302 SHA256:aa\nother:1 SHA256:bb\n".into(),
        };
        assert_eq!(
            k.lookup("other:1"),
            Known::Fingerprint {
                fingerprint: "SHA256:bb".into(),
                line: 4
            }
        );
        assert_eq!(k.lookup("nope:1"), Known::Unknown);
    }
}
