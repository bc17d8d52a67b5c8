//! Validated domain values: grade values, coefficients and names.
//!
//! Every value that enters the system goes through one of the `parse`
//! constructors here, so the rest of the code can rely on the invariants
//! (a grade is within 0..=20 with at most two decimals, a coefficient is in
//! (0, 100], a name has no control characters). Numbers are kept as integer
//! hundredths: 12.25 is stored as 1225, so sums and averages never drift the
//! way binary floats do.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// Why a value was refused. The message is meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl ValueError {
    fn new(msg: impl Into<String>) -> Self {
        ValueError(msg.into())
    }
}

/// The largest magnitude [`to_hundredths`] considers, in hundredths: far
/// beyond any grade or coefficient, and small enough that every integer up
/// to it is an exact double.
const MAX_HUNDREDTHS: f64 = 1e14;

/// Converts a number to integer hundredths, refusing anything that is not
/// exactly a number with at most two decimals (12.255 is refused, 12.25
/// gives 1225).
///
/// "Exactly" means the binary double nearest to that decimal, which is what
/// parsing `12.34` gives: `19.999999999`, `12.250000001` or `4.9e-324` are
/// refused rather than rounded. With h the nearest whole number of
/// hundredths, x is accepted iff `h / 100.0 == x`: h and 100 are exact
/// doubles and IEEE division is correctly rounded, so `h / 100.0` is the
/// double nearest to h/100, and no other double is.
pub fn to_hundredths(x: f64) -> Option<i64> {
    let h = (x * 100.0).round();
    if !h.is_finite() || h.abs() > MAX_HUNDREDTHS || h / 100.0 != x {
        return None;
    }
    Some(h as i64)
}

/// Like [`to_hundredths`] for a single-precision float (MessagePack `f32`):
/// accepted iff it is the `f32` nearest to a number with at most two
/// decimals (what `12.34f32` is). Widened to `f64`, such a float is not the
/// double nearest to the decimal, so it needs its own test: the same one in
/// `f32`, where whole numbers below 2^24 are exact and division is
/// correctly rounded too. (Exact up to 100,000, far above any grade or
/// coefficient; beyond, an `f32` is too coarse for hundredths anyway.)
pub fn f32_to_hundredths(x: f32) -> Option<i64> {
    const F32_EXACT: f64 = 16_777_216.0; // 2^24
    // 24 bits times 100 (7 bits) fit a double: this product is exact.
    let h = (f64::from(x) * 100.0).round();
    if !h.is_finite() || h.abs() >= F32_EXACT || (h as f32) / 100.0 != x {
        return None;
    }
    Some(h as i64)
}

/// Formats integer hundredths as a plain decimal: 1225 → "12.25", 1200 → "12".
pub fn format_hundredths(h: i64) -> String {
    let sign = if h < 0 { "-" } else { "" };
    let a = h.unsigned_abs();
    match a % 100 {
        0 => format!("{sign}{}", a / 100),
        c if c % 10 == 0 => format!("{sign}{}.{}", a / 100, c / 10),
        c => format!("{sign}{}.{c:02}", a / 100),
    }
}

/// The methods shared by the numbers kept as integer hundredths in a `u16`
/// (grades, coefficients): checked construction from hundredths or from a
/// wire number, and the way back.
macro_rules! hundredths_newtype {
    ($name:ident, $what:literal, $range:expr, $out_of_range:expr) => {
        impl $name {
            /// Builds the value from hundredths, checking its range.
            pub fn from_hundredths(h: i64) -> Result<Self, ValueError> {
                if ($range).contains(&h) {
                    Ok($name(h as u16))
                } else {
                    let message: fn(i64) -> String = $out_of_range;
                    Err(ValueError::new(message(h)))
                }
            }

            /// Parses the value from a JSON number (at most 2 decimals).
            pub fn from_f64(x: f64) -> Result<Self, ValueError> {
                let h = to_hundredths(x).ok_or_else(|| {
                    ValueError::new(format!(
                        concat!($what, " {:?} has more than 2 decimals or is not a number"),
                        // Debug: 4.9e-324, not 324 digits.
                        x
                    ))
                })?;
                Self::from_hundredths(h)
            }

            /// The value in hundredths (1225 for 12.25).
            pub fn hundredths(self) -> u16 {
                self.0
            }

            /// The value as a number for the wire (12.25).
            pub fn to_f64(self) -> f64 {
                f64::from(self.0) / 100.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&format_hundredths(i64::from(self.0)))
            }
        }
    };
}

