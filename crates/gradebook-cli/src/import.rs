//! `gradebook import students|grades`: a thin reader of files. The file
//! (CSV, `.xlsx`, `.ods`) is split into cells with
//! `gradebook_core::sheet`; the server does the rest (`import.begin`,
//! `import.rows`, `import.commit`): it knows the columns, reads the values,
//! finds the students, sees what is already there, and writes everything
//! in one transaction or nothing.

use std::io::Read;
use std::path::Path;

use gradebook_core::sheet::{self, Sheet};
use gradebook_proto::command::{
    ImportAbortArgs, ImportBeginArgs, ImportCommitArgs, ImportRow, ImportRowsArgs,
};
use gradebook_proto::data::ImportReport;
use gradebook_proto::{ErrorCode, LineError, WireError, call};
use serde_json::{Value, json};

use crate::app::Ctx;
use crate::args::{ImportCommand, ImportOptions};
use crate::error::CliError;
use crate::output;
use crate::pipeline::{pipeline, progress_bar};

/// The most text one `import.rows` message carries. The command line sends
/// its saved token in each request's envelope, so its connection never
/// logs in, and the server holds it to the 16 KiB limit of messages sent
/// before a login: 12 KiB leaves room for the envelope. Messages are
/// pipelined, so their number costs little.
const CHUNK_BYTES: usize = 12 * 1024;

/// Reads a file, or standard input for `-`.
fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
        return Ok(b);
    }
    std::fs::read(path).map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))
}

/// The `import.rows` messages for `sheet`: its lines, in chunks.
fn chunks(sheet: &Sheet, import: i64) -> Result<Vec<call::ImportRows>, CliError> {
    let message = |rows| call::ImportRows(ImportRowsArgs { import, rows });
    let mut requests = Vec::new();
    let mut rows = Vec::new();
    let mut size = 0;
    for line in &sheet.lines {
        // What the line costs in JSON, near enough: its text, quotes and
        // commas, and room for escapes.
        let cost = 32
            + line
                .cells
                .iter()
                .map(|c| c.len() + c.len() / 8 + 4)
                .sum::<usize>();
        if cost > CHUNK_BYTES {
            return Err(CliError::usage(format!(
                "line {} is longer than {} KiB: no line of a student or grade file is",
                line.line,
                CHUNK_BYTES / 1024
            )));
        }
        if size + cost > CHUNK_BYTES && !rows.is_empty() {
            requests.push(message(std::mem::take(&mut rows)));
            size = 0;
        }
        rows.push(ImportRow {
            line: line.line,
            cells: line.cells.clone(),
        });
        size += cost;
    }
    if !rows.is_empty() {
        requests.push(message(rows));
    }
    Ok(requests)
}

/// The server's words for a refused header line, in the CLI's flags.
fn in_flags(mut e: WireError) -> WireError {
    if e.message.contains("ignore it by name") {
        e.message = e
            .message
            .replace("ignore it by name", "pass --ignore-column NAME");
    }
    e
}

/// The bad lines for `--json`.
fn bad_json(lines: &[LineError]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| json!({ "line": l.line, "reason": l.message }))
        .collect()
}

/// Prints the bad lines, one a line, on stderr.
fn report_lines(lines: &[LineError]) {
    for l in lines {
        eprintln!("line {}: {}", l.line, l.message);
    }
}

/// What the server answered to `import.commit`.
#[derive(Debug)]
pub enum Committed {
    /// The import was written (or, with `--dry-run`, checked).
    Done(ImportReport),
    /// Bad lines, and nothing was changed.
    Refused {
        /// The lines sent.
        lines: usize,
        /// The server's error, listing the bad lines.
        error: WireError,
    },
}

/// `gradebook import students|grades FILE --promotion P`.
pub async fn import(ctx: &mut Ctx, command: ImportCommand) -> Result<(), CliError> {
    let (kind, what, file, promotion, options) = match command {
        ImportCommand::Students {
            file,
            promotion,
            options,
        } => ("students", "student", file, promotion, options),
        ImportCommand::Grades {
            file,
            promotion,
            options,
        } => ("grades", "grade", file, promotion, options),
    };
    if ctx.in_shell && file == Path::new("-") {
        return Err(CliError::usage(
            "in the shell, standard input is the shell's: give a file name",
        ));
    }
    match send(ctx, kind, &file, &promotion, &options).await? {
        Committed::Done(report) => finish(ctx, what, &promotion, &options, report),
        Committed::Refused { lines, error } => refused(ctx, &options, lines, error),
    }
}

