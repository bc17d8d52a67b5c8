//! A file's cells, from its bytes: CSV as spreadsheets really write it
//! (`,`, `;` or tab, detected; UTF-8 with or without BOM, UTF-16 with a
//! BOM, else Windows-1252; quoted fields), or the first (or a named) sheet
//! of an `.xlsx` or `.ods` workbook. The first non-blank line is the
//! header; every other non-blank line keeps its number in the file, so an
//! error can name it. What the cells mean is [`crate::import`]'s business.

use std::io::Cursor;

use calamine::{Data, Reader};

use crate::import::Line;

/// A file read into cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    /// The header line's cells.
    pub headers: Vec<String>,
    /// The other non-blank lines.
    pub lines: Vec<Line>,
}

/// Why a file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SheetError(pub String);

/// Reads `bytes`: a workbook when they start as a zip archive (`.xlsx`,
/// `.ods`), else CSV text. `sheet` names a workbook's sheet (the first by
/// default); CSV has none.
pub fn read(bytes: &[u8], sheet: Option<&str>) -> Result<Sheet, SheetError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return read_workbook(bytes, sheet);
    }
    if let Some(name) = sheet {
        return Err(SheetError(format!(
            "a CSV file has no sheets (asked for '{}')",
            name.escape_debug()
        )));
    }
    read_csv(&decode_text(bytes))
}

/// Text from a CSV file's bytes: UTF-8 with or without a BOM, UTF-16 with a
/// BOM, or else Windows-1252 (old spreadsheets).
pub fn decode_text(bytes: &[u8]) -> String {
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
        Err(_) => bytes.iter().map(|&b| windows_1252(b)).collect(),
    }
}

/// Whether `bytes` would be read as Windows-1252 (a client may say so).
pub fn is_legacy_text(bytes: &[u8]) -> bool {
    !bytes.starts_with(b"PK\x03\x04")
        && !bytes.starts_with(b"\xEF\xBB\xBF")
        && !bytes.starts_with(b"\xFF\xFE")
        && !bytes.starts_with(b"\xFE\xFF")
        && std::str::from_utf8(bytes).is_err()
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
pub fn detect_separator(text: &str) -> u8 {
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

/// Splits CSV text into a header and numbered lines.
pub fn read_csv(text: &str) -> Result<Sheet, SheetError> {
    let separator = detect_separator(text);
    // Where each line starts. A line ends as the CSV reader ends a record:
    // at `\n`, `\r\n`, or a lone `\r` (old Mac files).
    let bytes = text.as_bytes();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
                .map(|(i, _)| i + 1),
        )
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut headers: Option<Vec<String>> = None;
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            SheetError(format!("line {line}: not readable as CSV: {e}"))
        })?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        // The reader's own line count skips blank lines: count from the
        // byte offset, past the blank lines it points before.
        let line = record.position().map_or(0, |p| {
            let start = usize::try_from(p.byte()).unwrap_or(usize::MAX);
            let skipped = text.get(start..).map_or(0, |rest| {
                rest.len() - rest.trim_start_matches(['\r', '\n']).len()
            });
            line_starts.partition_point(|&s| s <= start.saturating_add(skipped)) as u64
        });
        let cells: Vec<String> = record.iter().map(|f| f.trim().to_owned()).collect();
        if headers.is_none() {
            headers = Some(cells);
        } else {
            lines.push(Line { line, cells });
        }
    }
    let headers = headers.ok_or_else(|| SheetError("the file is empty".into()))?;
    Ok(Sheet { headers, lines })
}

/// Reads a sheet of an `.xlsx` or `.ods` workbook: the first, or `name`.
fn read_workbook(bytes: &[u8], name: Option<&str>) -> Result<Sheet, SheetError> {
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| SheetError(format!("not a readable .xlsx or .ods workbook: {e}")))?;
    let names = book.sheet_names();
    let chosen = match name {
        Some(n) => names.iter().find(|s| *s == n).cloned().ok_or_else(|| {
            SheetError(format!(
                "no sheet named '{}' (the workbook has: {})",
                n.escape_debug(),
                names.join(", ")
            ))
        })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| SheetError("the workbook has no sheet".into()))?,
    };
    let range = book
        .worksheet_range(&chosen)
        .map_err(|e| SheetError(format!("cannot read sheet '{chosen}': {e}")))?;
    // Line numbers as the spreadsheet shows them: the range may start
    // below row 1.
    let first_row = range.start().map_or(0, |(row, _)| u64::from(row));
    let first_col = range.start().map_or(0, |(_, col)| col as usize);
    let mut headers: Option<Vec<String>> = None;
    let mut lines = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let mut cells: Vec<String> = vec![String::new(); first_col];
        cells.extend(row.iter().map(cell_text));
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let line = first_row + i as u64 + 1;
        if headers.is_none() {
            headers = Some(cells);
        } else {
            lines.push(Line { line, cells });
        }
    }
    let headers = headers.ok_or_else(|| SheetError(format!("sheet '{chosen}' is empty")))?;
    Ok(Sheet { headers, lines })
}

