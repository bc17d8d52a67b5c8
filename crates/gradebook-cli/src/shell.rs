//! `gradebook shell`: the same commands without the `gradebook` prefix,
//! over one connection kept open. On a terminal: line editing, history
//! saved across runs, tab completion of command names, `help` and
//! `help COMMAND`. From a pipe: a script, stopped at its first failing line
//! (non-zero exit) unless `--keep-going`.

use std::borrow::Cow;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use crate::app::{self, Ctx};
use crate::args::{Cli, Command, Global, ShellArgs};
use crate::config::{Sessions, data_dir};
use crate::connect::Conn;
use crate::error::CliError;
use crate::input;
use crate::output;

/// Commands that make no sense inside the shell, hidden from its help.
const NOT_IN_SHELL: &[&str] = &["serve", "shell", "completions", "help"];

/// What a line asks the shell to do next.
enum Next {
    Continue,
    Exit,
}

/// Runs the shell until `exit`, end of input, or (in a script) a failure.
pub fn run(global: Global, args: ShellArgs) -> ExitCode {
    let rt = match app::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            app::report(&e);
            return ExitCode::from(e.exit_code());
        }
    };
    let interactive = input::stdin_is_terminal();
    let mut ctx = Ctx {
        conn: Conn::new(global.clone(), interactive),
        json: global.json,
        in_shell: true,
    };
    let code = if interactive {
        interactive_loop(&rt, &mut ctx, &global)
    } else {
        script_loop(&rt, &mut ctx, &global, args.keep_going)
    };
    ExitCode::from(code)
}

fn interactive_loop(rt: &tokio::runtime::Runtime, ctx: &mut Ctx, global: &Global) -> u8 {
    // Connect now: a certificate question or an unreachable server is
    // better met before the first command.
    if let Err(e) = rt.block_on(ctx.conn.connect()) {
        app::report(&e);
        return e.exit_code();
    }
    let config = Config::builder()
        .auto_add_history(true)
        .history_ignore_space(true)
        .history_ignore_dups(true)
        .and_then(|b| b.max_history_size(2000))
        .map(|b| b.completion_type(CompletionType::List).build());
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            output::print_error(&format!("cannot set up line editing: {e}"));
            return 1;
        }
    };
    let mut editor: Editor<ShellHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            output::print_error(&format!("cannot set up line editing: {e}"));
            return 1;
        }
    };
    editor.set_helper(Some(ShellHelper::new()));
    let history = data_dir().ok().map(|d| d.join("shell_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    eprintln!(
        "gradebook shell on {}: help for the commands, exit or Ctrl-D to leave.",
        ctx.conn.server
    );
    loop {
        let who = Sessions::load()
            .ok()
            .and_then(|s| s.get(&ctx.conn.server).map(|x| x.username.clone()));
        let prompt = match who {
            Some(u) => format!("{u}@{}> ", ctx.conn.server),
            None => format!("{}> ", ctx.conn.server),
        };
        match editor.readline(&prompt) {
            Ok(line) => match run_line(rt, ctx, global, &line) {
                Ok(Next::Exit) => break,
                Ok(Next::Continue) => {}
                Err(e) => app::report(&e),
            },
            // Ctrl-C abandons the line being typed, as in bash.
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                output::print_error(&format!("cannot read the line: {e}"));
                break;
            }
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(h);
    }
    0
}

fn script_loop(
    rt: &tokio::runtime::Runtime,
    ctx: &mut Ctx,
    global: &Global,
    keep_going: bool,
) -> u8 {
    let mut status = 0;
    loop {
        // One line at a time, the lock released in between: a command
        // may read its password from the next line.
        let line = match input::read_stdin_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                app::report(&e);
                return e.exit_code();
            }
        };
        let number = input::stdin_lines_read();
        match run_line(rt, ctx, global, &line) {
            Ok(Next::Exit) => break,
            Ok(Next::Continue) => {}
            Err(e) => {
                let message = e.to_string();
                if !message.is_empty() {
                    output::print_error(&format!("line {number}: {message}"));
                } else {
                    output::print_error(&format!("line {number} failed"));
                }
                if status == 0 {
                    status = e.exit_code();
                }
                if !keep_going {
                    break;
                }
            }
        }
    }
    status
}

