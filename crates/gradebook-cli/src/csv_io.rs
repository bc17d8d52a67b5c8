//! CSV import and export, as spreadsheets really write it: `,` or `;`
//! (detected), decimal commas, UTF-8 with or without BOM (UTF-16 and
//! Windows-1252 too), quoted fields, headers in any order.
//!
//! An import first checks every line locally (the values' domain with
//! `gradebook-core`) and against the server's read-only view (the
//! promotion, its students), so a dry run reports every bad line and a real
//! import sends nothing when one is bad. The requests are then pipelined;
//! if the server still refuses one, what was added is removed again, so
//! the import stays all-or-nothing (unless `--skip-bad`).

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use gradebook_client::Client;
use gradebook_core::{GradeValue, Name, check_text, value::format_hundredths};
use gradebook_proto::data::{Grades, Student, Students};
use gradebook_proto::{Id, Request, Secret, WireError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::app::Ctx;
use crate::args::{ExportCommand, ImportCommand, ImportOptions};
use crate::error::CliError;
use crate::output::{self, decode};
use crate::values;

/// Requests in flight at once: enough to keep the server busy, few enough
/// that neither side's socket buffers fill up while the other writes.
const WINDOW: usize = 256;

/// A progress bar is drawn for imports of at least this many requests.
const PROGRESS_FROM: usize = 200;

// ---------------------------------------------------------------- reading

/// A column the importer understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Col {
    FirstName,
    LastName,
    Number,
    Email,
    Student,
    Subject,
    Value,
    Coefficient,
    Label,
}

impl Col {
    fn name(self) -> &'static str {
        match self {
            Col::FirstName => "first_name",
            Col::LastName => "last_name",
            Col::Number => "number",
            Col::Email => "email",
            Col::Student => "student",
            Col::Subject => "subject",
            Col::Value => "value",
            Col::Coefficient => "coefficient",
            Col::Label => "label",
        }
    }

    /// Recognises a header, in English or French, any case, with or
    /// without accents, spaces or dashes.
    fn from_header(header: &str) -> Option<Col> {
        let h = normalise_header(header);
        Some(match h.as_str() {
            "first_name" | "firstname" | "first" | "given_name" | "forename" | "prenom" => {
                Col::FirstName
            }
            "last_name" | "lastname" | "last" | "surname" | "family_name" | "nom"
            | "nom_de_famille" => Col::LastName,
            "number" | "student_number" | "student_no" | "no" | "num" | "numero"
            | "numero_etudiant" | "n°" => Col::Number,
            "email" | "e_mail" | "mail" | "courriel" | "adresse_mail" => Col::Email,
            "student" | "student_id" | "id_student" | "etudiant" | "id_etudiant" => Col::Student,
            "subject" | "matiere" | "module" | "course" | "discipline" => Col::Subject,
            "value" | "grade" | "mark" | "note" | "score" => Col::Value,
            "coefficient" | "coef" | "coeff" | "weight" | "poids" => Col::Coefficient,
            "label" | "evaluation" | "exam" | "assessment" | "libelle" => Col::Label,
            _ => return None,
        })
    }
}

fn normalise_header(h: &str) -> String {
    let mut out = String::new();
    for c in h.trim().chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            ' ' | '-' | '.' | '_' => '_',
            c => c,
        };
        if !(c == '_' && (out.is_empty() || out.ends_with('_'))) {
            out.push(c);
        }
    }
    out.trim_end_matches('_').to_owned()
}

/// One data line of a CSV file.
#[derive(Debug)]
struct Row {
    /// Its line number in the file (the header is line 1).
    line: u64,
    fields: Vec<String>,
}

/// A CSV file read and split, its columns recognised.
#[derive(Debug)]
struct Sheet {
    columns: HashMap<Col, usize>,
    headers: Vec<String>,
    rows: Vec<Row>,
}

impl Sheet {
    /// The field of `col` on `row`, trimmed; empty when the column or the
    /// field is missing.
    fn get<'a>(&self, row: &'a Row, col: Col) -> &'a str {
        self.columns
            .get(&col)
            .and_then(|&i| row.fields.get(i))
            .map_or("", |s| s.trim())
    }

    fn has(&self, col: Col) -> bool {
        self.columns.contains_key(&col)
    }

    /// Checks that the columns in `required` are there.
    fn require(&self, required: &[Col]) -> Result<(), CliError> {
        let missing: Vec<&str> = required
            .iter()
            .filter(|c| !self.has(**c))
            .map(|c| c.name())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(CliError::usage(format!(
            "missing column{} {} (the header line has: {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            self.headers.join(", ")
        )))
    }
}