/// A workbook cell as the text a person sees: numbers in their shortest
/// exact decimal form (12.5, not 12.500000001), errors as their code.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => format!("{f}"),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d.as_f64().to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_detected_outside_quotes() {
        assert_eq!(detect_separator("a;b;c\n"), b';');
        assert_eq!(detect_separator("a,b,c\n"), b',');
        assert_eq!(detect_separator("\"x;y\",b\n"), b',');
        assert_eq!(detect_separator("a\tb\n"), b'\t');
    }

    #[test]
    fn text_is_decoded_from_what_spreadsheets_write() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFnom"), "nom");
        assert_eq!(decode_text(b"\xFF\xFEn\x00\xe9\x00"), "né");
        assert_eq!(decode_text(b"Pr\xe9nom \x80"), "Prénom €");
        assert!(is_legacy_text(b"Pr\xe9nom"));
        assert!(!is_legacy_text("Prénom".as_bytes()));
    }

    #[test]
    fn lines_keep_their_numbers_and_quoted_fields() {
        let s = read_csv("a;b\r\n\r\n1;\"x;\r\ny\"\r\n2;z\r\n").expect("reads");
        assert_eq!(s.headers, ["a", "b"]);
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.lines[0].line, 3);
        assert_eq!(s.lines[0].cells, ["1", "x;\r\ny"]);
        assert_eq!(s.lines[1].line, 5);
        assert!(read_csv("\n\n").is_err());
        // A lone carriage return ends a line too, as it ends a record.
        let s = read_csv("a;b\r1;x\r\r2;\"y\rz\"\r3;w\n").expect("reads");
        let numbers: Vec<u64> = s.lines.iter().map(|l| l.line).collect();
        assert_eq!(numbers, [2, 4, 6]);
    }

    #[test]
    fn a_workbook_that_is_not_one_is_a_clear_error() {
        let e = read(b"PK\x03\x04garbage", None).expect_err("not a workbook");
        assert!(e.0.contains("not a readable .xlsx or .ods"), "{}", e.0);
        let e = read(b"a,b\n", Some("Notes")).expect_err("CSV has no sheets");
        assert!(e.0.contains("no sheets"), "{}", e.0);
    }

    /// A minimal OpenDocument spreadsheet, as LibreOffice writes one: two
    /// sheets, a float with its display text, an empty row.
    fn ods() -> Vec<u8> {
        use std::io::Write;
        let content = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet>
<table:table table:name="Intro"><table:table-row><table:table-cell office:value-type="string"><text:p>nothing here</text:p></table:table-cell></table:table-row></table:table>
<table:table table:name="Notes">
<table:table-row><table:table-cell office:value-type="string"><text:p>Nom</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Note</text:p></table:table-cell></table:table-row>
<table:table-row><table:table-cell/><table:table-cell/></table:table-row>
<table:table-row><table:table-cell office:value-type="string"><text:p>Lefèvre</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="12.5"><text:p>12,5</text:p></table:table-cell></table:table-row>
</table:table></office:spreadsheet></office:body></office:document-content>"#;
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("mimetype", stored).expect("mimetype");
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .expect("writes");
        zip.start_file("content.xml", stored).expect("content");
        zip.write_all(content.as_bytes()).expect("writes");
        zip.start_file("META-INF/manifest.xml", stored)
            .expect("manifest");
        zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#).expect("writes");
        zip.finish().expect("finishes").into_inner()
    }

    #[test]
    fn an_ods_sheet_is_read_by_name_with_its_line_numbers() {
        let bytes = ods();
        let first = read(&bytes, None).expect("reads the first sheet");
        assert_eq!(first.headers, ["nothing here"]);
        let notes = read(&bytes, Some("Notes")).expect("reads Notes");
        assert_eq!(notes.headers, ["Nom", "Note"]);
        assert_eq!(notes.lines.len(), 1);
        assert_eq!(notes.lines[0].line, 3, "the empty row 2 is counted");
        assert_eq!(notes.lines[0].cells, ["Lefèvre", "12.5"]);
    }
}