/// Runs one line of the shell.
fn run_line(
    rt: &tokio::runtime::Runtime,
    ctx: &mut Ctx,
    global: &Global,
    line: &str,
) -> Result<Next, CliError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Next::Continue);
    }
    let mut words =
        shlex::split(line).ok_or_else(|| CliError::usage("unbalanced quotes in the line"))?;
    if words.first().map(String::as_str) == Some("gradebook") {
        words.remove(0);
    }
    match words.first().map(String::as_str) {
        None => return Ok(Next::Continue),
        Some("exit" | "quit" | "\\q") => return Ok(Next::Exit),
        Some("help" | "?") => {
            help(&words[1..])?;
            return Ok(Next::Continue);
        }
        _ => {}
    }
    let parsed = Cli::command()
        .try_get_matches_from(std::iter::once("gradebook".to_owned()).chain(words))
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                output::print(&e.to_string());
                return Ok(Next::Continue);
            }
            return Err(CliError::usage(clap_error_text(&e)));
        }
    };
    // A line's connection flags come from the environment, as the
    // shell's did, unless the line gives them: only those can differ.
    let g = &cli.global;
    let changed = [
        ("server", g.server == global.server),
        ("plaintext", g.plaintext == global.plaintext),
        ("ca_cert", g.ca_cert == global.ca_cert),
        (
            "accept_fingerprint",
            g.accept_fingerprint == global.accept_fingerprint,
        ),
        ("encoding", g.encoding == global.encoding),
        ("udp", g.udp == global.udp),
        ("quic", g.quic == global.quic),
        ("quic_port", g.quic_port == global.quic_port),
    ]
    .into_iter()
    .filter(|(id, same)| !same && matches.value_source(id) == Some(ValueSource::CommandLine))
    .map(|(id, _)| id)
    .collect::<Vec<_>>();
    if changed.contains(&"udp") {
        return Err(CliError::usage(
            "--udp is not for the shell, which keeps one connection: run gradebook --udp COMMAND",
        ));
    }
    if !changed.is_empty() {
        return Err(CliError::usage(
            "the shell keeps its connection: give --server, TLS flags, --quic and --encoding when \
             starting it",
        ));
    }
    if matches!(
        cli.command,
        Command::Serve(_) | Command::Bench(_) | Command::Shell(_) | Command::Watch(_)
    ) {
        return Err(CliError::usage(format!(
            "not in the shell: run gradebook {} from your terminal",
            match cli.command {
                Command::Serve(_) => "serve",
                Command::Bench(_) => "bench",
                Command::Watch(_) => "watch",
                _ => "shell",
            }
        )));
    }
    ctx.json = cli.global.json;
    let result = rt.block_on(app::execute(ctx, cli.command));
    ctx.json = global.json;
    result.map(|()| Next::Continue)
}

/// Clap's whole message (what is missing, the possible values, "a
/// similar subcommand exists"), worded for the shell: its lines have no
/// `gradebook` prefix, and `help` stands for `--help`.
fn clap_error_text(e: &clap::Error) -> String {
    let text = e.to_string();
    let text = text.trim_end().trim_start_matches("error: ");
    let text = text.replace("Usage: gradebook ", "Usage: ");
    text.replace(
        "For more information, try '--help'.",
        "help lists the commands, help COMMAND shows one.",
    )
}