/// A numeric grade in hundredths of a point, 0..=2000 (0 to 20 inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Points(u16);

impl Points {
    /// The highest grade, 20.
    pub const MAX: Points = Points(2000);
}

hundredths_newtype!(Points, "grade", 0..=2000, |h| format!(
    "grade {} is outside 0..20",
    format_hundredths(h)
));

/// A grade's value: a number, or one of ScoDoc's special marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GradeValue {
    /// A number from 0 to 20.
    Points(Points),
    /// `ABS`: unjustified absence, counts as 0 with its coefficient.
    Abs,
    /// `EXC`: excused, not counted at all.
    Exc,
    /// `ATT`: pending; not counted yet, and the average is flagged incomplete.
    Att,
}

/// A grade value as it arrives on the wire, before validation: a number or a
/// string. Anything else (a boolean, an object) is a malformed request.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum GradeInput {
    /// A number, to be checked against 0..=20 and two decimals.
    Number(f64),
    /// A special mark, `ABS`, `EXC` or `ATT`.
    Mark(String),
}

impl GradeValue {
    /// Validates a value received from a client.
    pub fn parse(input: &GradeInput) -> Result<Self, ValueError> {
        match input {
            GradeInput::Number(x) => Points::from_f64(*x).map(GradeValue::Points),
            GradeInput::Mark(s) => Self::parse_mark(s).ok_or_else(|| {
                ValueError::new(format!(
                    "grade value '{}' is neither a number nor ABS, EXC or ATT",
                    s.escape_debug()
                ))
            }),
        }
    }

    /// Recognises `ABS`, `EXC` and `ATT` (exact, upper case).
    pub fn parse_mark(s: &str) -> Option<Self> {
        match s {
            "ABS" => Some(GradeValue::Abs),
            "EXC" => Some(GradeValue::Exc),
            "ATT" => Some(GradeValue::Att),
            _ => None,
        }
    }

    /// The compact storage form: hundredths for numbers, negative codes for
    /// the marks (-1 ABS, -2 EXC, -3 ATT).
    pub fn to_code(self) -> i64 {
        match self {
            GradeValue::Points(p) => i64::from(p.hundredths()),
            GradeValue::Abs => -1,
            GradeValue::Exc => -2,
            GradeValue::Att => -3,
        }
    }

    /// The inverse of [`GradeValue::to_code`]; `None` for a code that no
    /// valid value produces.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            -1 => Some(GradeValue::Abs),
            -2 => Some(GradeValue::Exc),
            -3 => Some(GradeValue::Att),
            h => Points::from_hundredths(h).ok().map(GradeValue::Points),
        }
    }

    /// The wire form: a number, or the mark as a string.
    pub fn to_input(self) -> GradeInput {
        match self {
            GradeValue::Points(p) => GradeInput::Number(p.to_f64()),
            GradeValue::Abs => GradeInput::Mark("ABS".into()),
            GradeValue::Exc => GradeInput::Mark("EXC".into()),
            GradeValue::Att => GradeInput::Mark("ATT".into()),
        }
    }
}

impl fmt::Display for GradeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradeValue::Points(p) => p.fmt(f),
            GradeValue::Abs => f.write_str("ABS"),
            GradeValue::Exc => f.write_str("EXC"),
            GradeValue::Att => f.write_str("ATT"),
        }
    }
}

impl Serialize for GradeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GradeValue::Points(p) => s.serialize_f64(p.to_f64()),
            GradeValue::Abs => s.serialize_str("ABS"),
            GradeValue::Exc => s.serialize_str("EXC"),
            GradeValue::Att => s.serialize_str("ATT"),
        }
    }
}

