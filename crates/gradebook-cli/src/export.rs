//! `gradebook export promotion P`: a promotion's students and grades, one
//! line per grade (a student without grades gets one line), as CSV or as an
//! `.xlsx` workbook. Importing the file gives the same data back.

use std::io::Write;
use std::path::Path;

use gradebook_core::{GradeValue, value::format_hundredths};
use gradebook_proto::call;
use gradebook_proto::command::{GradeListArgs, StudentListArgs};
use gradebook_proto::data::Student;
use indicatif::ProgressBar;

use crate::app::Ctx;
use crate::args::{ExportCommand, ExportFormat};
use crate::error::CliError;
use crate::output;
use crate::pipeline::pipeline;

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

/// The students of `promotion` (also proves it exists and may be read).
async fn promotion_students(ctx: &mut Ctx, promotion: &str) -> Result<Vec<Student>, CliError> {
    let list = call::StudentList(StudentListArgs {
        promotion: promotion.to_owned(),
    });
    Ok(ctx.conn.run(list).await?.students)
}

/// The export's header line: the names `gradebook import` reads back.
const HEADERS: [&str; 9] = [
    "student",
    "last_name",
    "first_name",
    "number",
    "email",
    "subject",
    "value",
    "coefficient",
    "label",
];

/// One cell of the export: text, or a number a spreadsheet can compute
/// with (in a workbook; CSV writes it as text).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Number { hundredths: i64 },
}

