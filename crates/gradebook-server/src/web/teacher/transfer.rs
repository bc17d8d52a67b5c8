//! Files in and out of a promotion.
//!
//! - `/promotions/{name}/import`: a CSV, `.xlsx` or `.ods` file of students
//!   or grades, read into cells by `gradebook_core::sheet` (as `gradebook
//!   import` reads it) and handed to the server's import commands
//!   (`import.begin`, `import.rows`, `import.commit`), which read the
//!   columns, find the students and write everything or nothing. A preview
//!   is a dry run (`dry_run`): it writes nothing and
//!   lists each bad line with the protocol's message. The previewed import
//!   stays open on the server (one per session, dropped after the idle
//!   timeout), so that the preview's page can commit it without sending
//!   the file again.
//! - `/promotions/{name}/export.csv`: the promotion's students and grades,
//!   one line per grade, from `student.list` and `grade.list`, written by
//!   `gradebook_core::export` as `gradebook export` writes it (importing it
//!   gives the same data back).

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use gradebook_core::export;
use gradebook_core::sheet::{self, Sheet};
use gradebook_proto::command::{
    GradeListArgs, ImportAbortArgs, ImportBeginArgs, ImportCommitArgs, ImportRow, ImportRowsArgs,
    StudentListArgs, call,
};
use gradebook_proto::data::ImportReport;
use gradebook_proto::{ErrorCode, WireError};
use serde::Deserialize;

use super::super::i18n::Lang;
use super::super::page::{self, Chrome, Page};
use super::super::session::Viewer;
use super::super::{Web, call};
use super::{Problem, given, guard, promotion_path, refused};

/// Lines sent per `import.rows` (in process, no frame to fit: a bound on
/// each command's work only).
const ROWS_PER_CALL: usize = 2000;
/// Good lines the report lists besides the bad ones.
const GOOD_LINES_SHOWN: usize = 200;

/// What the import form sent.
#[derive(Debug, Default)]
struct ImportForm {
    csrf: Option<String>,
    kind: String,
    commit: bool,
    skip_bad: bool,
    ignore: String,
    sheet: String,
    file_name: String,
    file: Vec<u8>,
    /// A previewed import to commit, instead of a file.
    import: Option<i64>,
}

/// One line of the file in the report.
#[derive(Debug)]
pub struct ReportLine {
    /// Its number in the file.
    pub line: u64,
    /// Its cells.
    pub cells: Vec<String>,
    /// The protocol's message for a bad line.
    pub error: Option<String>,
}

/// What an import did, or would do.
#[derive(Debug)]
pub struct Outcome {
    /// The import was written.
    pub written: bool,
    /// Lines in the file (besides the header).
    pub lines: u64,
    /// Students or grades added, or that would be.
    pub added: u64,
    /// Lines already there.
    pub present: u64,
    /// Lines without a grade.
    pub empty: u64,
    /// Lines repeating an earlier one.
    pub repeated: u64,
    /// Bad lines.
    pub bad: usize,
    /// The file's header line.
    pub headers: Vec<String>,
    /// The lines shown: every bad one, and the first good ones.
    pub shown: Vec<ReportLine>,
    /// Good lines not shown.
    pub hidden: usize,
    /// The previewed import, still open, that the page can commit.
    pub open: Option<i64>,
}

#[derive(Template)]
#[template(path = "teacher_import.html")]
struct ImportPage {
    chrome: Chrome,
    name: String,
    base: String,
    kind: String,
    skip_bad: bool,
    ignore: String,
    sheet: String,
    file_name: String,
    limit: String,
    error: Option<Problem>,
    outcome: Option<Outcome>,
}

impl ImportPage {
    fn grades_selected(&self) -> bool {
        self.kind == "grades"
    }
}

/// Renders the import page.
fn import_page(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    form: &ImportForm,
    error: Option<&WireError>,
    outcome: Option<Outcome>,
) -> Page {
    let base = promotion_path(name);
    let status = error.map_or(StatusCode::OK, |e| page::status_of(e.code));
    let body = page::render(&ImportPage {
        chrome: viewer.chrome(&format!("{base}/import")),
        name: name.to_owned(),
        kind: if form.kind.is_empty() {
            "students".into()
        } else {
            form.kind.clone()
        },
        skip_bad: form.skip_bad,
        ignore: form.ignore.clone(),
        sheet: form.sheet.clone(),
        file_name: form.file_name.clone(),
        limit: size(web.state.limits.max_import_bytes),
        error: error.map(Problem::from),
        outcome,
        base,
    });
    Ok((status, body).into_response())
}

