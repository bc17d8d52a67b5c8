//! The `student.explain` trace: how a student's average was computed,
//! written out for a person checking it by hand.
//!
//! The sums and the result come from [`student_average`], so the
//! explanation can never disagree with the average the server reports; this
//! module only adds the words and the exact decimal text.

use serde::Serialize;

use crate::average::{counted_hundredths, student_average};
use crate::value::{Coefficient, GradeValue, format_hundredths};

/// A student's average, written out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Each grade in the order given, with how it counted.
    pub lines: Vec<ExplainLine>,
    /// Σ(value × coefficient) over the counted grades, in points.
    pub weighted_sum: f64,
    /// Σ(coefficient) over the counted grades.
    pub coefficient_sum: f64,
    /// The average at full precision; `None` when nothing counts.
    pub average: Option<f64>,
    /// The average rounded to two decimals, as shown.
    pub rounded: Option<f64>,
    /// Whether some grade is pending (`ATT`).
    pub incomplete: bool,
    /// The computation, e.g. `(29 + 0 + 12) / (2 + 1 + 1) = 10.25`.
    pub formula: String,
}

/// One grade in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainLine {
    /// The grade's id.
    pub grade: i64,
    /// The grade's subject.
    pub subject: String,
    /// The grade's value: a number or a mark.
    pub value: GradeValue,
    /// The grade's coefficient.
    pub coefficient: f64,
    /// Whether the grade enters the average (numbers and `ABS`).
    pub counted: bool,
    /// value × coefficient when counted (0 for `ABS`), else `None`.
    pub contribution: Option<f64>,
    /// Why and how it counted, e.g. `counted: 14.5 × 2 = 29`.
    pub reason: String,
}

