//! Statistics over a promotion's student averages (`promotion.average`).
//!
//! Sorting and histogram binning use the exact rational averages, so a
//! student at 12.999… is never put in bin 13 by float error; the mean,
//! quartiles and standard deviation are computed in `f64` from the averages'
//! full-precision values, as they travel on the wire.

use serde::Serialize;

use crate::average::Average;

/// Number of histogram bins: one per point, 0 to 20.
pub const HISTOGRAM_BINS: usize = 20;

/// Statistics over the students whose average is not null.
///
/// Every `Option` is `None` (JSON `null`) when there is no such student.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statistics {
    /// How many averages were given.
    pub count: usize,
    /// Their mean: the promotion average.
    pub average: Option<f64>,
    /// The lowest average.
    pub min: Option<f64>,
    /// The highest average.
    pub max: Option<f64>,
    /// The 50th percentile.
    pub median: Option<f64>,
    /// The 25th percentile.
    pub q1: Option<f64>,
    /// The 75th percentile.
    pub q3: Option<f64>,
    /// The population standard deviation.
    pub stddev: Option<f64>,
    /// Bin k counts averages in [k, k+1); the last bin also holds 20.
    pub histogram: [u32; HISTOGRAM_BINS],
}

/// Computes [`Statistics`] over student averages (the non-null ones).
///
/// Quartiles and median are the 25th/50th/75th percentiles with linear
/// interpolation between closest ranks (numpy's default, QUARTILE.INC): with
/// the n values sorted, position p·(n−1) counted from 0.
pub fn statistics(averages: &[Average]) -> Statistics {
    let mut sorted = averages.to_vec();
    sorted.sort_unstable();

    let mut histogram = [0u32; HISTOGRAM_BINS];
    for average in &sorted {
        let bin = &mut histogram[bin_of(average)];
        *bin = bin.saturating_add(1);
    }

    // Sorting the exact values sorts these too: `to_f64` depends only on the
    // value and rounds monotonically.
    let values: Vec<f64> = sorted.iter().map(Average::to_f64).collect();
    let (Some(&min), Some(&max)) = (values.first(), values.last()) else {
        return Statistics {
            count: 0,
            average: None,
            min: None,
            max: None,
            median: None,
            q1: None,
            q3: None,
            stddev: None,
            histogram,
        };
    };

    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    // Two passes: summing squared deviations from the mean avoids the
    // cancellation of Σx² − n·mean².
    let variance = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;

    Statistics {
        count: values.len(),
        average: Some(mean),
        min: Some(min),
        max: Some(max),
        median: Some(quartile(&values, 2)),
        q1: Some(quartile(&values, 1)),
        q3: Some(quartile(&values, 3)),
        stddev: Some(variance.sqrt()),
        histogram,
    }
}

/// The histogram bin of an average: the floor of its exact value in points,
/// with 20 folded into the last bin.
fn bin_of(average: &Average) -> usize {
    const LAST: usize = HISTOGRAM_BINS - 1;
    // weighted / weights is in hundredths, so one more ×100 gives points.
    let points = u128::from(average.weighted()) / (u128::from(average.weights()) * 100);
    usize::try_from(points).map_or(LAST, |k| k.min(LAST))
}