/// A size in bytes as people read it.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// `GET /promotions/{name}/import`: the form.
pub async fn import_form(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Page {
    guard(&viewer)?;
    import_page(&web, &viewer, &name, &ImportForm::default(), None, None)
}

/// Reads the multipart form.
async fn read_form(lang: Lang, mut multipart: Multipart) -> Result<ImportForm, WireError> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WireError::new(ErrorCode::TooLarge, lang.t("teacher.import.too_large"))
        } else {
            WireError::bad_request(e.body_text())
        }
    };
    let mut form = ImportForm::default();
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            form.file_name = field.file_name().unwrap_or_default().to_owned();
            form.file = field.bytes().await.map_err(unreadable)?.to_vec();
            continue;
        }
        let text = field.text().await.map_err(unreadable)?;
        match name.as_str() {
            "csrf" => form.csrf = Some(text),
            "kind" => form.kind = text,
            "action" => form.commit = text == "commit",
            "skip_bad" => form.skip_bad = !text.is_empty(),
            "ignore" => form.ignore = text,
            "sheet" => form.sheet = text,
            "import" => form.import = text.trim().parse().ok(),
            _ => {}
        }
    }
    Ok(form)
}

/// The import commands for `sheet`, as the viewer: begin, the lines, then
/// a commit (a dry run for a preview). The report, and the import's id.
async fn run_import(
    web: &Web,
    viewer: &Viewer,
    promotion: &str,
    form: &ImportForm,
    sheet: &Sheet,
) -> Result<(ImportReport, i64), WireError> {
    let (token, peer) = (&viewer.token, viewer.peer);
    let ignore = form.ignore.split(',').filter_map(given).collect::<Vec<_>>();
    let begun = call(
        web,
        token,
        peer,
        call::ImportBegin(ImportBeginArgs {
            kind: form.kind.clone(),
            promotion: promotion.to_owned(),
            columns: sheet.headers.clone(),
            ignore,
        }),
    )
    .await?;
    let import = begun.import;
    let abort = || {
        call(
            web,
            token,
            peer,
            call::ImportAbort(ImportAbortArgs { import }),
        )
    };
    for chunk in sheet.lines.chunks(ROWS_PER_CALL) {
        let rows = chunk
            .iter()
            .map(|l| ImportRow {
                line: l.line,
                cells: l.cells.clone(),
            })
            .collect();
        let sent = call(
            web,
            token,
            peer,
            call::ImportRows(ImportRowsArgs { import, rows }),
        )
        .await;
        if let Err(e) = sent {
            let _ = abort().await;
            return Err(e);
        }
    }
    let dry_run = !form.commit;
    let committed = call(
        web,
        token,
        peer,
        call::ImportCommit(ImportCommitArgs {
            import,
            dry_run: Some(dry_run),
            // A preview lists every bad line and still counts the others.
            skip_bad: Some(dry_run || form.skip_bad),
        }),
    )
    .await;
    // A refused dry run leaves the import open: close it. A preview's
    // import stays open for the page to commit.
    if dry_run && committed.is_err() {
        let _ = abort().await;
    }
    committed.map(|report| (report, import))
}

/// Commits the import a preview left open.
async fn commit_open(
    web: &Web,
    viewer: &Viewer,
    import: i64,
    skip_bad: bool,
) -> Result<ImportReport, WireError> {
    call(
        web,
        &viewer.token,
        viewer.peer,
        call::ImportCommit(ImportCommitArgs {
            import,
            dry_run: Some(false),
            skip_bad: Some(skip_bad),
        }),
    )
    .await
}

/// The report's lines: every bad line with its messages, and the first
/// good ones. Without the file (a previewed import committed), the bad
/// lines only, without their cells.
fn report_lines(
    sheet: Option<&Sheet>,
    bad: &[gradebook_proto::LineError],
) -> (Vec<ReportLine>, usize) {
    let mut why: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for l in bad {
        why.entry(l.line).or_default().push(&l.message);
    }
    let Some(sheet) = sheet else {
        let shown = why
            .into_iter()
            .map(|(line, messages)| ReportLine {
                line,
                cells: Vec::new(),
                error: Some(messages.join("; ")),
            })
            .collect();
        return (shown, 0);
    };
    let mut shown = Vec::new();
    let mut good = 0;
    let mut hidden = 0;
    for line in &sheet.lines {
        let error = why.get(&line.line).map(|m| m.join("; "));
        if error.is_none() {
            good += 1;
            if good > GOOD_LINES_SHOWN {
                hidden += 1;
                continue;
            }
        }
        shown.push(ReportLine {
            line: line.line,
            cells: line.cells.clone(),
            error,
        });
    }
    (shown, hidden)
}

