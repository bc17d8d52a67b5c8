//! A promotion's students and grades as a file, one line per grade (a
//! student without grades gets one line), under the header names that
//! [`crate::import`] reads back: `gradebook export` and the web portal's
//! export write the same file, and importing it gives the same data back.
//! [`crate::sheet`] reads files; this module writes them.

use crate::model::{Grade, Student};
use crate::value::{GradeValue, format_hundredths};

/// The header line: the names an import reads back.
pub const HEADERS: [&str; 9] = [
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

/// One cell: text, or a number a spreadsheet can compute with (a workbook
/// writes it as a number; CSV writes it as text).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text, written as it is.
    Text(String),
    /// A decimal number, exactly, in hundredths.
    Number {
        /// The number × 100.
        hundredths: i64,
    },
}

/// Why a file could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the CSV: {0}")]
pub struct ExportError(pub String);

/// A number as the export writes it: no trailing zeros, optionally with a
/// decimal comma.
pub fn number(hundredths: i64, decimal_comma: bool) -> String {
    let s = format_hundredths(hundredths);
    if decimal_comma {
        s.replace('.', ",")
    } else {
        s
    }
}

/// Students in the order of the export: by last name, first name, id.
pub fn order(students: &mut [Student]) {
    students.sort_by(|a, b| {
        (&a.last_name, &a.first_name, a.id).cmp(&(&b.last_name, &b.first_name, b.id))
    });
}

/// The lines of the export (without the header): for each student, one
/// line per grade in the order given, or one line without a grade.
pub fn rows<'a>(students: impl IntoIterator<Item = (&'a Student, &'a [Grade])>) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for (s, grades) in students {
        let identity = [
            Cell::Number {
                hundredths: s.id.saturating_mul(100),
            },
            Cell::Text(s.last_name.clone()),
            Cell::Text(s.first_name.clone()),
            Cell::Text(s.number.clone().unwrap_or_default()),
            Cell::Text(s.email.clone().unwrap_or_default()),
        ];
        if grades.is_empty() {
            let mut record = identity.to_vec();
            record.extend((0..4).map(|_| Cell::Text(String::new())));
            rows.push(record);
        }
        for g in grades {
            let value = match g.value {
                GradeValue::Points(p) => Cell::Number {
                    hundredths: i64::from(p.hundredths()),
                },
                other => Cell::Text(other.to_string()),
            };
            let mut record = identity.to_vec();
            record.extend([
                Cell::Text(g.subject.clone()),
                value,
                Cell::Number {
                    hundredths: i64::from(g.coefficient.hundredths()),
                },
                Cell::Text(g.label.clone().unwrap_or_default()),
            ]);
            rows.push(record);
        }
    }
    rows
}

/// The header and `rows` as CSV. With `;` as separator the file starts
/// with a BOM: French Excel reads a `;` file as Windows-1252 without one.
pub fn csv(rows: &[Vec<Cell>], separator: u8, decimal_comma: bool) -> Result<Vec<u8>, ExportError> {
    let start: &[u8] = if separator == b';' {
        b"\xEF\xBB\xBF"
    } else {
        b""
    };
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(separator)
        .from_writer(start.to_vec());
    let failed = |e: ::csv::Error| ExportError(e.to_string());
    writer.write_record(HEADERS).map_err(failed)?;
    for row in rows {
        let record = row.iter().map(|c| match c {
            Cell::Text(t) => t.clone(),
            Cell::Number { hundredths } => number(*hundredths, decimal_comma),
        });
        writer.write_record(record).map_err(failed)?;
    }
    writer
        .into_inner()
        .map_err(|e| ExportError(e.error().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Coefficient, Points};

    #[test]
    fn export_numbers_have_no_trailing_zeros() {
        assert_eq!(number(1250, false), "12.5");
        assert_eq!(number(1250, true), "12,5");
        assert_eq!(number(1400, false), "14");
    }

    #[test]
    fn a_semicolon_file_starts_with_a_bom_and_a_comma_file_does_not() {
        let rows = vec![vec![Cell::Text("Lefèvre".into()); 9]];
        let fr = csv(&rows, b';', true).expect("writes");
        assert!(fr.starts_with(b"\xEF\xBB\xBFstudent;last_name"));
        let en = csv(&rows, b',', false).expect("writes");
        assert!(en.starts_with(b"student,last_name"));
    }

    #[test]
    fn a_student_without_grades_has_one_line_and_the_file_reads_back() {
        let student = |id, last: &str| Student {
            id,
            first_name: "Ada".into(),
            last_name: last.into(),
            number: None,
            email: None,
            promotion: "P".into(),
        };
        let mut students = vec![student(2, "Zola"), student(1, "Lefèvre")];
        order(&mut students);
        assert_eq!(students[0].id, 1);
        let grade = Grade {
            id: 9,
            student: 1,
            subject: "Réseaux".into(),
            value: GradeValue::Points(Points::from_hundredths(1234).expect("a grade")),
            coefficient: Coefficient::from_hundredths(150).expect("a coefficient"),
            label: Some("TP".into()),
            published: true,
        };
        let grades = [vec![grade], vec![]];
        let rows = rows(students.iter().zip(grades.iter().map(Vec::as_slice)));
        assert_eq!(rows.len(), 2);
        let bytes = csv(&rows, b',', false).expect("writes");
        let sheet = crate::sheet::read(&bytes, None).expect("reads back");
        assert_eq!(sheet.headers, HEADERS);
        assert_eq!(
            sheet.lines[0].cells,
            [
                "1", "Lefèvre", "Ada", "", "", "Réseaux", "12.34", "1.5", "TP"
            ]
        );
        assert_eq!(sheet.lines[1].cells[..3], ["2", "Zola", "Ada"]);
    }
}