/// Reads a file (or standard input for `-`) as text: UTF-8 with or without
/// a BOM, UTF-16 with a BOM, or else Windows-1252 (old spreadsheets).
fn read_text(path: &Path) -> Result<String, CliError> {
    let bytes = if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
        b
    } else {
        std::fs::read(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?
    };
    Ok(decode_text(&bytes, &path.display().to_string()))
}

fn decode_text(bytes: &[u8], name: &str) -> String {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    for (bom, little) in [(b"\xFF\xFE", true), (b"\xFE\xFF", false)] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            let units: Vec<u16> = rest
                .chunks_exact(2)
                .map(|p| {
                    if little {
                        u16::from_le_bytes([p[0], p[1]])
                    } else {
                        u16::from_be_bytes([p[0], p[1]])
                    }
                })
                .collect();
            return String::from_utf16_lossy(&units);
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            eprintln!("gradebook: {name} is not UTF-8: read as Windows-1252 (Latin-1)");
            bytes.iter().map(|&b| windows_1252(b)).collect()
        }
    }
}

/// Windows-1252 to Unicode: Latin-1, except 0x80–0x9F.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// The separator: the most frequent of `;`, `,` and tab outside quotes on
/// the header line (`,` when there is none).
fn detect_separator(text: &str) -> u8 {
    let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let (mut semi, mut comma, mut tab, mut quoted) = (0, 0, 0, false);
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => semi += 1,
            ',' if !quoted => comma += 1,
            '\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if semi > 0 && semi >= comma && semi >= tab {
        b';'
    } else if tab > comma {
        b'\t'
    } else {
        b','
    }
}

/// The 1-based number of the line holding byte `offset`.
fn line_of(line_starts: &[u64], offset: u64) -> u64 {
    line_starts.partition_point(|&start| start <= offset) as u64
}

/// Splits `text` into a header and data rows, and recognises the columns.
fn parse_sheet(text: &str) -> Result<Sheet, CliError> {
    let separator = detect_separator(text);
    let line_starts: Vec<u64> = std::iter::once(0)
        .chain(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i as u64 + 1),
        )
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut headers: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            CliError::usage(format!("line {line}: not readable as CSV: {e}"))
        })?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        // The reader's own line count skips blank lines: count from the
        // byte offset instead.
        let line = record.position().map_or(0, |p| {
            // It points where reading began: before any blank lines.
            let start = p.byte() as usize;
            let skipped = text.get(start..).map_or(0, |rest| {
                rest.len() - rest.trim_start_matches(['\r', '\n']).len()
            });
            line_of(&line_starts, (start + skipped) as u64)
        });
        let fields: Vec<String> = record.iter().map(str::to_owned).collect();
        if headers.is_none() {
            headers = Some(fields);
        } else {
            rows.push(Row { line, fields });
        }
    }
    let headers = headers.ok_or_else(|| CliError::usage("the file is empty"))?;
    let mut columns = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(col) = Col::from_header(h) {
            if let Some(&j) = columns.get(&col) {
                return Err(CliError::usage(format!(
                    "columns {} ({}) and {} ({}) both give {}",
                    j + 1,
                    headers[j],
                    i + 1,
                    h,
                    col.name()
                )));
            }
            columns.insert(col, i);
        }
    }
    Ok(Sheet {
        columns,
        headers,
        rows,
    })
}

// ---------------------------------------------------------------- checking

/// A line that cannot be imported, and why.
#[derive(Debug, Clone)]
struct Bad {
    line: u64,
    reason: String,
}

fn text_field(field: &str, value: &str, max: usize) -> Result<String, String> {
    check_text(field, value, 1, max).map_err(|e| e.0)?;
    Ok(value.to_owned())
}

fn optional_field(field: &str, value: &str, max: usize) -> Result<Option<String>, String> {
    if value.is_empty() {
        Ok(None)
    } else {
        text_field(field, value, max).map(Some)
    }
}

