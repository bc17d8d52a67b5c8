//! Questions to the person at the keyboard: passwords (never echoed),
//! yes/no confirmations and plain answers. When standard input is not a
//! terminal, answers are read from it one line each, so scripts and tests
//! can drive every prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use gradebook_proto::Secret;

use crate::error::CliError;

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Lines read from standard input so far, by anyone: a shell script's
/// line numbers count the passwords read by its commands too.
static LINES_READ: AtomicU64 = AtomicU64::new(0);

/// How many lines [`read_stdin_line`] has read.
pub fn stdin_lines_read() -> u64 {
    LINES_READ.load(Ordering::Relaxed)
}

/// Reads one line from standard input, without its line ending; `None` at
/// the end of the input.
pub fn read_stdin_line() -> Result<Option<String>, CliError> {
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    LINES_READ.fetch_add(1, Ordering::Relaxed);
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(Some(trimmed.to_owned()))
}

/// Reads a secret: from the environment variable `env` when it is set,
/// else from the terminal without echo after `prompt`, else one line of
/// standard input.
pub fn secret(prompt: &str, env: Option<&str>) -> Result<Secret, CliError> {
    if let Some(value) = env
        .and_then(|v| std::env::var(v).ok())
        .filter(|v| !v.is_empty())
    {
        return Ok(Secret::new(value));
    }
    let value = if stdin_is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| CliError::usage(format!("cannot read the password: {e}")))?
    } else {
        read_stdin_line()?.ok_or_else(|| {
            CliError::usage(format!(
                "{} expected on standard input, which is empty",
                prompt.trim_end_matches([':', ' '])
            ))
        })?
    };
    if value.is_empty() {
        return Err(CliError::usage("the password must not be empty"));
    }
    Ok(Secret::new(value))
}

/// The server's password policy: at least this many characters...
const PASSWORD_MIN_CHARS: usize = 10;
/// ...and at most this many bytes (1 KiB).
const PASSWORD_MAX_BYTES: usize = 1024;

/// Checks a new password against the server's policy, so that a short one
/// is refused before it is typed a second time, not after.
fn check_new_password(password: &Secret) -> Result<(), CliError> {
    let p = password.expose();
    if p.chars().count() < PASSWORD_MIN_CHARS {
        return Err(CliError::usage(format!(
            "the password is too short: it needs at least {PASSWORD_MIN_CHARS} characters"
        )));
    }
    if p.len() > PASSWORD_MAX_BYTES {
        return Err(CliError::usage(format!(
            "the password is too long: at most {PASSWORD_MAX_BYTES} bytes (1 KiB)"
        )));
    }
    Ok(())
}

/// A new password, typed twice on a terminal (once otherwise); its length
/// is checked before the second time.
pub fn new_secret(what: &str, env: &str) -> Result<Secret, CliError> {
    let first = secret(&format!("{what}: "), Some(env))?;
    check_new_password(&first)?;
    if stdin_is_terminal() && std::env::var_os(env).is_none() {
        let again = secret(&format!("{what} (again): "), None)?;
        if again != first {
            return Err(CliError::usage("the two passwords differ"));
        }
    }
    Ok(first)
}

/// Asks `question` on standard error and reads a yes/no answer; anything
/// but `y` or `yes` is a no.
pub fn confirm(question: &str) -> Result<bool, CliError> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} (y/N) ");
    let _ = err.flush();
    let answer = read_stdin_line()?.unwrap_or_default();
    if !stdin_is_terminal() {
        // Echo the piped answer so the transcript reads naturally.
        let _ = writeln!(err, "{answer}");
    }
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Asks for a plain answer (a user name) on the terminal or standard input.
pub fn ask(prompt: &str) -> Result<String, CliError> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let answer = read_stdin_line()?
        .ok_or_else(|| CliError::usage(format!("no answer to '{}'", prompt.trim())))?;
    Ok(answer.trim().to_owned())
}
