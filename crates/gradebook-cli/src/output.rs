//! Human output: tables with two decimals, the marks ABS/EXC/ATT shown as
//! such, and the histogram as a terminal bar chart; or, with `--json`, the
//! server's data unchanged. Colour only on a terminal, never with NO_COLOR.

use std::io::{IsTerminal, Write};

use comfy_table::{Cell, CellAlignment, Table, presets};
use gradebook_core::{Coefficient, GradeValue};
use gradebook_proto::Call;
use serde_json::Value;

use crate::error::CliError;

/// Whether to colour what goes to standard output or standard error.
pub fn colour(stderr: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let tty = if stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    tty && !no_color && !dumb
}

/// Prints an error on standard error, as `gradebook: error: ...`.
pub fn print_error(message: &str) {
    let (red, reset) = if colour(true) {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("", "")
    };
    eprintln!("gradebook: {red}error:{reset} {message}");
}

/// Writes text to standard output; a closed pipe (`| head`) is not an error.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// Prints the server's data unchanged, as JSON.
pub fn print_json(data: &Value) {
    print(&serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string()));
}

/// Reads the data of a reply to the command `name` into the type `C`
/// replies with (data kept as it came, to be printed with `--json`).
pub fn decode<C: Call>(name: &str, data: Value) -> Result<C::Reply, CliError> {
    gradebook_client::decode::<C>(name, data).map_err(|e| CliError::from_client(e, false))
}

/// Rounds to two decimals, half away from zero, for display. A hair is
/// added so that 12.345, stored as 12.3449999…, shows as 12.35 as the spec
/// says (ranks compare the exact value rounded that way).
pub fn round2(x: f64) -> f64 {
    let scaled = x * 100.0;
    let nudged = scaled + scaled.signum() * 1e-7;
    nudged.round() / 100.0
}

/// `n` and a noun, plural when `n` is not 1: "1 student", "3 students".
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A number with two decimals.
pub fn fmt2(x: f64) -> String {
    format!("{:.2}", round2(x))
}

/// An optional number with two decimals, or a dash.
pub fn opt2(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), fmt2)
}

/// A grade's value: two decimals, or its mark.
pub fn grade_value(v: &GradeValue) -> String {
    match v {
        GradeValue::Points(p) => fmt2(p.to_f64()),
        other => other.to_string(),
    }
}

/// A grade's value as a table shows it: [`grade_value`], marked when its
/// student cannot see it yet.
pub fn grade_cell(g: &gradebook_proto::data::Grade) -> String {
    if g.published {
        grade_value(&g.value)
    } else {
        format!("{} (unpublished)", grade_value(&g.value))
    }
}

/// A coefficient with two decimals.
pub fn coefficient(c: &Coefficient) -> String {
    fmt2(c.to_f64())
}

/// An empty table in the house style, with `headers`; the columns listed
/// in `right` are aligned right (numbers).
pub fn table(headers: &[&str], right: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(headers.iter().map(Cell::new));
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The 20-bin histogram of student averages as a bar chart: one line per
/// bin, `[k, k+1)`, the bar scaled to the fullest bin.
pub fn histogram(bins: &[u32], colour: bool) -> String {
    const WIDTH: usize = 40;
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let max = bins.iter().copied().max().unwrap_or(0).max(1);
    let (on, off) = if colour {
        ("\x1b[36m", "\x1b[0m")
    } else {
        ("", "")
    };
    let mut out = String::new();
    let last = bins.len().saturating_sub(1);
    for (k, &n) in bins.iter().enumerate() {
        let eighths = (u64::from(n) * (WIDTH as u64) * 8).div_ceil(u64::from(max)) as usize;
        let mut bar = "█".repeat(eighths / 8);
        bar.push_str(EIGHTHS[eighths % 8]);
        let close = if k == last { ']' } else { ')' };
        let label = format!("[{k:>2}, {:>2}{close}", k + 1);
        let count = if n == 0 { String::new() } else { n.to_string() };
        let pad = WIDTH + 1 - bar.chars().count();
        let line = format!("{label} │{on}{bar}{off}{:pad$}{count}", "");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimals_round_half_away_from_zero() {
        assert_eq!(fmt2(12.345), "12.35");
        assert_eq!(fmt2(12.0), "12.00");
        assert_eq!(fmt2(10.0 / 3.0), "3.33");
        assert_eq!(fmt2(0.0), "0.00");
        assert_eq!(opt2(None), "—");
    }

    #[test]
    fn the_histogram_has_one_line_per_bin() {
        let mut bins = vec![0; 20];
        bins[12] = 4;
        bins[19] = 1;
        let h = histogram(&bins, false);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 20);
        assert!(lines[12].starts_with("[12, 13) │████████████████████████████████████████"));
        assert!(lines[12].ends_with(" 4"));
        assert!(
            lines[19].starts_with("[19, 20] │██████████ "),
            "{}",
            lines[19]
        );
        assert!(lines[0].trim_end().ends_with('│'));
    }
}