/// `POST /promotions/{name}/import`: a preview (`action=preview`) or the
/// import itself (`action=commit`).
pub async fn import(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    multipart: Multipart,
) -> Page {
    guard(&viewer)?;
    let lang = viewer.lang;
    let mut form = match read_form(lang, multipart).await {
        Ok(form) => form,
        Err(e) => {
            // Nothing was read, so nothing is done: the form again.
            return import_page(&web, &viewer, &name, &ImportForm::default(), Some(&e), None);
        }
    };
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    if form.file.is_empty() {
        // The page of a preview commits the import it left open.
        if let (Some(import), true) = (form.import, form.commit) {
            let result = commit_open(&web, &viewer, import, form.skip_bad).await;
            return report_page(
                &web,
                &viewer,
                &name,
                &form,
                None,
                result.map(|r| (r, import)),
            );
        }
        let e = WireError::bad_request(lang.t("teacher.import.no_file"));
        return import_page(&web, &viewer, &name, &form, Some(&e), None);
    }
    // Unzipping and reading a workbook is work: off the async threads.
    let bytes = std::mem::take(&mut form.file);
    let sheet_name = given(&form.sheet);
    let read = tokio::task::spawn_blocking(move || sheet::read(&bytes, sheet_name.as_deref()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "web: reading an uploaded file failed");
            refused(&viewer, &WireError::internal())
        })?;
    let sheet = match read {
        Ok(sheet) => sheet,
        Err(e) => {
            let e = WireError::invalid_value(format!("{}: {e}", file_label(lang, &form)));
            return import_page(&web, &viewer, &name, &form, Some(&e), None);
        }
    };
    let result = run_import(&web, &viewer, &name, &form, &sheet).await;
    report_page(&web, &viewer, &name, &form, Some(&sheet), result)
}

/// The page of an import's report (or refusal): its figures, and its
/// lines with the protocol's message for each bad one.
fn report_page(
    web: &Web,
    viewer: &Viewer,
    name: &str,
    form: &ImportForm,
    sheet: Option<&Sheet>,
    result: Result<(ImportReport, i64), WireError>,
) -> Page {
    let (report, error) = match result {
        Ok(report) => (Some(report), None),
        Err(e) => (None, Some(e)),
    };
    let bad: &[gradebook_proto::LineError] = match (&report, &error) {
        (Some((r, _)), _) => &r.skipped,
        (None, Some(e)) => &e.lines,
        (None, None) => &[],
    };
    let outcome = if report.is_some() || !bad.is_empty() {
        let (shown, hidden) = report_lines(sheet, bad);
        let r = report.as_ref().map(|(r, _)| r);
        let lines = sheet.map_or(0, |s| s.lines.len() as u64);
        Some(Outcome {
            written: r.is_some_and(|r| !r.dry_run),
            lines: r.map_or(lines, |r| r.lines),
            added: r.map_or(0, |r| r.added),
            present: r.map_or(0, |r| r.present),
            empty: r.map_or(0, |r| r.empty),
            repeated: r.map_or(0, |r| r.repeated),
            bad: bad.len(),
            headers: sheet.map(|s| s.headers.clone()).unwrap_or_default(),
            shown,
            hidden,
            open: report
                .as_ref()
                .filter(|(r, _)| r.dry_run)
                .map(|(_, import)| *import),
        })
    } else {
        None
    };
    import_page(web, viewer, name, form, error.as_ref(), outcome)
}

/// How the report names the uploaded file.
fn file_label(lang: Lang, form: &ImportForm) -> String {
    if form.file_name.is_empty() {
        lang.t("teacher.import.the_file").to_owned()
    } else {
        form.file_name.clone()
    }
}

/// How the export is written: `?format=fr` for French spreadsheets (`;`
/// between cells, decimal commas, a BOM).
#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// A file name for `Content-Disposition`: the promotion's name in ASCII
/// (others as `_`), and in full as `filename*`.
fn disposition(promotion: &str) -> String {
    let ascii: String = promotion
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}.csv\"; filename*=UTF-8''{}.csv",
        super::page::segment(promotion)
    )
}

/// `GET /promotions/{name}/export.csv`.
pub async fn export(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Page {
    guard(&viewer)?;
    let (token, peer) = (&viewer.token, viewer.peer);
    let list = call(
        &web,
        token,
        peer,
        call::StudentList(StudentListArgs {
            promotion: name.clone(),
        }),
    )
    .await
    .map_err(|e| refused(&viewer, &e))?;
    let mut students = list.students;
    export::order(&mut students);
    let mut grades = Vec::with_capacity(students.len());
    for s in &students {
        let list = call(
            &web,
            token,
            peer,
            call::GradeList(GradeListArgs { student: s.id }),
        )
        .await
        .map_err(|e| refused(&viewer, &e))?;
        grades.push(list.grades);
    }
    let rows = export::rows(students.iter().zip(grades.iter().map(Vec::as_slice)));
    let (separator, decimal_comma) = match query.format.as_deref() {
        Some("fr") => (b';', true),
        _ => (b',', false),
    };
    let bytes = export::csv(&rows, separator, decimal_comma).map_err(|e| {
        tracing::error!(error = %e, "web: an export failed");
        refused(&viewer, &WireError::internal())
    })?;
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_is_ascii_with_the_full_name_beside_it() {
        assert_eq!(
            disposition("Réseaux 1/2"),
            "attachment; filename=\"R_seaux_1_2.csv\"; \
             filename*=UTF-8''R%C3%A9seaux%201%2F2.csv"
        );
    }
}