/// `help` or `help COMMAND...`.
fn help(words: &[String]) -> Result<(), CliError> {
    let mut root = Cli::command();
    root.build();
    if words.is_empty() {
        let mut out = String::from("Commands (help COMMAND for details and examples):\n");
        let mut rows = Vec::new();
        for family in root.get_subcommands() {
            let name = family.get_name();
            if NOT_IN_SHELL.contains(&name) {
                continue;
            }
            let subs: Vec<_> = family
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .collect();
            if subs.is_empty() {
                rows.push((name.to_owned(), about(family)));
            }
            for s in subs {
                rows.push((format!("{name} {}", s.get_name()), about(s)));
            }
        }
        rows.push((
            "help [COMMAND]".into(),
            "This list, or one command's help".into(),
        ));
        rows.push(("exit".into(), "Leave the shell (or Ctrl-D)".into()));
        let width = rows
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, text) in rows {
            out.push_str(&format!("  {name:<width$}  {text}\n"));
        }
        out.push_str("\nFlags such as --json work on each line. Connection flags are set when the shell starts.");
        output::print(&out);
        return Ok(());
    }
    let mut cmd = &mut root;
    for w in words {
        let name = w.as_str();
        cmd = cmd.find_subcommand_mut(name).ok_or_else(|| {
            CliError::usage(format!(
                "no command '{}' (help lists them)",
                words.join(" ")
            ))
        })?;
    }
    let mut help = cmd.render_long_help().to_string();
    // The shell's lines have no `gradebook` prefix.
    help = help.replacen("Usage: gradebook ", "Usage: ", 1);
    output::print(&help);
    Ok(())
}

fn about(cmd: &clap::Command) -> String {
    cmd.get_about().map(|a| a.to_string()).unwrap_or_default()
}

/// Tab completion of command names and, after a command, of its flags.
struct ShellHelper {
    root: clap::Command,
}

impl ShellHelper {
    fn new() -> Self {
        let mut root = Cli::command();
        root.build();
        ShellHelper { root }
    }

    fn candidates(&self, done: &[&str], word: &str) -> Vec<String> {
        let mut cmd = &self.root;
        let mut words = done;
        if words.first() == Some(&"help") {
            words = &words[1..];
            if word.starts_with('-') {
                return Vec::new();
            }
        }
        for w in words {
            match cmd.find_subcommand(w) {
                Some(sub) => cmd = sub,
                None => break,
            }
        }
        let mut out: Vec<String> = if word.starts_with('-') {
            cmd.get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect()
        } else {
            let at_root = std::ptr::eq(cmd, &self.root);
            let mut names: Vec<String> = cmd
                .get_subcommands()
                .map(|s| s.get_name().to_owned())
                .filter(|n| n != "help" && !(at_root && NOT_IN_SHELL.contains(&n.as_str())))
                .collect();
            if at_root && done.is_empty() {
                names.extend(["help", "exit", "quit"].map(String::from));
            }
            names
        };
        out.retain(|c| c.starts_with(word));
        out.sort();
        out.dedup();
        out
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let done: Vec<&str> = before[..start].split_whitespace().collect();
        let pairs = self
            .candidates(&done, word)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: format!("{c} "),
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        default: bool,
    ) -> Cow<'b, str> {
        let _ = default;
        if output::colour(false) {
            Cow::Owned(format!("\x1b[1;32m{prompt}\x1b[0m"))
        } else {
            Cow::Borrowed(prompt)
        }
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_walks_the_command_tree() {
        let h = ShellHelper::new();
        assert!(h.candidates(&[], "pro").contains(&"promotion".to_owned()));
        assert!(!h.candidates(&[], "se").contains(&"serve".to_owned()));
        assert_eq!(
            h.candidates(&["promotion"], "av"),
            vec!["average".to_owned()]
        );
        assert!(
            h.candidates(&["grade", "add"], "--c")
                .contains(&"--coef".to_owned())
        );
        assert!(
            h.candidates(&["help"], "stu")
                .contains(&"student".to_owned())
        );
        assert_eq!(
            h.candidates(&[], "ex"),
            vec!["exit".to_owned(), "export".to_owned()]
        );
    }
}