/// The server's rule for e-mail addresses: something@something, no spaces.
fn email_field(value: &str) -> Result<Option<String>, String> {
    let email = optional_field("email", value, 254)?;
    if let Some(e) = &email {
        let plausible = e.find('@').is_some_and(|i| i > 0 && i + 1 < e.len())
            && !e.chars().any(char::is_whitespace);
        if !plausible {
            return Err(format!("'{}' is not an e-mail address", e.escape_debug()));
        }
    }
    Ok(email)
}

/// A student to add, from one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NewStudent {
    first_name: String,
    last_name: String,
    number: Option<String>,
    email: Option<String>,
}

/// Checks the students of `sheet` against the values' rules and the
/// students already in the promotion. Returns the students to add (with
/// their line), the bad lines, and how many repeated lines were merged.
fn check_students(
    sheet: &Sheet,
    existing: &[Student],
) -> (Vec<(u64, NewStudent)>, Vec<Bad>, usize) {
    let mut good: Vec<(u64, NewStudent)> = Vec::new();
    let mut bad = Vec::new();
    let mut seen: HashMap<(String, NewStudent), u64> = HashMap::new();
    let mut numbers: HashMap<String, u64> = HashMap::new();
    let enrolled: HashMap<&str, &Student> = existing
        .iter()
        .filter_map(|s| s.number.as_deref().map(|n| (n, s)))
        .collect();
    let mut merged = 0;
    for row in &sheet.rows {
        let parsed = (|| -> Result<NewStudent, String> {
            Ok(NewStudent {
                first_name: text_field("first_name", sheet.get(row, Col::FirstName), 64)?,
                last_name: text_field("last_name", sheet.get(row, Col::LastName), 64)?,
                number: optional_field("number", sheet.get(row, Col::Number), 32)?,
                email: email_field(sheet.get(row, Col::Email))?,
            })
        })();
        let student = match parsed {
            Ok(s) => s,
            Err(reason) => {
                bad.push(Bad {
                    line: row.line,
                    reason,
                });
                continue;
            }
        };
        // The same student on several lines (an export has one line per
        // grade) is one student; the old id, when given, keeps homonyms
        // apart.
        let key = (sheet.get(row, Col::Student).to_owned(), student.clone());
        if seen.contains_key(&key) {
            merged += 1;
            continue;
        }
        // Its later lines merge into this one, good or bad: a bad student
        // is reported once.
        seen.insert(key, row.line);
        if let Some(n) = &student.number {
            if let Some(line) = numbers.get(n) {
                bad.push(Bad {
                    line: row.line,
                    reason: format!("number {n} is already used on line {line}"),
                });
                continue;
            }
            if let Some(s) = enrolled.get(n.as_str()) {
                bad.push(Bad {
                    line: row.line,
                    reason: format!(
                        "a student with number {n} already exists (id {}, in {})",
                        s.id, s.promotion
                    ),
                });
                continue;
            }
            numbers.insert(n.clone(), row.line);
        }
        good.push((row.line, student));
    }
    (good, bad, merged)
}

/// A grade to add, from one line.
#[derive(Debug, Clone)]
struct NewGrade {
    student: i64,
    subject: String,
    value: GradeValue,
    coefficient: Option<f64>,
    label: Option<String>,
}

impl NewGrade {
    fn args(&self) -> Value {
        let mut args = serde_json::Map::new();
        args.insert("student".into(), self.student.into());
        args.insert("subject".into(), self.subject.clone().into());
        args.insert(
            "value".into(),
            serde_json::to_value(self.value).unwrap_or(Value::Null),
        );
        if let Some(c) = self.coefficient {
            args.insert("coefficient".into(), json!(c));
        }
        if let Some(l) = &self.label {
            args.insert("label".into(), l.clone().into());
        }
        Value::Object(args)
    }
}

/// How the lines of a grade file name their student.
enum Roster {
    /// In this promotion, by number or by name (or by id, checked).
    Promotion {
        name: String,
        students: Vec<Student>,
    },
    /// By id; these ids exist (the others are in `missing`, with why).
    Ids { missing: HashMap<i64, String> },
}