/// `gradebook export promotion P`.
pub async fn export(ctx: &mut Ctx, command: ExportCommand) -> Result<(), CliError> {
    let ExportCommand::Promotion {
        name,
        output: path,
        separator,
        decimal_comma,
        format,
    } = command;
    if decimal_comma && separator == b',' {
        return Err(CliError::usage(
            "--decimal-comma needs another separator: --separator ';'",
        ));
    }
    let to_stdout = path.as_deref().is_none_or(|p| p == Path::new("-"));
    if format == ExportFormat::Xlsx && to_stdout {
        return Err(CliError::usage(
            "--format xlsx writes a file: give it with -o FILE.xlsx",
        ));
    }
    let mut students = promotion_students(ctx, &name).await?;
    students.sort_by(|a, b| {
        (&a.last_name, &a.first_name, a.id).cmp(&(&b.last_name, &b.first_name, b.id))
    });
    let token = ctx.conn.token()?;
    let requests = students
        .iter()
        .map(|s| call::GradeList(GradeListArgs { student: s.id }))
        .collect();
    let client = ctx.conn.client().await?;
    let results = pipeline(
        client,
        token.as_ref(),
        requests,
        false,
        &ProgressBar::hidden(),
    )
    .await?;
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut grade_count = 0u64;
    for (s, result) in students.iter().zip(results) {
        let grades = result.map_err(CliError::Server)?;
        let identity = vec![
            Cell::Number {
                hundredths: s.id.saturating_mul(100),
            },
            Cell::Text(s.last_name.clone()),
            Cell::Text(s.first_name.clone()),
            Cell::Text(s.number.clone().unwrap_or_default()),
            Cell::Text(s.email.clone().unwrap_or_default()),
        ];
        if grades.grades.is_empty() {
            let mut record = identity.clone();
            record.extend((0..4).map(|_| Cell::Text(String::new())));
            rows.push(record);
        }
        for g in &grades.grades {
            let value = match g.value {
                GradeValue::Points(p) => Cell::Number {
                    hundredths: i64::from(p.hundredths()),
                },
                other => Cell::Text(other.to_string()),
            };
            let mut record = identity.clone();
            record.extend([
                Cell::Text(g.subject.clone()),
                value,
                Cell::Number {
                    hundredths: i64::from(g.coefficient.hundredths()),
                },
                Cell::Text(g.label.clone().unwrap_or_default()),
            ]);
            rows.push(record);
            grade_count += 1;
        }
    }
    let bytes = match format {
        ExportFormat::Csv => csv_bytes(&rows, separator, decimal_comma)?,
        ExportFormat::Xlsx => xlsx_bytes(&rows, &name)?,
    };
    match path {
        Some(p) if !to_stdout => {
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

/// The rows as CSV. With `;` as separator the file starts with a BOM:
/// French Excel reads a `;` file as Windows-1252 without one.
fn csv_bytes(rows: &[Vec<Cell>], separator: u8, decimal_comma: bool) -> Result<Vec<u8>, CliError> {
    let start: &[u8] = if separator == b';' {
        b"\xEF\xBB\xBF"
    } else {
        b""
    };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(separator)
        .from_writer(start.to_vec());
    let io = |e: csv::Error| CliError::Failed(format!("cannot write the CSV: {e}"));
    writer.write_record(HEADERS).map_err(io)?;
    for row in rows {
        let record = row.iter().map(|c| match c {
            Cell::Text(t) => t.clone(),
            Cell::Number { hundredths } => export_number(*hundredths, decimal_comma),
        });
        writer.write_record(record).map_err(io)?;
    }
    writer
        .into_inner()
        .map_err(|e| CliError::Failed(format!("cannot write the CSV: {e}")))
}

/// The rows as an `.xlsx` workbook, one sheet named after the promotion,
/// numbers as numbers.
fn xlsx_bytes(rows: &[Vec<Cell>], promotion: &str) -> Result<Vec<u8>, CliError> {
    use rust_xlsxwriter::Workbook;
    let failed =
        |e: rust_xlsxwriter::XlsxError| CliError::Failed(format!("cannot write the workbook: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    // Sheet names: at most 31 characters, none of []:*?/\
    let title: String = promotion
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .take(31)
        .collect();
    sheet.set_name(&title).map_err(failed)?;
    for (col, h) in HEADERS.iter().enumerate() {
        sheet.write_string(0, col as u16, *h).map_err(failed)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = u32::try_from(i + 1)
            .map_err(|_| CliError::Failed("too many lines for a workbook".into()))?;
        for (col, cell) in row.iter().enumerate() {
            let col = col as u16;
            match cell {
                Cell::Text(t) if t.is_empty() => {}
                Cell::Text(t) => {
                    sheet.write_string(r, col, t).map_err(failed)?;
                }
                Cell::Number { hundredths } => {
                    // Exactly the double nearest the decimal (12.34).
                    sheet
                        .write_number(r, col, *hundredths as f64 / 100.0)
                        .map_err(failed)?;
                }
            }
        }
    }
    book.save_to_buffer().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_numbers_have_no_trailing_zeros() {
        assert_eq!(export_number(1250, false), "12.5");
        assert_eq!(export_number(1250, true), "12,5");
        assert_eq!(export_number(1400, false), "14");
    }

    #[test]
    fn a_semicolon_file_starts_with_a_bom_and_a_comma_file_does_not() {
        let rows = vec![vec![Cell::Text("Lefèvre".into()); 9]];
        let fr = csv_bytes(&rows, b';', true).expect("writes");
        assert!(fr.starts_with(b"\xEF\xBB\xBFstudent;last_name"));
        let en = csv_bytes(&rows, b',', false).expect("writes");
        assert!(en.starts_with(b"student,last_name"));
    }

    #[test]
    fn a_workbook_reads_back_the_same_cells() {
        let rows = vec![vec![
            Cell::Number { hundredths: 700 },
            Cell::Text("Lefèvre".into()),
            Cell::Text("Élodie".into()),
            Cell::Text(String::new()),
            Cell::Text(String::new()),
            Cell::Text("Réseaux".into()),
            Cell::Number { hundredths: 1234 },
            Cell::Number { hundredths: 150 },
            Cell::Text("TP".into()),
        ]];
        let bytes = xlsx_bytes(&rows, "RT2/2026").expect("writes");
        let sheet = gradebook_core::sheet::read(&bytes, None).expect("reads back");
        assert_eq!(sheet.headers, HEADERS);
        assert_eq!(
            sheet.lines[0].cells,
            [
                "7", "Lefèvre", "Élodie", "", "", "Réseaux", "12.34", "1.5", "TP"
            ]
        );
        assert_eq!(sheet.lines[0].line, 2);
    }
}
