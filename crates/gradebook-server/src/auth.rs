//! Passwords and login throttling.
//!
//! Passwords are hashed with Argon2id (19 MiB, t=2, p=1) on two threads of
//! their own, so a burst of logins cannot starve the threads that serve
//! requests, and each hash's 19 MiB of working memory is reused by the next
//! on the same thread instead of being left behind in the allocator's arena
//! of every blocking thread a hash ever ran on (50 logins at once left the
//! server 400 MB larger that way). An unknown user costs the same as a wrong password:
//! a dummy hash is verified, and both get the same error.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use gradebook_proto::{Secret, WireError};

use gradebook_store::Store;
use gradebook_store::throttle::{addr_key, user_key};

use crate::clock::Clock;

/// Shortest and longest password accepted (characters, bytes).
pub const PASSWORD_MIN_CHARS: usize = 10;
/// See [`PASSWORD_MIN_CHARS`].
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// Threads that run hashes.
const HASHING_THREADS: usize = 2;

/// Hashing, verifying and throttling.
#[derive(Debug)]
pub struct Auth {
    hashing: Hashers,
    dummy_hash: String,
    clock: Clock,
}

/// Checks a new password against the policy.
pub fn check_password_policy(password: &Secret) -> Result<(), WireError> {
    let p = password.expose();
    if p.len() > PASSWORD_MAX_BYTES {
        return Err(WireError::invalid_value(format!(
            "password longer than {PASSWORD_MAX_BYTES} bytes"
        )));
    }
    if p.chars().count() < PASSWORD_MIN_CHARS {
        return Err(WireError::invalid_value(format!(
            "password shorter than {PASSWORD_MIN_CHARS} characters"
        )));
    }
    Ok(())
}

/// The one error for every failed login, whatever the reason.
pub fn login_failed() -> WireError {
    WireError::unauthenticated("unknown user or wrong password")
}

impl Auth {
    /// Prepares the dummy hash (one Argon2 run at start-up); throttling
    /// windows are read on `clock`.
    pub fn new(clock: Clock) -> Result<Self, String> {
        let dummy_hash = hash_with(&mut Memory::default(), b"not the password of any user")?;
        Ok(Auth {
            hashing: Hashers::start(HASHING_THREADS)?,
            dummy_hash,
            clock,
        })
    }

    /// Hashes a password off the async threads.
    pub async fn hash(&self, password: &Secret) -> Result<String, WireError> {
        let password = password.clone();
        self.hashing
            .run(move |memory| hash_with(memory, password.expose().as_bytes()))
            .await
            .ok_or_else(WireError::internal)?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                WireError::internal()
            })
    }

    /// Verifies a password against a stored hash, or against the dummy hash
    /// when the user does not exist, so both take the same time.
    pub async fn verify(&self, password: &Secret, hash: Option<&str>) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.clone();
        let ok = self
            .hashing
            .run(move |memory| verify_with(memory, password.expose().as_bytes(), &hash))
            .await
            .unwrap_or(false);
        ok && known
    }

    /// Refuses a login attempt while its username or address is throttled.
    /// The failures are counted in the store, so every server sharing it
    /// counts them together (see `gradebook_store::throttle`).
    pub async fn check_throttle(
        &self,
        store: &dyn Store,
        username: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), WireError> {
        let wait = store
            .login_wait(&keys(username, addr), self.clock.unix_now())
            .await
            .map_err(crate::error::from_store)?;
        match wait {
            Some(secs) => Err(WireError::new(
                gradebook_proto::ErrorCode::RateLimited,
                format!("too many failed logins: try again in {secs} s"),
            )),
            None => Ok(()),
        }
    }

    /// Counts a failed login against the username and the address. A store
    /// that cannot count it is logged; the login fails all the same.
    pub async fn record_failure(&self, store: &dyn Store, username: &str, addr: Option<IpAddr>) {
        if let Err(e) = store
            .login_failed(&keys(username, addr), self.clock.unix_now())
            .await
        {
            tracing::error!(error = %e, "a failed login could not be counted");
        }
    }

    /// Forgets the failures of a username after a successful login.
    pub async fn record_success(&self, store: &dyn Store, username: &str) {
        if let Err(e) = store.login_succeeded(&user_key(username)).await {
            tracing::error!(error = %e, "a successful login's past failures could not be forgotten");
        }
    }
}