impl Roster {
    fn find(&self, sheet: &Sheet, row: &Row) -> Result<i64, String> {
        let id_text = sheet.get(row, Col::Student);
        match self {
            Roster::Promotion { name, students } => {
                let number = sheet.get(row, Col::Number);
                let (first, last) = (
                    sheet.get(row, Col::FirstName),
                    sheet.get(row, Col::LastName),
                );
                if !number.is_empty() {
                    return students
                        .iter()
                        .find(|s| s.number.as_deref() == Some(number))
                        .map(|s| s.id)
                        .ok_or_else(|| format!("no student with number {number} in {name}"));
                }
                if !first.is_empty() || !last.is_empty() {
                    let found: Vec<i64> = students
                        .iter()
                        .filter(|s| s.first_name == first && s.last_name == last)
                        .map(|s| s.id)
                        .collect();
                    return match found.as_slice() {
                        [id] => Ok(*id),
                        [] => Err(format!("no student named {first} {last} in {name}")),
                        many => Err(format!(
                            "{} students are named {first} {last} in {name}: give their number",
                            many.len()
                        )),
                    };
                }
                if !id_text.is_empty() {
                    let id = parse_id(id_text)?;
                    return if students.iter().any(|s| s.id == id) {
                        Ok(id)
                    } else {
                        Err(format!("student {id} is not in {name}"))
                    };
                }
                Err("no student on this line (number, names or student id)".into())
            }
            Roster::Ids { missing } => {
                if id_text.is_empty() {
                    return Err("no student id on this line".into());
                }
                let id = parse_id(id_text)?;
                match missing.get(&id) {
                    Some(why) => Err(why.clone()),
                    None => Ok(id),
                }
            }
        }
    }
}

fn parse_id(text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .map_err(|_| format!("student id '{}' is not a number", text.escape_debug()))
}

/// Checks the grades of `sheet`. Returns the grades to add (with their
/// line), the bad lines, and how many lines had no grade (a student alone).
fn check_grades(sheet: &Sheet, roster: &Roster) -> (Vec<(u64, NewGrade)>, Vec<Bad>, usize) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut empty = 0;
    for row in &sheet.rows {
        let (subject, value) = (sheet.get(row, Col::Subject), sheet.get(row, Col::Value));
        if subject.is_empty() && value.is_empty() {
            empty += 1;
            continue;
        }
        let parsed = (|| -> Result<NewGrade, String> {
            let student = roster.find(sheet, row)?;
            let subject = Name::parse("subject", subject)
                .map_err(|e| e.0)?
                .into_string();
            if value.is_empty() {
                return Err("no value (a number from 0 to 20, or ABS, EXC, ATT)".into());
            }
            let value = values::grade_value(value)?;
            let coef = sheet.get(row, Col::Coefficient);
            let coefficient = if coef.is_empty() {
                None
            } else {
                Some(values::coefficient(coef)?.to_f64())
            };
            let label = optional_field("label", sheet.get(row, Col::Label), 64)?;
            Ok(NewGrade {
                student,
                subject,
                value,
                coefficient,
                label,
            })
        })();
        match parsed {
            Ok(g) => good.push((row.line, g)),
            Err(reason) => bad.push(Bad {
                line: row.line,
                reason,
            }),
        }
    }
    (good, bad, empty)
}

// ---------------------------------------------------------------- sending

/// Sends `requests` pipelined, at most [`WINDOW`] in flight, with `token`
/// in each envelope; stops sending at the first refusal when `stop_early`.
/// Returns one result per request sent, in order.
async fn pipeline(
    client: &mut Client,
    token: Option<&Secret>,
    cmd: &str,
    requests: &[Value],
    stop_early: bool,
    progress: &ProgressBar,
) -> Result<Vec<Result<Value, WireError>>, CliError> {
    let mut results = Vec::with_capacity(requests.len());
    let mut sent = 0;
    let mut failed = false;
    loop {
        // Refill when half the window has come back: fewer, larger writes.
        if !failed && sent < requests.len() && sent - results.len() <= WINDOW / 2 {
            while sent < requests.len() && sent - results.len() < WINDOW {
                let request = Request {
                    id: Some(Id::Int(sent as i64 + 1)),
                    cmd: cmd.to_owned(),
                    args: Some(requests[sent].clone()),
                    token: token.cloned(),
                    pad: None,
                };
                client
                    .send_request(&request)
                    .map_err(|e| CliError::from_client(e, token.is_some()))?;
                sent += 1;
            }
        }
        if results.len() == sent {
            break;
        }
        let reply = client.recv().await.map_err(|e| {
            CliError::connection(format!(
                "{}; {} of {} requests were acknowledged, the others may or may not have been applied",
                CliError::from_client(e, token.is_some()),
                results.len(),
                requests.len()
            ))
        })?;
        if reply.result.is_err() && stop_early {
            failed = true;
        }
        results.push(reply.result);
        progress.inc(1);
    }
    Ok(results)
}

