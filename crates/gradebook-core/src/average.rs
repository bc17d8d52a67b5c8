//! Student and per-subject averages, computed exactly.
//!
//! An average is kept as the rational Σ(value × coefficient) / Σ(coefficient)
//! over integer hundredths, never as a float sum. Two students whose averages
//! differ far past the 15th digit still compare correctly, and rounding for
//! display (half away from zero on the exact value) never inherits binary
//! error: 12.345 exactly is 12.35, where the float nearest 12.345 would round
//! down to 12.34.
//!
//! The ScoDoc marks follow the protocol's domain rules: `ABS` counts as 0 with
//! its coefficient, `EXC` and `ATT` are left out, and `ATT` flags the result
//! as incomplete.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Serialize, Serializer};

use crate::value::{Coefficient, GradeValue};

/// An exact weighted average: `weighted / weights / 100` points.
///
/// `weighted` is Σ(value hundredths × coefficient hundredths) and `weights`
/// is Σ(coefficient hundredths) over the counted grades; `weights` is never 0
/// (with nothing counted there is no average, see [`Summary::average`]).
///
/// Equality and order are on the value, by cross-multiplication: 12 over
/// coefficient 1 equals 12 over coefficient 2, even though the sums differ.
#[derive(Debug, Clone, Copy)]
pub struct Average {
    weighted: u64,
    weights: u64,
}

impl Average {
    /// The average `weighted / weights` hundredths, or `None` when nothing
    /// weighs anything, which keeps the "weights is never 0" invariant in one
    /// place.
    pub(crate) fn new(weighted: u64, weights: u64) -> Option<Self> {
        (weights > 0).then_some(Average { weighted, weights })
    }

    /// Σ(value hundredths × coefficient hundredths) over the counted grades.
    pub fn weighted(&self) -> u64 {
        self.weighted
    }

    /// Σ(coefficient hundredths) over the counted grades; never 0.
    pub fn weights(&self) -> u64 {
        self.weights
    }

    /// The average in points at full `f64` precision, for the wire.
    pub fn to_f64(&self) -> f64 {
        self.weighted as f64 / self.weights as f64 / 100.0
    }

    /// The average rounded to two decimals, half away from zero, in
    /// hundredths (1235 for exactly 12.345).
    ///
    /// Computed on the rational, so a value exactly halfway always rounds up
    /// (values are never negative) and a value just below never does.
    pub fn rounded_hundredths(&self) -> u32 {
        // weighted / weights is already the average in hundredths; adding
        // half the divisor before the integer division rounds it. u128 keeps
        // 2 × weighted from overflowing whatever the number of grades.
        let w = u128::from(self.weighted);
        let c = u128::from(self.weights);
        let rounded = (2 * w + c) / (2 * c);
        // A mean of values within 0..=2000 stays within it, so this never
        // saturates; saturating beats panicking on a broken invariant.
        u32::try_from(rounded).unwrap_or(u32::MAX)
    }

    /// The average rounded to two decimals, as shown to people (12.35).
    pub fn rounded(&self) -> f64 {
        f64::from(self.rounded_hundredths()) / 100.0
    }
}

impl PartialEq for Average {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Average {}

impl Ord for Average {
    fn cmp(&self, other: &Self) -> Ordering {
        // a/b vs c/d with b, d > 0 is a·d vs c·b; u64 × u64 always fits u128.
        let lhs = u128::from(self.weighted) * u128::from(other.weights);
        let rhs = u128::from(other.weighted) * u128::from(self.weights);
        lhs.cmp(&rhs)
    }
}

impl PartialOrd for Average {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for Average {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Numbers travel with full precision; clients round for display.
        s.serialize_f64(self.to_f64())
    }
}

/// How a set of grades averages out: the `student.average` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The average over the counted grades; `None` when nothing counts.
    pub average: Option<Average>,
    /// How many grades were counted (numbers and `ABS`).
    pub counted: usize,
    /// Σ(coefficient hundredths) of the counted grades.
    pub coefficients: u64,
    /// Whether some grade is `ATT`, so the average may still change.
    pub incomplete: bool,
}

