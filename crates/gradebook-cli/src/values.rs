//! Numbers and marks as people type them: `14.5` or `14,5`, `abs` or
//! `ABS`. Turned into what the wire carries; the domain (0..20, two
//! decimals, coefficient in (0, 100]) is checked with `gradebook-core`.

use gradebook_core::{GradeInput, GradeValue};

/// Parses a decimal number written with a point or a comma (`12,5`).
pub fn parse_decimal(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return None;
    }
    let t = if t.contains(',') {
        // One decimal comma, and then no point: `1.234,5` is ambiguous.
        if t.matches(',').count() > 1 || t.contains('.') {
            return None;
        }
        t.replace(',', ".")
    } else {
        t.to_owned()
    };
    // Only plain decimals: no exponent, no `inf`, no `NaN`, no hex.
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A grade value for the wire: a number, or a mark in upper case. Only
/// the form is checked here (the server checks the range).
pub fn grade_input(text: &str) -> Result<GradeInput, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    if GradeValue::parse_mark(&upper).is_some() {
        return Ok(GradeInput::Mark(upper));
    }
    parse_decimal(t).map(GradeInput::Number).ok_or_else(|| {
        format!(
            "grade value '{}' is neither a number nor ABS, EXC or ATT",
            t.escape_debug()
        )
    })
}

/// A coefficient for the wire (the form only).
pub fn coefficient_input(text: &str) -> Result<f64, String> {
    parse_decimal(text).ok_or_else(|| {
        format!(
            "coefficient '{}' is not a number",
            text.trim().escape_debug()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_take_a_point_or_a_comma() {
        assert_eq!(parse_decimal("12.5"), Some(12.5));
        assert_eq!(parse_decimal(" 12,5 "), Some(12.5));
        assert_eq!(parse_decimal("14"), Some(14.0));
        assert_eq!(parse_decimal("1.234,5"), None);
        assert_eq!(parse_decimal("1,2,3"), None);
        assert_eq!(parse_decimal("1e3"), None);
        assert_eq!(parse_decimal("NaN"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("12 5"), None);
    }

    #[test]
    fn grade_values_are_checked() {
        assert_eq!(grade_input("abs"), Ok(GradeInput::Mark("ABS".into())));
        assert_eq!(grade_input("14,5"), Ok(GradeInput::Number(14.5)));
        assert!(grade_input("twelve").is_err());
        assert_eq!(grade_input("Exc"), Ok(GradeInput::Mark("EXC".into())));
        assert_eq!(coefficient_input("2,5"), Ok(2.5));
    }
}