fn progress_bar(len: usize, what: &str) -> ProgressBar {
    if len < PROGRESS_FROM || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let template = format!("{what} {{bar:40}} {{pos}}/{{len}} eta {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar
}

/// How an import went, for the summary and `--json`.
#[derive(Debug, Default)]
struct Outcome {
    lines: usize,
    imported: usize,
    bad: Vec<Bad>,
    /// Lines merged into an earlier one (students) or without a grade.
    skipped: usize,
}

fn report_bad(bad: &mut [Bad]) {
    bad.sort_by_key(|b| b.line);
    for b in bad.iter() {
        eprintln!("line {}: {}", b.line, b.reason);
    }
}

/// Sends the checked requests and settles all-or-nothing: on a refusal
/// without `--skip-bad`, what was added is removed again.
async fn send_checked(
    ctx: &mut Ctx,
    lines: &[u64],
    cmd: &str,
    requests: Vec<Value>,
    undo: (&str, &str),
    options: &ImportOptions,
    outcome: &mut Outcome,
) -> Result<(), CliError> {
    let token = ctx.conn.token()?;
    let progress = progress_bar(requests.len(), "importing");
    let client = ctx.conn.client().await?;
    let results = pipeline(
        client,
        token.as_ref(),
        cmd,
        &requests,
        !options.skip_bad,
        &progress,
    )
    .await;
    progress.finish_and_clear();
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            ctx.conn.reset();
            return Err(e);
        }
    };
    let mut added = Vec::new();
    let mut refused = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(data) => added.push(data.get("id").and_then(Value::as_i64).unwrap_or(-1)),
            Err(e) => refused.push(Bad {
                line: lines[i],
                reason: format!("refused by the server: {}: {}", e.code, e.message),
            }),
        }
    }
    if !refused.is_empty() && !options.skip_bad {
        let (undo_cmd, key) = undo;
        let undo_requests: Vec<Value> = added
            .iter()
            .filter(|id| **id >= 0)
            .map(|id| json!({ key: id }))
            .collect();
        let client = ctx.conn.client().await?;
        let undone = pipeline(
            client,
            token.as_ref(),
            undo_cmd,
            &undo_requests,
            false,
            &ProgressBar::hidden(),
        )
        .await?;
        let failed_undo = undone.iter().filter(|r| r.is_err()).count();
        outcome.bad.extend(refused);
        report_bad(&mut outcome.bad);
        let mut message = format!(
            "the server refused a line: nothing imported ({} added then removed again)",
            added.len() - failed_undo
        );
        if failed_undo > 0 {
            message.push_str(&format!("; {failed_undo} could not be removed"));
        }
        return Err(CliError::Failed(message));
    }
    outcome.imported = added.len();
    outcome.bad.extend(refused);
    Ok(())
}

/// Prints how the import went; an error when lines were bad and not
/// skipped (or in a dry run).
fn finish(
    ctx: &Ctx,
    what: &str,
    target: &str,
    options: &ImportOptions,
    mut outcome: Outcome,
    skipped_why: (&str, &str),
) -> Result<(), CliError> {
    report_bad(&mut outcome.bad);
    let bad = outcome.bad.len();
    if ctx.json {
        let bad_lines: Vec<Value> = outcome
            .bad
            .iter()
            .map(|b| json!({ "line": b.line, "reason": b.reason }))
            .collect();
        output::print_json(&json!({
            "dry_run": options.dry_run,
            "lines": outcome.lines,
            "imported": outcome.imported,
            "skipped": outcome.skipped,
            "bad": bad_lines,
        }));
    }
    let skipped = match outcome.skipped {
        0 => String::new(),
        1 => format!(" (1 {})", skipped_why.0),
        n => format!(" ({n} {})", skipped_why.1),
    };
    if options.dry_run {
        if bad > 0 {
            return Err(CliError::Failed(format!(
                "dry run: {} checked, {bad} bad (listed above); nothing was changed",
                output::count(outcome.lines as u64, "line")
            )));
        }
        if !ctx.json {
            output::print(&format!(
                "Dry run: {} checked, all good: {} would be imported{target}{skipped}. Nothing was changed.",
                output::count(outcome.lines as u64, "line"),
                output::count(outcome.imported as u64, what)
            ));
        }
        return Ok(());
    }
    if bad > 0 && !options.skip_bad {
        return Err(CliError::Failed(format!(
            "{bad} bad line{} (listed above): nothing imported; fix {}, or use --skip-bad to import the others",
            if bad > 1 { "s" } else { "" },
            if bad > 1 { "them" } else { "it" }
        )));
    }
    if !ctx.json {
        let mut line = format!(
            "Imported {}{target}{skipped}.",
            output::count(outcome.imported as u64, what)
        );
        if bad > 0 {
            line.push_str(&format!(
                " Skipped {bad} bad line{} (listed above).",
                if bad > 1 { "s" } else { "" }
            ));
        }
        output::print(&line);
    }
    Ok(())
}