impl<'de> Deserialize<'de> for GradeValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let input = GradeInput::deserialize(d)?;
        GradeValue::parse(&input).map_err(serde::de::Error::custom)
    }
}

/// A coefficient in hundredths: 0 < c ≤ 100, so 1..=10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Coefficient(u16);

impl Coefficient {
    /// The default coefficient, 1.
    pub const ONE: Coefficient = Coefficient(100);
}

hundredths_newtype!(Coefficient, "coefficient", 1..=10_000, |h| format!(
    "coefficient {} must be greater than 0 and at most 100",
    format_hundredths(h)
));

impl Default for Coefficient {
    fn default() -> Self {
        Coefficient::ONE
    }
}

impl Serialize for Coefficient {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.to_f64())
    }
}

impl<'de> Deserialize<'de> for Coefficient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = f64::deserialize(d)?;
        Coefficient::from_f64(x).map_err(serde::de::Error::custom)
    }
}

/// Checks a piece of text typed by a person: `min..=max` characters (not
/// bytes), no control characters. `field` names it in the error.
pub fn check_text(field: &str, s: &str, min: usize, max: usize) -> Result<(), ValueError> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(ValueError::new(format!(
            "{field} contains a control character ({})",
            c.escape_unicode()
        )));
    }
    let n = s.chars().count();
    if n < min {
        return Err(if min == 1 {
            ValueError::new(format!("{field} must not be empty"))
        } else {
            ValueError::new(format!("{field} must have at least {min} characters"))
        });
    }
    if n > max {
        return Err(ValueError::new(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if min > 0 && s.trim().is_empty() {
        return Err(ValueError::new(format!("{field} must not be blank")));
    }
    Ok(())
}

/// Whether `c` may not appear in a name: a control character, or a code
/// point that is invisible or changes the direction of the text around it.
/// Such characters make two different names look the same (`admin` and
/// `admin\u{200b}`), so a name carrying one would be a lookalike.
///
/// The invisible ones are Unicode's Default_Ignorable_Code_Point set
/// (DerivedCoreProperties.txt, unchanged since Unicode 14), plus the line
/// and paragraph separators U+2028 and U+2029.
pub fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Puts a name in Unicode NFC, the form names are stored and compared in:
/// "École" typed with a combining accent (as macOS writes it) is the same
/// name as with a precomposed "É". Names already in NFC, as all ASCII
/// ones are, are left as they are without a copy.
pub fn to_nfc(s: &mut String) {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if is_nfc_quick(s.chars()) != IsNormalized::Yes {
        *s = s.nfc().collect();
    }
}

/// A name: a promotion's, a person's, a subject's, a label, a username
/// (1–64 characters in NFC, no control or invisible characters, not blank).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Validates a name; `field` says which one in the error ("promotion name").
    pub fn parse(field: &str, s: &str) -> Result<Self, ValueError> {
        Self::parse_owned(field, s.to_owned())
    }

    /// Validates a name, in NFC, reusing the string when it already is.
    /// The length is counted on the NFC form: what is stored.
    pub fn parse_owned(field: &str, mut s: String) -> Result<Self, ValueError> {
        to_nfc(&mut s);
        check_text(field, &s, 1, Self::MAX_CHARS)?;
        if let Some(c) = s.chars().find(|c| is_forbidden_in_name(*c)) {
            return Err(ValueError::new(format!(
                "{field} contains an invisible or direction-changing character ({})",
                c.escape_unicode()
            )));
        }
        Ok(Name(s))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, by value.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grades_keep_two_decimals_exactly() {
        assert_eq!(Points::from_f64(12.25).map(Points::hundredths), Ok(1225));
        assert_eq!(Points::from_f64(0.29).map(Points::hundredths), Ok(29));
        assert_eq!(Points::from_f64(20.0).map(Points::hundredths), Ok(2000));
        assert_eq!(Points::from_f64(0.0).map(Points::hundredths), Ok(0));
        assert!(Points::from_f64(12.255).is_err());
        assert!(Points::from_f64(20.01).is_err());
        assert!(Points::from_f64(-0.01).is_err());
        assert!(Points::from_f64(45.0).is_err());
        assert!(Points::from_f64(f64::NAN).is_err());
        assert!(Points::from_f64(f64::INFINITY).is_err());
    }

    #[test]
    fn nearly_two_decimals_is_not_two_decimals() {
        // Closer to a hundredth than any tolerance would notice, but not
        // the double that the decimal parses to: refused, never rounded.
        for x in [19.999999999, 12.250000001, 4.9e-324, -4.9e-324, 1e-300] {
            assert_eq!(to_hundredths(x), None, "{x:?}");
            assert!(Points::from_f64(x).is_err(), "{x:?}");
            assert!(Coefficient::from_f64(x).is_err(), "{x:?}");
        }
        let message = Points::from_f64(4.9e-324).expect_err("refused").0;
        assert!(message.contains("5e-324"), "{message}");
        assert_eq!(to_hundredths(-0.0), Some(0));
        assert_eq!(to_hundredths(1e15), None);
        assert_eq!(to_hundredths(f64::MAX), None);
    }

    #[test]
    fn single_precision_floats_are_exact_when_nearest_to_two_decimals() {
        assert_eq!(f32_to_hundredths(12.34), Some(1234));
        assert_eq!(f32_to_hundredths(0.29), Some(29));
        assert_eq!(f32_to_hundredths(20.0), Some(2000));
        // 12.34f32 widened is not the double nearest 12.34.
        assert_eq!(to_hundredths(f64::from(12.34f32)), None);
        let refused = [19.999_998f32, 12.250_001, f32::from_bits(1), f32::NAN];
        for x in refused.into_iter().chain([f32::INFINITY]) {
            assert_eq!(f32_to_hundredths(x), None, "{x:?}");
        }
    }

    #[test]
    fn coefficients_are_positive_and_at_most_100() {
        assert_eq!(
            Coefficient::from_f64(1.5).map(Coefficient::hundredths),
            Ok(150)
        );
        assert_eq!(
            Coefficient::from_f64(100.0).map(Coefficient::hundredths),
            Ok(10_000)
        );
        assert!(Coefficient::from_f64(0.0).is_err());
        assert!(Coefficient::from_f64(-1.0).is_err());
        assert!(Coefficient::from_f64(100.01).is_err());
        assert!(Coefficient::from_f64(0.001).is_err());
    }

    #[test]
    fn marks_are_recognised_exactly() {
        let parse = |s: &str| GradeValue::parse(&GradeInput::Mark(s.into()));
        assert_eq!(parse("ABS"), Ok(GradeValue::Abs));
        assert_eq!(parse("EXC"), Ok(GradeValue::Exc));
        assert_eq!(parse("ATT"), Ok(GradeValue::Att));
        assert!(parse("abs").is_err());
        assert!(parse("12").is_err());
    }

    #[test]
    fn grade_values_travel_as_numbers_or_marks() {
        let v: GradeValue = serde_json::from_str("14.5").expect("a number");
        assert_eq!(serde_json::to_string(&v).expect("serialises"), "14.5");
        let v: GradeValue = serde_json::from_str("\"ABS\"").expect("a mark");
        assert_eq!(serde_json::to_string(&v).expect("serialises"), "\"ABS\"");
        assert!(serde_json::from_str::<GradeValue>("true").is_err());
        assert!(serde_json::from_str::<GradeValue>("45").is_err());
    }

    #[test]
    fn names_refuse_control_characters_and_blanks() {
        assert!(Name::parse("name", "RT2-2026").is_ok());
        assert!(Name::parse("name", "Réseaux & Télécoms").is_ok());
        assert!(Name::parse("name", "").is_err());
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", "a\nb").is_err());
        assert!(Name::parse("name", "a\u{7f}").is_err());
        assert!(Name::parse("name", &"é".repeat(64)).is_ok());
        assert!(Name::parse("name", &"é".repeat(65)).is_err());
    }

    #[test]
    fn names_are_kept_in_nfc() {
        let composed = Name::parse("name", "\u{c9}cole").expect("valid");
        let decomposed = Name::parse("name", "E\u{301}cole").expect("valid");
        assert_eq!(decomposed, composed);
        assert_eq!(decomposed.as_str(), "École");
        // 64 characters once composed, though 128 as typed.
        assert!(Name::parse("name", &"e\u{301}".repeat(64)).is_ok());
        let mut ascii = String::from("RT2-2026");
        let before = ascii.as_ptr();
        to_nfc(&mut ascii);
        assert_eq!(ascii.as_ptr(), before, "no copy for a name already in NFC");
    }

    #[test]
    fn names_refuse_invisible_and_direction_changing_characters() {
        let forbidden = "\u{ad}\u{34f}\u{61c}\u{115f}\u{17b4}\u{180e}\u{200b}\u{200d}\u{200f}\
            \u{2028}\u{2029}\u{202e}\u{2060}\u{2064}\u{2066}\u{2069}\u{3164}\u{fe0f}\
            \u{feff}\u{ffa0}\u{fff0}\u{1bca0}\u{1d173}\u{e0001}\u{e0fff}";
        for c in forbidden.chars() {
            let e = Name::parse("username", &format!("admin{c}")).expect_err("lookalike");
            assert!(e.0.contains("invisible"), "{}", e.0);
            assert!(is_forbidden_in_name(c), "{c:?}");
        }
        for c in "aÉ-\u{a0}\u{2027}\u{2030}\u{fe10}\u{e1000}".chars() {
            assert!(!is_forbidden_in_name(c), "{c:?}");
        }
    }

    #[test]
    fn hundredths_format_without_trailing_zeros() {
        assert_eq!(format_hundredths(1225), "12.25");
        assert_eq!(format_hundredths(1250), "12.5");
        assert_eq!(format_hundredths(1200), "12");
        assert_eq!(format_hundredths(5), "0.05");
        assert_eq!(format_hundredths(-150), "-1.5");
    }

    proptest! {
        #[test]
        fn every_valid_grade_round_trips(h in 0i64..=2000) {
            let p = Points::from_hundredths(h).expect("in range");
            prop_assert_eq!(Points::from_f64(p.to_f64()), Ok(p));
            let v = GradeValue::Points(p);
            prop_assert_eq!(GradeValue::from_code(v.to_code()), Some(v));
            let text = format_hundredths(h);
            let x: f64 = text.parse().expect("decimal text");
            prop_assert_eq!(to_hundredths(x), Some(h));
        }

        #[test]
        fn every_valid_coefficient_round_trips(h in 1i64..=10_000) {
            let c = Coefficient::from_hundredths(h).expect("in range");
            prop_assert_eq!(Coefficient::from_f64(c.to_f64()), Ok(c));
        }

        #[test]
        fn every_hundredth_is_exact_and_its_neighbours_are_not(h in -10_000_000i64..=10_000_000) {
            let x = h as f64 / 100.0;
            prop_assert_eq!(to_hundredths(x), Some(h));
            prop_assert_eq!(to_hundredths(x.next_up()), None);
            prop_assert_eq!(to_hundredths(x.next_down()), None);
            // Below 65,536 an f32's neighbours are too close to be the
            // float nearest to another hundredth.
            if h.abs() < 6_553_600 {
                let y = h as f32 / 100.0;
                prop_assert_eq!(f32_to_hundredths(y), Some(h));
                prop_assert_eq!(f32_to_hundredths(y.next_up()), None);
                prop_assert_eq!(f32_to_hundredths(y.next_down()), None);
            }
        }

        #[test]
        fn decimal_text_parses_to_the_accepted_double(h in 0i64..=10_000) {
            let text = format_hundredths(h);
            let x: f64 = text.parse().expect("decimal text");
            prop_assert_eq!(to_hundredths(x), Some(h));
            let y: f32 = text.parse().expect("decimal text");
            prop_assert_eq!(f32_to_hundredths(y), Some(h));
        }

        #[test]
        fn three_decimals_are_refused(h in 0i64..=20_000, d in 1i64..=9) {
            // h thousandths plus a non-zero last digit: never a whole hundredth.
            let x = (h * 10 + d) as f64 / 1000.0;
            prop_assert!(to_hundredths(x).is_none());
        }
    }
}