/// Explains the average of `(grade id, subject, value, coefficient)` grades.
pub fn explain<'a, I>(grades: I) -> Explanation
where
    I: IntoIterator<Item = (i64, &'a str, GradeValue, Coefficient)>,
{
    let grades: Vec<(i64, &str, GradeValue, Coefficient)> = grades.into_iter().collect();
    let summary = student_average(grades.iter().map(|&(_, _, value, coef)| (value, coef)));

    let mut contributions = Vec::new();
    let mut coefficients = Vec::new();
    let lines = grades
        .iter()
        .map(|&(grade, subject, value, coefficient)| {
            // value × coefficient in ten-thousandths of a point: exact.
            let product =
                counted_hundredths(value).map(|v| v * u64::from(coefficient.hundredths()));
            if let Some(p) = product {
                contributions.push(format_ten_thousandths(p));
                coefficients.push(coefficient.to_string());
            }
            let reason = match value {
                GradeValue::Points(v) => format!(
                    "counted: {v} × {coefficient} = {}",
                    format_ten_thousandths(
                        u64::from(v.hundredths()) * u64::from(coefficient.hundredths())
                    )
                ),
                GradeValue::Abs => format!("ABS: absence counts as 0 × {coefficient} = 0"),
                GradeValue::Exc => "EXC: excused, not counted".to_owned(),
                GradeValue::Att => "ATT: pending, not counted yet".to_owned(),
            };
            ExplainLine {
                grade,
                subject: subject.to_owned(),
                value,
                coefficient: coefficient.to_f64(),
                counted: product.is_some(),
                contribution: product.map(|p| p as f64 / 10_000.0),
                reason,
            }
        })
        .collect();

    let average = summary.average;
    let formula = match average {
        None => "no counted grade: no average".to_owned(),
        Some(a) => {
            // "=" only when two decimals say it all; otherwise the shown
            // value is a rounding and says so.
            let exact = a.weighted() % a.weights() == 0;
            let shown = format_hundredths(i64::from(a.rounded_hundredths()));
            let result = if exact {
                format!("= {shown}")
            } else {
                format!("≈ {shown}")
            };
            format!(
                "({}) / ({}) {result}",
                contributions.join(" + "),
                coefficients.join(" + ")
            )
        }
    };

    Explanation {
        lines,
        weighted_sum: average.map_or(0.0, |a| a.weighted() as f64 / 10_000.0),
        coefficient_sum: summary.coefficients as f64 / 100.0,
        average: average.map(|a| a.to_f64()),
        rounded: average.map(|a| a.rounded()),
        incomplete: summary.incomplete,
        formula,
    }
}

/// Formats ten-thousandths as a plain decimal without trailing zeros:
/// 290000 → "29", 183750 → "18.375". A value times a coefficient, both with
/// two decimals, needs four, which `format_hundredths` does not cover.
fn format_ten_thousandths(n: u64) -> String {
    let (whole, fraction) = (n / 10_000, n % 10_000);
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:04}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::average::strategies::{coefficient, value};
    use crate::value::Points;
    use proptest::prelude::*;

    fn pts(x: f64) -> GradeValue {
        GradeValue::Points(Points::from_f64(x).expect("a valid grade"))
    }

    fn coef(x: f64) -> Coefficient {
        Coefficient::from_f64(x).expect("a valid coefficient")
    }

    #[test]
    fn worked_example_is_written_out() {
        let e = explain([
            (1, "Maths", pts(14.5), coef(2.0)),
            (2, "Maths", GradeValue::Abs, coef(1.0)),
            (3, "Réseaux", pts(12.0), coef(1.0)),
            (4, "Réseaux", GradeValue::Exc, coef(3.0)),
            (5, "Anglais", GradeValue::Att, coef(1.0)),
        ]);
        assert_eq!(e.formula, "(29 + 0 + 12) / (2 + 1 + 1) = 10.25");
        assert_eq!(e.weighted_sum, 41.0);
        assert_eq!(e.coefficient_sum, 4.0);
        assert_eq!(e.average, Some(10.25));
        assert_eq!(e.rounded, Some(10.25));
        assert!(e.incomplete);

        let reasons: Vec<&str> = e.lines.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "counted: 14.5 × 2 = 29",
                "ABS: absence counts as 0 × 1 = 0",
                "counted: 12 × 1 = 12",
                "EXC: excused, not counted",
                "ATT: pending, not counted yet",
            ]
        );
        let contributions: Vec<Option<f64>> = e.lines.iter().map(|l| l.contribution).collect();
        assert_eq!(
            contributions,
            [Some(29.0), Some(0.0), Some(12.0), None, None]
        );
        let counted: Vec<bool> = e.lines.iter().map(|l| l.counted).collect();
        assert_eq!(counted, [true, true, true, false, false]);
        assert_eq!(e.lines[3].grade, 4);
        assert_eq!(e.lines[3].subject, "Réseaux");
        assert_eq!(e.lines[3].coefficient, 3.0);
    }

    #[test]
    fn nothing_counted_says_so() {
        let e = explain([(7, "Maths", GradeValue::Exc, coef(1.0))]);
        assert_eq!(e.formula, "no counted grade: no average");
        assert_eq!((e.average, e.rounded), (None, None));
        assert_eq!((e.weighted_sum, e.coefficient_sum), (0.0, 0.0));
        assert!(!e.incomplete);
        assert_eq!(explain([]).formula, "no counted grade: no average");
    }

    #[test]
    fn decimals_are_written_exactly_and_roundings_marked() {
        // 12.25 × 1.5 = 18.375; 10 × 1.25 = 12.5; (18.375 + 12.5) / 2.75 = 11.2272…
        let e = explain([
            (1, "Maths", pts(12.25), coef(1.5)),
            (2, "Maths", pts(10.0), coef(1.25)),
        ]);
        assert_eq!(e.lines[0].reason, "counted: 12.25 × 1.5 = 18.375");
        assert_eq!(e.lines[1].reason, "counted: 10 × 1.25 = 12.5");
        assert_eq!(e.formula, "(18.375 + 12.5) / (1.5 + 1.25) ≈ 11.23");
        assert_eq!(e.weighted_sum, 30.875);
        assert_eq!(e.coefficient_sum, 2.75);
        assert_eq!(e.rounded, Some(11.23));
        // Four decimals, with zeros inside kept: 0.01 × 0.01 = 0.0001.
        let e = explain([(1, "Maths", pts(0.01), coef(0.01))]);
        assert_eq!(e.lines[0].reason, "counted: 0.01 × 0.01 = 0.0001");
        assert_eq!(e.formula, "(0.0001) / (0.01) = 0.01");
    }

    #[test]
    fn explanations_serialize_values_as_on_the_wire() {
        let e = explain([
            (1, "Maths", pts(14.5), coef(2.0)),
            (2, "Maths", GradeValue::Att, coef(1.0)),
        ]);
        let json = serde_json::to_value(&e).expect("serialises");
        assert_eq!(json["lines"][0]["value"], 14.5);
        assert_eq!(json["lines"][1]["value"], "ATT");
        assert_eq!(json["lines"][1]["contribution"], serde_json::Value::Null);
        assert_eq!(json["average"], 14.5);
        assert_eq!(json["incomplete"], true);
    }

    #[test]
    fn ten_thousandths_drop_trailing_zeros() {
        assert_eq!(format_ten_thousandths(0), "0");
        assert_eq!(format_ten_thousandths(290_000), "29");
        assert_eq!(format_ten_thousandths(183_750), "18.375");
        assert_eq!(format_ten_thousandths(5_000), "0.5");
        assert_eq!(format_ten_thousandths(10_001), "1.0001");
        assert_eq!(format_ten_thousandths(20_000_000), "2000");
    }

    proptest! {
        #[test]
        fn explain_agrees_with_student_average(
            grades in prop::collection::vec((value(), coefficient()), 0..20),
        ) {
            let summary = student_average(grades.iter().copied());
            let e = explain(grades.iter().enumerate().map(|(i, &(v, c))| (i as i64, "S", v, c)));
            prop_assert_eq!(e.average, summary.average.map(|a| a.to_f64()));
            prop_assert_eq!(e.rounded, summary.average.map(|a| a.rounded()));
            prop_assert_eq!(e.incomplete, summary.incomplete);
            prop_assert_eq!(e.lines.len(), grades.len());
            prop_assert_eq!(e.lines.iter().filter(|l| l.counted).count(), summary.counted);
            // The written contributions add up to the weighted sum.
            let total: f64 = e.lines.iter().filter_map(|l| l.contribution).sum();
            prop_assert!((total - e.weighted_sum).abs() < 1e-6);
        }
    }
}