/// The students of `promotion` (also proves it exists and may be read).
async fn promotion_students(ctx: &mut Ctx, promotion: &str) -> Result<Vec<Student>, CliError> {
    let data = ctx
        .conn
        .call("student.list", json!({ "promotion": promotion }))
        .await?;
    Ok(decode::<Students>(data)?.students)
}

/// The students of every promotion this user may see: institutional
/// numbers are unique across promotions.
async fn visible_students(ctx: &mut Ctx) -> Result<Vec<Student>, CliError> {
    let data = ctx.conn.call("promotion.list", json!({})).await?;
    let promotions = decode::<gradebook_proto::data::Promotions>(data)?.promotions;
    let token = ctx.conn.token()?;
    let requests: Vec<Value> = promotions
        .iter()
        .map(|p| json!({ "promotion": p.name }))
        .collect();
    let client = ctx.conn.client().await?;
    let results = pipeline(
        client,
        token.as_ref(),
        "student.list",
        &requests,
        false,
        &ProgressBar::hidden(),
    )
    .await?;
    let mut all = Vec::new();
    // A promotion this user may list but not read is skipped: the server
    // still refuses a duplicate number when the student is added.
    for data in results.into_iter().flatten() {
        all.extend(decode::<Students>(data)?.students);
    }
    Ok(all)
}

/// `gradebook import students|grades`.
pub async fn import(ctx: &mut Ctx, command: ImportCommand) -> Result<(), CliError> {
    let file = match &command {
        ImportCommand::Students { file, .. } | ImportCommand::Grades { file, .. } => file,
    };
    if ctx.in_shell && file == Path::new("-") {
        return Err(CliError::usage(
            "in the shell, standard input is the shell's: give a file name",
        ));
    }
    match command {
        ImportCommand::Students {
            file,
            promotion,
            options,
        } => {
            let sheet = parse_sheet(&read_text(&file)?)?;
            sheet.require(&[Col::FirstName, Col::LastName])?;
            // Proves the promotion exists; numbers are unique across all.
            promotion_students(ctx, &promotion).await?;
            let existing = visible_students(ctx).await?;
            let (good, bad, merged) = check_students(&sheet, &existing);
            let mut outcome = Outcome {
                lines: sheet.rows.len(),
                imported: good.len(),
                bad,
                skipped: merged,
            };
            let blocked = !outcome.bad.is_empty() && !options.skip_bad;
            if !options.dry_run && !blocked {
                let lines: Vec<u64> = good.iter().map(|(l, _)| *l).collect();
                let requests: Vec<Value> = good
                    .iter()
                    .map(|(_, s)| {
                        let mut args = serde_json::Map::new();
                        args.insert("promotion".into(), promotion.clone().into());
                        args.insert("first_name".into(), s.first_name.clone().into());
                        args.insert("last_name".into(), s.last_name.clone().into());
                        if let Some(n) = &s.number {
                            args.insert("number".into(), n.clone().into());
                        }
                        if let Some(e) = &s.email {
                            args.insert("email".into(), e.clone().into());
                        }
                        Value::Object(args)
                    })
                    .collect();
                send_checked(
                    ctx,
                    &lines,
                    "student.add",
                    requests,
                    ("student.remove", "id"),
                    &options,
                    &mut outcome,
                )
                .await?;
            }
            finish(
                ctx,
                "student",
                &format!(" into {promotion}"),
                &options,
                outcome,
                ("repeated line merged", "repeated lines merged"),
            )
        }
        ImportCommand::Grades {
            file,
            promotion,
            options,
        } => {
            let sheet = parse_sheet(&read_text(&file)?)?;
            sheet.require(&[Col::Subject, Col::Value])?;
            let roster = match &promotion {
                Some(p) => {
                    if !(sheet.has(Col::Number)
                        || sheet.has(Col::Student)
                        || (sheet.has(Col::FirstName) && sheet.has(Col::LastName)))
                    {
                        return Err(CliError::usage(format!(
                            "no column names the students: number, last_name and first_name, or student (the header line has: {})",
                            sheet.headers.join(", ")
                        )));
                    }
                    Roster::Promotion {
                        name: p.clone(),
                        students: promotion_students(ctx, p).await?,
                    }
                }
                None => {
                    if !sheet.has(Col::Student) {
                        return Err(CliError::usage(
                            "without --promotion, a student column (the student's id) is needed; \
                             to find students by number or name, give --promotion",
                        ));
                    }
                    Roster::Ids {
                        missing: missing_students(ctx, &sheet).await?,
                    }
                }
            };
            let (good, bad, empty) = check_grades(&sheet, &roster);
            let mut outcome = Outcome {
                lines: sheet.rows.len(),
                imported: good.len(),
                bad,
                skipped: empty,
            };
            let blocked = !outcome.bad.is_empty() && !options.skip_bad;
            if !options.dry_run && !blocked {
                let lines: Vec<u64> = good.iter().map(|(l, _)| *l).collect();
                let requests: Vec<Value> = good.iter().map(|(_, g)| g.args()).collect();
                send_checked(
                    ctx,
                    &lines,
                    "grade.add",
                    requests,
                    ("grade.delete", "id"),
                    &options,
                    &mut outcome,
                )
                .await?;
            }
            let target = promotion.map(|p| format!(" into {p}")).unwrap_or_default();
            finish(
                ctx,
                "grade",
                &target,
                &options,
                outcome,
                (
                    "line without a grade skipped",
                    "lines without a grade skipped",
                ),
            )
        }
    }
}

