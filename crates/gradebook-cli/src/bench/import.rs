//! `gradebook bench --import-grades N`: the command line's import of N
//! grades from a CSV file, timed beside a raw bulk insert of the same rows
//! into SQLite, in one run (issue 9's target: at most 10× the raw insert).
//!
//! It runs under the saved session (`gradebook login`), as `gradebook
//! import` does, and times [`crate::import::send`], the function that
//! command runs: reading the file, `import.begin`, the pipelined
//! `import.rows`, `import.commit`. Its data go to a scratch promotion that
//! it creates, fills with students (by a student import) and deletes with
//! force at the end. The CSV files and the baseline's database are scratch
//! files in the current directory: the server's data directory is out of a
//! client's reach, so the figures compare only when that directory is on
//! the server's disk (the report names it).

use std::path::{Path, PathBuf};
use std::time::Instant;

use gradebook_proto::call;
use gradebook_proto::command::{PromotionCreateArgs, PromotionDeleteArgs, StudentListArgs};
use gradebook_proto::data::ImportReport;
use serde_json::json;

use super::baseline::{self, RawGrade};
use crate::app::Ctx;
use crate::args::ImportOptions;
use crate::error::CliError;
use crate::import::{Committed, send};

/// What `--import-grades` measures.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Grades in the file.
    pub grades: u32,
    /// Students of the scratch promotion, the grades spread over them.
    pub students: usize,
    /// Keep the scratch promotion afterwards.
    pub keep: bool,
    /// Print one JSON object.
    pub json: bool,
}

/// The subjects the grades are spread over.
const SUBJECTS: [&str; 5] = ["Networks", "Maths", "Programming", "English", "Physics"];
/// Coefficients in hundredths: 1, 1.5, 2, 0.5.
const COEFFICIENTS: [i64; 4] = [100, 150, 200, 50];

/// Files removed when dropped, whatever happened.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Runs the comparison and prints it; the scratch promotion is deleted
/// even when a step failed (unless `keep`).
pub async fn run(ctx: &mut Ctx, settings: &Settings) -> Result<(), CliError> {
    if settings.grades == 0 || settings.students == 0 {
        return Err(CliError::usage(
            "--import-grades and --students must be at least 1",
        ));
    }
    let dir = std::env::current_dir()
        .map_err(|e| CliError::usage(format!("no current directory for scratch files: {e}")))?;
    let tag = super::random_tag();
    let promotion = format!("bench-import-{tag}");
    let scratch = Scratch(vec![
        dir.join(format!("gradebook-bench-students-{tag}.csv")),
        dir.join(format!("gradebook-bench-grades-{tag}.csv")),
    ]);
    ctx.conn
        .run(call::PromotionCreate(PromotionCreateArgs {
            name: promotion.clone(),
            year: Some(2026),
            description: None,
            publication: None,
        }))
        .await?;
    let measured = measure(ctx, settings, &tag, &promotion, &scratch.0, &dir).await;
    drop(scratch);
    if !settings.keep {
        let deleted = ctx
            .conn
            .run(call::PromotionDelete(PromotionDeleteArgs {
                name: promotion,
                force: Some(true),
            }))
            .await;
        measured?;
        deleted?;
        return Ok(());
    }
    measured
}

/// An import of `file` that must add `expected` rows.
async fn import_all(
    ctx: &mut Ctx,
    kind: &str,
    file: &Path,
    promotion: &str,
    expected: usize,
) -> Result<ImportReport, CliError> {
    match send(ctx, kind, file, promotion, &ImportOptions::default()).await? {
        Committed::Done(report) if report.added == expected as u64 => Ok(report),
        Committed::Done(report) => Err(CliError::Failed(format!(
            "the {kind} import added {} of {expected}",
            report.added
        ))),
        Committed::Refused { error, .. } => Err(CliError::Server(error)),
    }
}

/// A value or coefficient in hundredths, as a file writes it (`12.05`).
fn decimal(hundredths: i64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

async fn measure(
    ctx: &mut Ctx,
    settings: &Settings,
    tag: &str,
    promotion: &str,
    files: &[PathBuf],
    dir: &Path,
) -> Result<(), CliError> {
    let [students_csv, grades_csv] = files else {
        return Err(CliError::Failed("two scratch files expected".into()));
    };
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text)
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))
    };

    // The students, by a student import (numbers are unique server-wide:
    // the tag keeps them apart from any other run's).
    let number = |i: usize| format!("B{tag}-{i:06}");
    let mut text = String::from("number,first_name,last_name\n");
    for i in 0..settings.students {
        text.push_str(&format!("{},F{i},L{i}\n", number(i)));
    }
    write(students_csv, &text)?;
    import_all(ctx, "students", students_csv, promotion, settings.students).await?;
    let listed = ctx
        .conn
        .run(call::StudentList(StudentListArgs {
            promotion: promotion.to_owned(),
        }))
        .await?;
    let ids: std::collections::HashMap<String, i64> = listed
        .students
        .into_iter()
        .filter_map(|s| s.number.map(|n| (n, s.id)))
        .collect();

    // The grades: one file, and the same rows for the baseline. Each
    // (student, label) is used once, so no line repeats another.
    let grades = settings.grades as usize;
    let mut rows = Vec::with_capacity(grades);
    let mut text = String::with_capacity(grades * 48);
    text.push_str("number,subject,value,coefficient,label\n");
    for k in 0..grades {
        let (i, round) = (k % settings.students, k / settings.students);
        let n = number(i);
        let student = *ids
            .get(&n)
            .ok_or_else(|| CliError::Failed(format!("student {n} was not imported")))?;
        let row = RawGrade {
            student,
            subject: SUBJECTS[round % SUBJECTS.len()].to_owned(),
            value: (k as i64 * 7919 + 13) % 2001,
            coefficient: COEFFICIENTS[k % COEFFICIENTS.len()],
            label: Some(format!("Exam {round}")),
        };
        text.push_str(&format!(
            "{n},{},{},{},{}\n",
            row.subject,
            decimal(row.value),
            decimal(row.coefficient),
            row.label.as_deref().unwrap_or_default()
        ));
        rows.push(row);
    }
    write(grades_csv, &text)?;
    drop(text);

    let started = Instant::now();
    let report = import_all(ctx, "grades", grades_csv, promotion, grades).await?;
    let import = started.elapsed().as_secs_f64();

    let db = dir.join(format!("gradebook-bench-baseline-{tag}.db"));
    let raw = baseline::bulk_insert(&db, &rows)
        .map_err(|e| CliError::Failed(format!("the baseline's SQLite insert failed: {e}")))?
        .as_secs_f64();
    let ratio = import / raw.max(1e-9);
    if settings.json {
        println!(
            "{}",
            json!({
                "workload": "import",
                "grades": grades,
                "students": settings.students,
                "imported": report.added,
                "import_seconds": import,
                "baseline_seconds": raw,
                "ratio": ratio,
                "scratch_dir": dir.display().to_string(),
            })
        );
    } else {
        println!(
            "import: {} grades of {} students from CSV by the CLI in {import:.2} s ({:.0} grades/s)",
            report.added,
            settings.students,
            report.added as f64 / import.max(1e-9)
        );
        println!(
            "raw insert: the same {grades} rows into SQLite (WAL, synchronous=FULL, one transaction, \
             one prepared statement) in {raw:.3} s"
        );
        println!("ratio: {ratio:.1}× the raw insert");
        println!(
            "  (scratch files in {}: compare only if it is on the server's disk)",
            dir.display()
        );
    }
    Ok(())
}