/// The whole of an import but its report: reads `file`, sends its lines to
/// the server as a `kind` import into `promotion`, and commits (or, with
/// `--dry-run`, checks and closes). `gradebook bench --import-grades`
/// times this very function.
pub async fn send(
    ctx: &mut Ctx,
    kind: &str,
    file: &Path,
    promotion: &str,
    options: &ImportOptions,
) -> Result<Committed, CliError> {
    let bytes = read_file(file)?;
    if sheet::is_legacy_text(&bytes) {
        eprintln!(
            "gradebook: {} is not UTF-8: read as Windows-1252 (Latin-1)",
            file.display()
        );
    }
    let sheet = sheet::read(&bytes, options.sheet.as_deref())
        .map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;

    let begin = call::ImportBegin(ImportBeginArgs {
        kind: kind.to_owned(),
        promotion: promotion.to_owned(),
        columns: sheet.headers.clone(),
        ignore: options.ignore_column.clone(),
    });
    let begun = ctx.conn.run(begin).await.map_err(|e| match e {
        // The header line is the file's fault: a usage error, like an
        // unreadable file.
        CliError::Server(w) if w.code == ErrorCode::InvalidValue => {
            CliError::usage(format!("{}: {}", file.display(), in_flags(w).message))
        }
        other => other,
    })?;

    let requests = chunks(&sheet, begun.import)?;
    let token = ctx.conn.token()?;
    let progress = progress_bar(requests.len(), "sending", 8);
    let client = ctx.conn.client().await?;
    let sent = pipeline(client, token.as_ref(), requests, true, &progress).await;
    progress.finish_and_clear();
    for result in sent? {
        result.map_err(CliError::Server)?;
    }

    let commit = call::ImportCommit(ImportCommitArgs {
        import: begun.import,
        dry_run: Some(options.dry_run),
        skip_bad: Some(options.skip_bad),
    });
    let committed = ctx.conn.run(commit).await;
    // A dry run leaves the import open on the server: close it now.
    if options.dry_run {
        let abort = call::ImportAbort(ImportAbortArgs {
            import: begun.import,
        });
        let _ = ctx.conn.run(abort).await;
    }
    match committed {
        Ok(report) => Ok(Committed::Done(report)),
        Err(CliError::Server(error)) if !error.lines.is_empty() => Ok(Committed::Refused {
            lines: sheet.lines.len(),
            error,
        }),
        Err(e) => Err(e),
    }
}

/// The summary of the lines that add nothing, for the one-line report.
fn aside(report: &ImportReport, what: &str) -> String {
    let mut parts = Vec::new();
    if report.present > 0 {
        parts.push(format!(
            "{} already present",
            output::count(report.present, what)
        ));
    }
    if report.repeated > 0 {
        parts.push(if report.repeated == 1 {
            "1 repeated line merged".to_owned()
        } else {
            format!("{} repeated lines merged", report.repeated)
        });
    }
    if report.empty > 0 {
        parts.push(if report.empty == 1 {
            "1 line without a grade skipped".to_owned()
        } else {
            format!("{} lines without a grade skipped", report.empty)
        });
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Prints how the import went. Bad lines skipped with `--skip-bad` make the
/// command fail (exit 1) after the good ones were written.
fn finish(
    ctx: &Ctx,
    what: &str,
    promotion: &str,
    options: &ImportOptions,
    report: ImportReport,
) -> Result<(), CliError> {
    let bad = report.skipped.len();
    if ctx.json {
        output::print_json(&json!({
            "dry_run": report.dry_run,
            "lines": report.lines,
            "imported": report.added,
            "present": report.present,
            "empty": report.empty,
            "repeated": report.repeated,
            "bad": bad_json(&report.skipped),
        }));
    } else {
        report_lines(&report.skipped);
    }
    let added = output::count(report.added, what);
    let bad_lines = output::count(bad as u64, "bad line");
    if !ctx.json {
        let aside = aside(&report, what);
        let mut text = if options.dry_run {
            let checked = output::count(report.lines, "line");
            format!(
                "Dry run: {checked} checked: {added} would be imported into {promotion}{aside}."
            )
        } else {
            format!("Imported {added} into {promotion}{aside}.")
        };
        match (bad, options.dry_run) {
            (0, _) => {}
            (_, true) => text.push_str(&format!(" {bad_lines} would be skipped (listed above).")),
            (_, false) => text.push_str(&format!(" Skipped {bad_lines} (listed above).")),
        }
        if options.dry_run {
            text.push_str(" Nothing was changed.");
        }
        output::print(&text);
    }
    match (bad, options.dry_run) {
        (0, _) => Ok(()),
        (_, true) => Err(CliError::Failed(format!(
            "dry run: {} bad (listed above); nothing was changed",
            output::count(bad as u64, "line")
        ))),
        (_, false) => Err(CliError::Failed(format!(
            "{bad_lines} skipped: the other lines were imported"
        ))),
    }
}

/// Bad lines without `--skip-bad`: listed, and nothing was changed.
fn refused(ctx: &Ctx, options: &ImportOptions, lines: usize, e: WireError) -> Result<(), CliError> {
    if ctx.json {
        output::print_json(&json!({
            "dry_run": options.dry_run,
            "lines": lines,
            "imported": 0,
            "bad": bad_json(&e.lines),
        }));
    } else {
        report_lines(&e.lines);
    }
    // The server lists at most 1,000; its message counts them all.
    let listed = e.lines.len();
    let total = e
        .message
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(listed);
    let more = if total > listed {
        format!(", the first {listed} listed")
    } else {
        " (listed above)".to_owned()
    };
    if options.dry_run {
        return Err(CliError::Failed(format!(
            "dry run: {} checked, {total} bad{more}; nothing was changed",
            output::count(lines as u64, "line")
        )));
    }
    Err(CliError::Failed(format!(
        "{}{more}: nothing imported; fix {}, or use --skip-bad to import the others",
        output::count(total as u64, "bad line"),
        if total > 1 { "them" } else { "it" }
    )))
}