/// The student ids named in the file that do not exist (or may not be
/// graded by this user), each with the server's reason.
async fn missing_students(ctx: &mut Ctx, sheet: &Sheet) -> Result<HashMap<i64, String>, CliError> {
    let mut ids: Vec<i64> = sheet
        .rows
        .iter()
        .filter_map(|r| sheet.get(r, Col::Student).parse::<i64>().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let token = ctx.conn.token()?;
    let requests: Vec<Value> = ids.iter().map(|id| json!({ "id": id })).collect();
    let client = ctx.conn.client().await?;
    let results = pipeline(
        client,
        token.as_ref(),
        "student.average",
        &requests,
        false,
        &ProgressBar::hidden(),
    )
    .await?;
    let mut missing = HashMap::new();
    for (id, r) in ids.into_iter().zip(results) {
        if let Err(e) = r {
            if e.code == gradebook_proto::ErrorCode::Unauthenticated {
                return Err(CliError::from_client(
                    gradebook_client::ClientError::Server(e),
                    token.is_some(),
                ));
            }
            missing.insert(id, format!("student {id}: {}: {}", e.code, e.message));
        }
    }
    Ok(missing)
}

// ---------------------------------------------------------------- export

/// A number as the export writes it: no trailing zeros, optionally with a
/// decimal comma.
fn export_number(hundredths: i64, decimal_comma: bool) -> String {
    let s = format_hundredths(hundredths);
    if decimal_comma {
        s.replace('.', ",")
    } else {
        s
    }
}

/// `gradebook export promotion P`.
pub async fn export(ctx: &mut Ctx, command: ExportCommand) -> Result<(), CliError> {
    let ExportCommand::Promotion {
        name,
        output: path,
        separator,
        decimal_comma,
    } = command;
    if decimal_comma && separator == b',' {
        return Err(CliError::usage(
            "--decimal-comma needs another separator: --separator ';'",
        ));
    }
    let mut students = promotion_students(ctx, &name).await?;
    students.sort_by(|a, b| {
        (&a.last_name, &a.first_name, a.id).cmp(&(&b.last_name, &b.first_name, b.id))
    });
    let token = ctx.conn.token()?;
    let requests: Vec<Value> = students
        .iter()
        .map(|s| json!({ "student": s.id }))
        .collect();
    let client = ctx.conn.client().await?;
    let results = pipeline(
        client,
        token.as_ref(),
        "grade.list",
        &requests,
        false,
        &ProgressBar::hidden(),
    )
    .await?;
    let mut writer = csv::WriterBuilder::new()
        .delimiter(separator)
        .from_writer(Vec::new());
    let io = |e: csv::Error| CliError::Failed(format!("cannot write the CSV: {e}"));
    writer
        .write_record([
            "student",
            "last_name",
            "first_name",
            "number",
            "email",
            "subject",
            "value",
            "coefficient",
            "label",
        ])
        .map_err(io)?;
    let mut grade_count = 0u64;
    for (s, result) in students.iter().zip(results) {
        let grades: Grades = decode(result.map_err(CliError::Server)?)?;
        let identity = [
            s.id.to_string(),
            s.last_name.clone(),
            s.first_name.clone(),
            s.number.clone().unwrap_or_default(),
            s.email.clone().unwrap_or_default(),
        ];
        if grades.grades.is_empty() {
            let mut record = identity.to_vec();
            record.extend([String::new(), String::new(), String::new(), String::new()]);
            writer.write_record(&record).map_err(io)?;
        }
        for g in &grades.grades {
            let value = match g.value {
                GradeValue::Points(p) => export_number(i64::from(p.hundredths()), decimal_comma),
                other => other.to_string(),
            };
            let mut record = identity.to_vec();
            record.extend([
                g.subject.clone(),
                value,
                export_number(i64::from(g.coefficient.hundredths()), decimal_comma),
                g.label.clone().unwrap_or_default(),
            ]);
            writer.write_record(&record).map_err(io)?;
            grade_count += 1;
        }
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| CliError::Failed(format!("cannot write the CSV: {e}")))?;
    match path {
        Some(p) if p != Path::new("-") => {
            std::fs::write(&p, &bytes)
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", p.display())))?;
            eprintln!(
                "Exported {} and {} of {name} to {}.",
                output::count(students.len() as u64, "student"),
                output::count(grade_count, "grade"),
                p.display()
            );
        }
        _ => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&bytes);
            let _ = out.flush();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_recognised_in_any_form() {
        assert_eq!(Col::from_header(" Prénom "), Some(Col::FirstName));
        assert_eq!(Col::from_header("Last Name"), Some(Col::LastName));
        assert_eq!(Col::from_header("E-mail"), Some(Col::Email));
        assert_eq!(Col::from_header("COEF"), Some(Col::Coefficient));
        assert_eq!(Col::from_header("Matière"), Some(Col::Subject));
        assert_eq!(Col::from_header("whatever"), None);
    }

    #[test]
    fn separators_are_detected_outside_quotes() {
        assert_eq!(detect_separator("a;b;c\n1;2;3"), b';');
        assert_eq!(detect_separator("a,b,c"), b',');
        assert_eq!(detect_separator("\"a;x\",b,c"), b',');
        assert_eq!(detect_separator("a\tb"), b'\t');
        assert_eq!(detect_separator("single"), b',');
    }

    #[test]
    fn text_is_decoded_from_what_spreadsheets_write() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFnom", "f"), "nom");
        assert_eq!(decode_text(b"\xFF\xFEn\x00\xe9\x00", "f"), "né");
        assert_eq!(decode_text(b"pr\xe9nom \x80", "f"), "prénom €");
    }

    #[test]
    fn sheets_keep_line_numbers_and_quoted_fields() {
        let s = parse_sheet("last;first\n\n\"Du;pont\";Ann\n;;\nB;\"Jo\"\"e\"\n").expect("parses");
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].line, 3);
        assert_eq!(s.rows[0].fields[0], "Du;pont");
        assert_eq!(s.rows[1].line, 5);
        assert_eq!(s.rows[1].fields[1], "Jo\"e");
        // A quoted field may span lines; the next record's line is right.
        let s = parse_sheet("a,b\n\"x\ny\",1\r\n\r\nz,2\n").expect("parses");
        assert_eq!(s.rows[0].fields[0], "x\ny");
        assert_eq!((s.rows[0].line, s.rows[1].line), (2, 5));
    }

    #[test]
    fn a_column_given_twice_is_refused() {
        let e = parse_sheet("note,grade\n1,2\n").expect_err("two value columns");
        assert!(e.to_string().contains("both give value"), "{e}");
    }

    #[test]
    fn export_numbers_have_no_trailing_zeros() {
        assert_eq!(export_number(1250, false), "12.5");
        assert_eq!(export_number(1250, true), "12,5");
        assert_eq!(export_number(1400, false), "14");
    }
}