fn keys(username: &str, addr: Option<IpAddr>) -> Vec<String> {
    std::iter::once(user_key(username))
        .chain(addr.map(addr_key))
        .collect()
}

/// Argon2's working memory (19 MiB with the parameters in use), kept by
/// each hashing thread and reused by every hash it runs.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    /// The memory that hashing with `params` needs.
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

/// Hashes a password with Argon2id and its default parameters, into a PHC
/// string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
fn hash_with(memory: &mut Memory, password: &[u8]) -> Result<String, String> {
    let params = Params::default();
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, memory.blocks(&params))
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches a PHC string made by [`hash_with`] (or any
/// Argon2 PHC string within [`MAX_MEMORY_KIB`]).
fn verify_with(memory: &mut Memory, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, memory.blocks(&params))
        .is_ok()
        // `Output`'s comparison takes the same time wherever they differ.
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// The most memory a stored hash may ask for (KiB): a hash that asks for
/// more is refused rather than allowed to grow the server.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// A random password for the first admin: 20 characters from 120 bits.
pub fn random_password() -> Result<Secret, String> {
    let mut bytes = [0u8; 15];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_";
    // 6 bits per character from the 120 random bits.
    let mut out = String::with_capacity(20);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            let i = ((acc >> bits) & 63) as usize;
            out.push(char::from(ALPHABET[i % ALPHABET.len()]));
        }
    }
    Ok(Secret::new(out))
}

/// A job for the hashing threads, given the thread's Argon2 memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The hashing threads, fed through a queue; they stop when it is dropped.
#[derive(Debug)]
struct Hashers {
    jobs: mpsc::Sender<Job>,
}

impl Hashers {
    fn start(threads: usize) -> Result<Self, String> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("gradebook-hash-{i}"))
                .spawn(move || {
                    let mut memory = Memory::default();
                    loop {
                        // The lock is held only to take a job, not to run it.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            // A job that panics fails its own call only.
                            Ok(job) => {
                                let _ =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        job(&mut memory)
                                    }));
                            }
                            Err(mpsc::RecvError) => return,
                        }
                    }
                })
                .map_err(|e| format!("cannot start the hashing threads: {e}"))?;
        }
        Ok(Hashers { jobs })
    }

    /// Runs `f` on a hashing thread; `None` if it could not run.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Memory| {
                let _ = tx.send(f(memory));
            }))
            .ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_reads_hashes_made_before() {
        let mut memory = Memory::default();
        let phc = hash_with(&mut memory, b"correct horse battery").expect("hashes");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_with(&mut memory, b"correct horse battery", &phc));
        assert!(!verify_with(&mut memory, b"correct horse battery!", &phc));
        // Two hashes of one password differ (their salts do).
        let again = hash_with(&mut memory, b"correct horse battery").expect("hashes");
        assert_ne!(phc, again);
        // A hash stored by the first version (argon2's own PasswordHasher).
        use argon2::PasswordHasher;
        let stored = Argon2::default()
            .hash_password(b"an older password")
            .expect("hashes")
            .to_string();
        assert!(verify_with(&mut memory, b"an older password", &stored));
        assert!(!verify_with(&mut memory, b"another password", &stored));
        // Garbage, and a hash asking for more memory than allowed.
        assert!(!verify_with(&mut memory, b"x", "not a hash"));
        let greedy = phc.replace("m=19456", "m=4194304");
        assert!(!verify_with(&mut memory, b"correct horse battery", &greedy));
    }
}