/// The value a grade contributes to an average, in hundredths, or `None`
/// when it is not counted. This is the one place that says what each mark
/// means for the sums.
pub(crate) fn counted_hundredths(value: GradeValue) -> Option<u64> {
    match value {
        GradeValue::Points(p) => Some(u64::from(p.hundredths())),
        GradeValue::Abs => Some(0),
        GradeValue::Exc | GradeValue::Att => None,
    }
}

/// Running sums for one average, so the student and per-subject averages
/// share a single formula. A grade can be taken out as exactly as it was
/// put in, so an average can be kept up to date grade by grade instead of
/// recomputed over all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    weighted: u64,
    weights: u64,
    counted: usize,
    pending: usize,
    grades: usize,
}

impl Tally {
    /// Counts one more grade.
    pub fn add(&mut self, value: GradeValue, coefficient: Coefficient) {
        self.grades += 1;
        if value == GradeValue::Att {
            self.pending += 1;
        }
        if let Some(v) = counted_hundredths(value) {
            let c = u64::from(coefficient.hundredths());
            self.weighted += v * c;
            self.weights += c;
            self.counted += 1;
        }
    }

    /// Takes out a grade that was counted with [`Tally::add`]. Taking out
    /// a grade that was never added leaves the sums meaningless (but never
    /// panics).
    pub fn remove(&mut self, value: GradeValue, coefficient: Coefficient) {
        self.grades = self.grades.saturating_sub(1);
        if value == GradeValue::Att {
            self.pending = self.pending.saturating_sub(1);
        }
        if let Some(v) = counted_hundredths(value) {
            let c = u64::from(coefficient.hundredths());
            self.weighted = self.weighted.saturating_sub(v * c);
            self.weights = self.weights.saturating_sub(c);
            self.counted = self.counted.saturating_sub(1);
        }
    }

    /// How many grades it holds, counted or not.
    pub fn grades(&self) -> usize {
        self.grades
    }

    /// The average and its details.
    pub fn summary(&self) -> Summary {
        Summary {
            average: Average::new(self.weighted, self.weights),
            counted: self.counted,
            coefficients: self.weights,
            incomplete: self.pending > 0,
        }
    }

    fn finish(self) -> Summary {
        self.summary()
    }
}

/// A student's average over all their grades, as `(value, coefficient)`.
pub fn student_average<I>(grades: I) -> Summary
where
    I: IntoIterator<Item = (GradeValue, Coefficient)>,
{
    let mut tally = Tally::default();
    for (value, coefficient) in grades {
        tally.add(value, coefficient);
    }
    tally.finish()
}

/// Every student's summary in one pass over a promotion's grades, given as
/// `(student id, value, coefficient)`: the result is aligned with
/// `students`, and grades of students not listed are ignored.
pub fn student_summaries<I>(students: &[i64], grades: I) -> Vec<Summary>
where
    I: IntoIterator<Item = (i64, GradeValue, Coefficient)>,
{
    let mut index: HashMap<i64, usize, BuildHasherDefault<IdHasher>> =
        HashMap::with_capacity_and_hasher(students.len(), Default::default());
    index.extend(students.iter().enumerate().map(|(i, id)| (*id, i)));
    let mut tallies = vec![Tally::default(); students.len()];
    for (student, value, coefficient) in grades {
        if let Some(&i) = index.get(&student) {
            tallies[i].add(value, coefficient);
        }
    }
    tallies.into_iter().map(Tally::finish).collect()
}

/// A hasher for integer ids: one multiplication instead of SipHash. Ids
/// come from the database, not from an attacker choosing collisions, and
/// this lookup runs once per grade of a promotion.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One subject's average for a student.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectAverage {
    /// The subject's name.
    pub subject: String,
    /// The average over the grades in that subject alone.
    pub summary: Summary,
}

