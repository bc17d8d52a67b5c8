//! `gradebook export promotion P`: a promotion's students and grades, one
//! line per grade (a student without grades gets one line), as CSV or as an
//! `.xlsx` workbook. Importing the file gives the same data back.

use std::io::Write;
use std::path::Path;

use gradebook_core::export::{self, Cell, HEADERS};
use gradebook_proto::call;
use gradebook_proto::command::{GradeListArgs, StudentListArgs};
use gradebook_proto::data::Student;
use indicatif::ProgressBar;

use crate::app::Ctx;
use crate::args::{ExportCommand, ExportFormat};
use crate::error::CliError;
use crate::output;
use crate::pipeline::pipeline;

/// The students of `promotion` (also proves it exists and may be read).
async fn promotion_students(ctx: &mut Ctx, promotion: &str) -> Result<Vec<Student>, CliError> {
    let list = call::StudentList(StudentListArgs {
        promotion: promotion.to_owned(),
    });
    Ok(ctx.conn.run(list).await?.students)
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
    export::order(&mut students);
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
    let mut lists = Vec::with_capacity(students.len());
    for result in results {
        lists.push(result.map_err(CliError::Server)?.grades);
    }
    let grade_count = lists.iter().map(|g| g.len() as u64).sum::<u64>();
    let rows = export::rows(students.iter().zip(lists.iter().map(Vec::as_slice)));
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

/// The rows as CSV (the same file the web portal's export writes).
fn csv_bytes(rows: &[Vec<Cell>], separator: u8, decimal_comma: bool) -> Result<Vec<u8>, CliError> {
    export::csv(rows, separator, decimal_comma).map_err(|e| CliError::Failed(e.to_string()))
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