/// The `quarter`/4 percentile of non-empty sorted values, interpolated.
fn quartile(sorted: &[f64], quarter: usize) -> f64 {
    // Position p·(n−1) with p = quarter/4, kept in integers so that its
    // integer part and fraction (0, ¼, ½ or ¾) carry no float error.
    let scaled = (sorted.len() - 1) * quarter;
    let (index, fraction) = (scaled / 4, scaled % 4);
    let a = sorted[index];
    if fraction == 0 {
        return a;
    }
    // A non-zero fraction means the position is below n−1, so index+1 exists.
    let b = sorted[index + 1];
    let t = fraction as f64 / 4.0;
    // numpy's lerp: from the nearer end, so the result matches numpy's and
    // is exact at both ends.
    let d = b - a;
    let x = if t < 0.5 {
        a + d * t
    } else {
        b - d * (1.0 - t)
    };
    // Keeps min ≤ q1 ≤ median ≤ q3 ≤ max even if rounding strayed by an ulp.
    x.clamp(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::average::strategies::average;
    use crate::average::student_average;
    use crate::value::{Coefficient, GradeValue, Points};
    use proptest::prelude::*;

    /// An average of exactly `h` hundredths.
    fn avg(h: u64) -> Average {
        Average::new(h, 1).expect("weights > 0")
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn nothing_gives_nulls_and_an_empty_histogram() {
        let s = statistics(&[]);
        assert_eq!(s.count, 0);
        assert_eq!(
            [s.average, s.min, s.max, s.median, s.q1, s.q3, s.stddev],
            [None; 7]
        );
        assert_eq!(s.histogram, [0; HISTOGRAM_BINS]);
        let json = serde_json::to_value(&s).expect("serialises");
        assert_eq!(json["median"], serde_json::Value::Null);
        assert_eq!(json["histogram"].as_array().map(Vec::len), Some(20));
    }

    #[test]
    fn quartiles_interpolate_like_numpy() {
        // [1, 2, 3, 4]: positions 0.75, 1.5, 2.25.
        let s = statistics(&[avg(400), avg(100), avg(300), avg(200)]);
        assert_eq!(s.q1, Some(1.75));
        assert_eq!(s.median, Some(2.5));
        assert_eq!(s.q3, Some(3.25));
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(4.0));
        assert_eq!(s.average, Some(2.5));
        // Deviations 1.5, 0.5, 0.5, 1.5: variance 5/4.
        assert!(close(s.stddev, 1.25f64.sqrt()));

        // Odd count, positions 1, 2, 3 fall on values: [10, 11, 12, 14, 20].
        let s = statistics(&[avg(1400), avg(1000), avg(2000), avg(1100), avg(1200)]);
        assert_eq!(s.q1, Some(11.0));
        assert_eq!(s.median, Some(12.0));
        assert_eq!(s.q3, Some(14.0));
    }

    #[test]
    fn one_student_is_every_statistic() {
        let s = statistics(&[avg(1234)]);
        assert_eq!(s.count, 1);
        for x in [s.average, s.min, s.max, s.median, s.q1, s.q3] {
            assert_eq!(x, Some(12.34));
        }
        assert_eq!(s.stddev, Some(0.0));
        assert_eq!(s.histogram[12], 1);
    }

    #[test]
    fn standard_deviation_is_the_population_one() {
        // The textbook set: mean 5, population standard deviation exactly 2.
        let values: Vec<Average> = [2, 4, 4, 4, 5, 5, 7, 9]
            .iter()
            .map(|&p| avg(p * 100))
            .collect();
        let s = statistics(&values);
        assert_eq!(s.average, Some(5.0));
        assert_eq!(s.stddev, Some(2.0));
    }

    #[test]
    fn histogram_bins_floor_the_exact_value() {
        let points = |h| GradeValue::Points(Points::from_hundredths(h).expect("in range"));
        let coef = |h| Coefficient::from_hundredths(h).expect("in range");
        // (13 × 9 + 12.99 × 1) / 10 = 12.999: bin 12, not 13.
        let just_below_13 = student_average([(points(1300), coef(900)), (points(1299), coef(100))])
            .average
            .expect("counted");
        assert_eq!(just_below_13.to_f64(), 12.999);
        // 20 - 1/3 of a hundredth: a float near 20 must still land in bin 19.
        let twenty = avg(2000);
        let under_twenty = Average::new(3 * 2000 - 1, 3).expect("weights > 0");
        let zero = avg(0);
        let almost_one = Average::new(299, 3).expect("weights > 0"); // 0.99666…
        let one = Average::new(300, 3).expect("weights > 0");
        let s = statistics(&[just_below_13, twenty, under_twenty, zero, almost_one, one]);
        let mut expected = [0u32; HISTOGRAM_BINS];
        expected[12] = 1;
        expected[19] = 2;
        expected[0] = 2;
        expected[1] = 1;
        assert_eq!(s.histogram, expected);
        assert_eq!(s.max, Some(20.0));
    }

    #[test]
    fn statistics_serialize_with_their_field_names() {
        let s = statistics(&[avg(1000), avg(1500)]);
        let json = serde_json::to_value(&s).expect("serialises");
        assert_eq!(json["count"], 2);
        assert_eq!(json["average"], 12.5);
        assert_eq!(json["q1"], 11.25);
        assert_eq!(json["histogram"][10], 1);
        assert_eq!(json["histogram"][15], 1);
    }

    proptest! {
        #[test]
        fn histogram_counts_sum_to_count(averages in prop::collection::vec(average(), 0..50)) {
            let s = statistics(&averages);
            prop_assert_eq!(s.count, averages.len());
            let total: u64 = s.histogram.iter().map(|&k| u64::from(k)).sum();
            prop_assert_eq!(total, averages.len() as u64);
            // And each average sits in the bin of its exact floor.
            for a in &averages {
                let floor = (a.weighted() / a.weights() / 100).min(19);
                prop_assert!(s.histogram[floor as usize] > 0);
            }
        }

        #[test]
        fn quartiles_are_ordered_within_the_range(averages in prop::collection::vec(average(), 1..50)) {
            let s = statistics(&averages);
            let get = |x: Option<f64>| x.expect("some averages");
            let (min, q1, median, q3, max) =
                (get(s.min), get(s.q1), get(s.median), get(s.q3), get(s.max));
            prop_assert!(min <= q1 && q1 <= median && median <= q3 && q3 <= max,
                "{} {} {} {} {}", min, q1, median, q3, max);
            let mean = get(s.average);
            // The mean of values in [min, max] stays there, up to rounding.
            prop_assert!(min - 1e-9 <= mean && mean <= max + 1e-9);
            prop_assert!(get(s.stddev) >= 0.0);
            prop_assert_eq!(Some(min), averages.iter().min().map(Average::to_f64));
            prop_assert_eq!(Some(max), averages.iter().max().map(Average::to_f64));
        }

        #[test]
        fn statistics_ignore_the_order_of_students(
            averages in prop::collection::vec(average(), 0..30).prop_shuffle(),
        ) {
            let mut sorted = averages.clone();
            sorted.sort();
            let (a, b) = (statistics(&averages), statistics(&sorted));
            prop_assert_eq!(a.histogram, b.histogram);
            prop_assert_eq!((a.min, a.q1, a.median, a.q3, a.max), (b.min, b.q1, b.median, b.q3, b.max));
        }
    }
}