/// Per-subject averages over `(subject, value, coefficient)` grades: one
/// entry per subject seen (even when none of its grades counts), sorted by
/// subject name in byte order.
pub fn subject_averages<'a, I>(grades: I) -> Vec<SubjectAverage>
where
    I: IntoIterator<Item = (&'a str, GradeValue, Coefficient)>,
{
    // A BTreeMap both groups and gives the byte order `str` compares in.
    let mut by_subject: BTreeMap<&'a str, Tally> = BTreeMap::new();
    for (subject, value, coefficient) in grades {
        by_subject
            .entry(subject)
            .or_default()
            .add(value, coefficient);
    }
    by_subject
        .into_iter()
        .map(|(subject, tally)| SubjectAverage {
            subject: subject.to_owned(),
            summary: tally.finish(),
        })
        .collect()
}

/// Strategies shared by the property tests of the modules built on averages.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;

    use super::Average;
    use crate::value::{Coefficient, GradeValue, Points};

    /// Any valid number grade.
    pub(crate) fn points() -> impl Strategy<Value = Points> {
        (0i64..=2000).prop_map(|h| Points::from_hundredths(h).expect("0..=2000 is in range"))
    }

    /// Any valid coefficient.
    pub(crate) fn coefficient() -> impl Strategy<Value = Coefficient> {
        (1i64..=10_000)
            .prop_map(|h| Coefficient::from_hundredths(h).expect("1..=10000 is in range"))
    }

    /// Any grade value, mostly numbers.
    pub(crate) fn value() -> impl Strategy<Value = GradeValue> {
        prop_oneof![
            6 => points().prop_map(GradeValue::Points),
            1 => Just(GradeValue::Abs),
            1 => Just(GradeValue::Exc),
            1 => Just(GradeValue::Att),
        ]
    }

    /// A counted grade: a number or `ABS`.
    pub(crate) fn counted_value() -> impl Strategy<Value = GradeValue> {
        prop_oneof![
            6 => points().prop_map(GradeValue::Points),
            1 => Just(GradeValue::Abs),
        ]
    }

    /// Any valid average. Small denominators and few distinct values make
    /// ties (exact and after rounding) common, which ranks must handle.
    pub(crate) fn average() -> impl Strategy<Value = Average> {
        prop_oneof![
            (0u64..=20, 1u64..=3).prop_map(|(points, w)| (points * 100 * w, w)),
            (1u64..=10_000).prop_flat_map(|w| (0..=2000 * w, Just(w))),
            (1u64..=1_000_000).prop_flat_map(|w| (0..=2000 * w, Just(w))),
        ]
        .prop_map(|(weighted, weights)| {
            Average::new(weighted, weights).expect("weights is at least 1")
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn summaries_by_student_match_each_student_average() {
        let g = |h: i64| GradeValue::Points(crate::Points::from_hundredths(h).expect("valid"));
        let one = Coefficient::ONE;
        let grades = vec![
            (1, g(1000), one),
            (2, g(1500), one),
            (1, GradeValue::Abs, one),
            (9, g(2000), one),
        ];
        let s = student_summaries(&[2, 1, 3], grades.clone());
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], student_average([(g(1500), one)]));
        assert_eq!(
            s[1],
            student_average([(g(1000), one), (GradeValue::Abs, one)])
        );
        assert_eq!(s[2].average, None);
    }

    use super::strategies::{coefficient, counted_value, points, value};
    use super::*;
    use crate::value::Points;
    use proptest::prelude::*;

    fn pts(x: f64) -> GradeValue {
        GradeValue::Points(Points::from_f64(x).expect("a valid grade"))
    }

    fn coef(x: f64) -> Coefficient {
        Coefficient::from_f64(x).expect("a valid coefficient")
    }

    #[test]
    fn worked_example_counts_abs_and_skips_exc_and_att() {
        // (14.5×2 + 0×1 + 12×1) / (2 + 1 + 1) = 41 / 4 = 10.25
        let s = student_average([
            (pts(14.5), coef(2.0)),
            (GradeValue::Abs, coef(1.0)),
            (pts(12.0), coef(1.0)),
            (GradeValue::Exc, coef(3.0)),
            (GradeValue::Att, coef(1.0)),
        ]);
        let avg = s.average.expect("three grades count");
        assert_eq!(avg.weighted(), 1450 * 200 + 1200 * 100);
        assert_eq!(avg.weights(), 400);
        assert_eq!(avg.to_f64(), 10.25);
        assert_eq!(avg.rounded_hundredths(), 1025);
        assert_eq!(avg.rounded(), 10.25);
        assert_eq!(s.counted, 3);
        assert_eq!(s.coefficients, 400);
        assert!(s.incomplete);
    }

    #[test]
    fn nothing_counted_means_no_average() {
        let empty = student_average([]);
        assert_eq!(empty.average, None);
        assert_eq!(empty.counted, 0);
        assert_eq!(empty.coefficients, 0);
        assert!(!empty.incomplete);

        let s = student_average([(GradeValue::Exc, coef(1.0)), (GradeValue::Att, coef(2.0))]);
        assert_eq!(s.average, None);
        assert_eq!(s.counted, 0);
        assert!(s.incomplete);
    }

    #[test]
    fn only_abs_averages_zero() {
        let s = student_average([(GradeValue::Abs, coef(3.0))]);
        assert_eq!(s.average.map(|a| a.to_f64()), Some(0.0));
        assert_eq!(s.counted, 1);
    }

    #[test]
    fn exact_half_rounds_away_from_zero() {
        // (12.34 + 12.35) / 2 = 12.345 exactly; the f64 12.345 is slightly
        // below, so a float rounding would give 12.34.
        let a = student_average([(pts(12.34), coef(1.0)), (pts(12.35), coef(1.0))])
            .average
            .expect("two grades count");
        assert_eq!(a.rounded_hundredths(), 1235);
        assert_eq!(a.rounded(), 12.35);
        // Just below the half: (12.34×2 + 12.35×1) / 3 = 12.3433…
        let b = student_average([(pts(12.34), coef(2.0)), (pts(12.35), coef(1.0))])
            .average
            .expect("two grades count");
        assert_eq!(b.rounded_hundredths(), 1234);
        // 2/3 of a hundredth rounds up: (12.34 + 12.35×2) / 3 = 12.3466…
        let c = student_average([(pts(12.34), coef(1.0)), (pts(12.35), coef(2.0))])
            .average
            .expect("two grades count");
        assert_eq!(c.rounded_hundredths(), 1235);
    }

    #[test]
    fn averages_compare_by_value_not_by_sums() {
        let one = student_average([(pts(12.0), coef(1.0))]).average;
        let two = student_average([(pts(12.0), coef(2.0))]).average;
        assert_eq!(one, two);
        assert_eq!(one.cmp(&two), Ordering::Equal);
        let higher = student_average([(pts(12.01), coef(0.01))]).average;
        assert!(higher > one);
        // A third of a point sits strictly between 0.33 and 0.34.
        let third = Average::new(100 * 100, 300).expect("weights > 0");
        let below = Average::new(33, 1).expect("weights > 0");
        let above = Average::new(34, 1).expect("weights > 0");
        assert!(below < third && third < above);
        assert_eq!(third.rounded_hundredths(), 33);
    }

    #[test]
    fn averages_serialize_as_full_precision_numbers() {
        let a = Average::new(1025, 1).expect("weights > 0");
        assert_eq!(serde_json::to_string(&a).expect("serialises"), "10.25");
        let third = Average::new(1000, 3).expect("weights > 0");
        let text = serde_json::to_string(&third).expect("serialises");
        let back: f64 = serde_json::from_str(&text).expect("a number");
        assert_eq!(back, 1000.0 / 3.0 / 100.0);
    }

    #[test]
    fn subjects_are_averaged_apart_and_sorted_by_name() {
        let subjects = subject_averages([
            ("Réseaux", pts(10.0), coef(1.0)),
            ("Maths", pts(16.0), coef(2.0)),
            ("Réseaux", pts(14.0), coef(3.0)),
            ("Anglais", GradeValue::Exc, coef(1.0)),
            ("Maths", GradeValue::Att, coef(1.0)),
            ("Zoologie", GradeValue::Abs, coef(1.0)),
            ("Maths", pts(13.0), coef(1.0)),
            // Byte order: upper case sorts before lower case.
            ("algo", pts(20.0), coef(1.0)),
        ]);
        let names: Vec<&str> = subjects.iter().map(|s| s.subject.as_str()).collect();
        assert_eq!(names, ["Anglais", "Maths", "Réseaux", "Zoologie", "algo"]);
        let avg = |i: usize| subjects[i].summary.average.map(|a| a.to_f64());
        assert_eq!(avg(0), None); // only excused
        assert_eq!(avg(1), Some(15.0)); // (32 + 13) / 3
        assert!(subjects[1].summary.incomplete);
        assert_eq!(avg(2), Some(13.0)); // (10 + 42) / 4
        assert!(!subjects[2].summary.incomplete);
        assert_eq!(avg(3), Some(0.0));
        assert_eq!(avg(4), Some(20.0));
    }

    proptest! {
        /// Taking grades out of a tally leaves exactly the tally of the
        /// grades that stay: what keeps a student's average current grade
        /// by grade.
        #[test]
        fn removing_grades_from_a_tally_equals_tallying_the_rest(
            grades in prop::collection::vec((value(), coefficient(), any::<bool>()), 0..30),
        ) {
            let mut tally = Tally::default();
            for &(v, c, _) in &grades {
                tally.add(v, c);
            }
            for &(v, c, _) in grades.iter().filter(|g| g.2) {
                tally.remove(v, c);
            }
            let kept: Vec<_> = grades.iter().filter(|g| !g.2).map(|&(v, c, _)| (v, c)).collect();
            prop_assert_eq!(tally.summary(), student_average(kept.iter().copied()));
            prop_assert_eq!(tally.grades(), kept.len());
        }

        #[test]
        fn an_average_lies_between_the_lowest_and_highest_counted_values(
            grades in prop::collection::vec((value(), coefficient()), 0..20),
        ) {
            let counted: Vec<u64> =
                grades.iter().filter_map(|&(v, _)| counted_hundredths(v)).collect();
            let s = student_average(grades.iter().copied());
            prop_assert_eq!(s.counted, counted.len());
            let (Some(&lo), Some(&hi)) = (counted.iter().min(), counted.iter().max()) else {
                prop_assert_eq!(s.average, None);
                return Ok(());
            };
            let a = s.average.expect("some grade counts");
            // Exactly: lo ≤ weighted / weights ≤ hi.
            prop_assert!(u128::from(lo) * u128::from(a.weights()) <= u128::from(a.weighted()));
            prop_assert!(u128::from(a.weighted()) <= u128::from(hi) * u128::from(a.weights()));
            // And the float too, since the divisions round monotonically.
            prop_assert!(lo as f64 / 100.0 <= a.to_f64() && a.to_f64() <= hi as f64 / 100.0);
            prop_assert!(lo <= u64::from(a.rounded_hundredths()));
            prop_assert!(u64::from(a.rounded_hundredths()) <= hi);
        }

        #[test]
        fn exc_and_att_never_change_an_average(
            grades in prop::collection::vec((value(), coefficient()), 0..20),
            extra in prop::collection::vec(
                (prop_oneof![Just(GradeValue::Exc), Just(GradeValue::Att)], coefficient(), any::<prop::sample::Index>()),
                1..6,
            ),
        ) {
            let before = student_average(grades.iter().copied());
            let mut with = grades.clone();
            for &(v, c, at) in &extra {
                with.insert(at.index(with.len() + 1), (v, c));
            }
            let after = student_average(with.iter().copied());
            prop_assert_eq!(after.average.map(|a| (a.weighted(), a.weights())),
                            before.average.map(|a| (a.weighted(), a.weights())));
            prop_assert_eq!(after.counted, before.counted);
            prop_assert_eq!(after.coefficients, before.coefficients);
            let has_att = extra.iter().any(|&(v, _, _)| v == GradeValue::Att);
            prop_assert_eq!(after.incomplete, before.incomplete || has_att);
        }

        #[test]
        fn adding_a_grade_equal_to_the_average_leaves_it_unchanged(
            centre in 0u16..=2000,
            pairs in prop::collection::vec((any::<u16>(), coefficient()), 1..8),
            lone in prop::option::of(coefficient()),
            added in coefficient(),
        ) {
            // Pairs centre ± d with the same coefficient average exactly to
            // the centre, whatever their coefficients: a whole-hundredth
            // average from varied grades without rejecting cases.
            let reach = centre.min(2000 - centre);
            let at = |h: u16| -> GradeValue {
                match h {
                    0 => GradeValue::Abs,
                    h => GradeValue::Points(
                        Points::from_hundredths(i64::from(h)).expect("within 0..=2000"),
                    ),
                }
            };
            let mut grades = Vec::new();
            for &(d, c) in &pairs {
                let d = d % (reach + 1);
                grades.push((at(centre - d), c));
                grades.push((at(centre + d), c));
            }
            if let Some(c) = lone {
                grades.push((at(centre), c));
            }
            let before = student_average(grades.iter().copied()).average.expect("pairs count");
            prop_assert_eq!(before.weighted() % before.weights(), 0);
            prop_assert_eq!(before.weighted() / before.weights(), u64::from(centre));

            grades.push((at(centre), added));
            let after = student_average(grades.iter().copied()).average.expect("pairs count");
            prop_assert_eq!(after, before);
            prop_assert_eq!(after.to_f64(), before.to_f64());
            prop_assert_eq!(after.rounded_hundredths(), before.rounded_hundredths());
        }

        #[test]
        fn the_same_average_is_the_same_number_whatever_the_sums(
            v in points(), c1 in coefficient(), c2 in coefficient(), other in counted_value(),
        ) {
            let a = student_average([(GradeValue::Points(v), c1), (other, c2)]).average;
            let b = student_average([(other, c2), (GradeValue::Points(v), c1)]).average;
            prop_assert_eq!(a, b);
            let single = |c| student_average([(GradeValue::Points(v), c)]).average;
            let (x, y) = (single(c1).expect("counted"), single(c2).expect("counted"));
            prop_assert_eq!(x, y);
            prop_assert_eq!(x.to_f64(), y.to_f64());
            prop_assert_eq!(x.to_f64(), v.to_f64());
        }

        #[test]
        fn subject_averages_match_the_student_formula_per_subject(
            grades in prop::collection::vec(
                (prop::sample::select(vec!["a", "B", "é", "b"]), value(), coefficient()),
                0..30,
            ),
        ) {
            let subjects = subject_averages(grades.iter().copied());
            let names: Vec<&str> = subjects.iter().map(|s| s.subject.as_str()).collect();
            let mut expected: Vec<&str> = grades.iter().map(|g| g.0).collect();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(names, expected);
            for s in &subjects {
                let alone = student_average(
                    grades.iter().filter(|g| g.0 == s.subject).map(|&(_, v, c)| (v, c)),
                );
                prop_assert_eq!(&s.summary, &alone);
            }
        }
    }
}
