//! Ranks of students within a promotion.
//!
//! Averages are compared as people see them, rounded to two decimals (half
//! away from zero, on the exact value), so two students shown with the same
//! average always share a rank, even when their exact averages differ.

use std::cmp::Reverse;

use crate::average::Average;

/// Competition ranks ("1, 2, 2, 4") of the given averages, highest first.
///
/// The result has the same length and order as the input. Averages are
/// compared on [`Average::rounded_hundredths`]; a `None` average has no rank.
pub fn competition_ranks(averages: &[Option<Average>]) -> Vec<Option<u32>> {
    let mut ranked: Vec<(u32, usize)> = averages
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.map(|a| (a.rounded_hundredths(), i)))
        .collect();
    // Highest first; the input order only breaks ties, which share a rank
    // anyway, so an unstable sort is fine.
    ranked.sort_unstable_by_key(|&(shown, _)| Reverse(shown));

    let mut ranks = vec![None; averages.len()];
    let mut previous: Option<(u32, u32)> = None; // (shown average, its rank)
    for (position, &(shown, index)) in ranked.iter().enumerate() {
        let rank = match previous {
            Some((prev_shown, prev_rank)) if prev_shown == shown => prev_rank,
            // A new average takes its 1-based position, skipping the ranks
            // that ties above it used.
            _ => u32::try_from(position + 1).unwrap_or(u32::MAX),
        };
        ranks[index] = Some(rank);
        previous = Some((shown, rank));
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::average::strategies::average;
    use crate::average::student_average;
    use crate::value::{Coefficient, GradeValue, Points};
    use proptest::prelude::*;

    fn avg(h: u64) -> Option<Average> {
        Average::new(h, 1)
    }

    #[test]
    fn ties_share_a_rank_and_the_next_rank_skips() {
        let ranks = competition_ranks(&[avg(1500), avg(1200), avg(1200), avg(1000)]);
        assert_eq!(ranks, [Some(1), Some(2), Some(2), Some(4)]);
        // Input order is kept.
        let ranks = competition_ranks(&[avg(1000), avg(1200), avg(1500), avg(1200)]);
        assert_eq!(ranks, [Some(4), Some(2), Some(1), Some(2)]);
    }

    #[test]
    fn no_average_no_rank() {
        assert_eq!(competition_ranks(&[]), []);
        let ranks = competition_ranks(&[None, avg(900), None, avg(1100)]);
        assert_eq!(ranks, [None, Some(2), None, Some(1)]);
    }

    #[test]
    fn averages_shown_alike_share_a_rank() {
        // 12.344 and 12.336 both show as 12.34.
        let a = Average::new(12_344, 10);
        let b = Average::new(12_336, 10);
        let ranks = competition_ranks(&[b, avg(1300), a, avg(1233)]);
        assert_eq!(ranks, [Some(2), Some(1), Some(2), Some(4)]);
    }

    #[test]
    fn exactly_half_a_hundredth_rounds_up_and_ties() {
        let points = |h| GradeValue::Points(Points::from_hundredths(h).expect("in range"));
        // (12.34 + 12.35) / 2 = 12.345 exactly, shown as 12.35.
        let half = student_average([
            (points(1234), Coefficient::ONE),
            (points(1235), Coefficient::ONE),
        ])
        .average;
        let ranks = competition_ranks(&[avg(1234), half, avg(1235)]);
        assert_eq!(ranks, [Some(3), Some(1), Some(1)]);
    }

    fn averages() -> impl Strategy<Value = Vec<Option<Average>>> {
        prop::collection::vec(prop::option::weighted(0.85, average()), 0..40)
    }

    proptest! {
        #[test]
        fn ranks_are_permutation_invariant(
            (input, order) in averages().prop_flat_map(|v| {
                let order = Just((0..v.len()).collect::<Vec<_>>()).prop_shuffle();
                (Just(v), order)
            }),
        ) {
            let ranks = competition_ranks(&input);
            let shuffled: Vec<Option<Average>> = order.iter().map(|&i| input[i]).collect();
            let shuffled_ranks = competition_ranks(&shuffled);
            let expected: Vec<Option<u32>> = order.iter().map(|&i| ranks[i]).collect();
            prop_assert_eq!(shuffled_ranks, expected);
        }

        #[test]
        fn ranks_follow_the_averages_shown(input in averages()) {
            let ranks = competition_ranks(&input);
            prop_assert_eq!(ranks.len(), input.len());
            let ranked: Vec<(u32, u32)> = input
                .iter()
                .zip(&ranks)
                .filter_map(|(a, r)| match (a, r) {
                    (Some(a), Some(r)) => Some((a.rounded_hundredths(), *r)),
                    _ => None,
                })
                .collect();
            // Exactly the students with an average have a rank.
            for (a, r) in input.iter().zip(&ranks) {
                prop_assert_eq!(a.is_some(), r.is_some());
            }
            // 1-based, and the best is first.
            if let Some(best) = ranked.iter().map(|x| x.0).max() {
                for &(shown, rank) in &ranked {
                    prop_assert!(rank >= 1 && rank as usize <= ranked.len());
                    prop_assert_eq!(rank == 1, shown == best);
                }
            }
            for &(x, rx) in &ranked {
                // Rank = 1 + how many are shown strictly higher.
                let above = ranked.iter().filter(|&&(y, _)| y > x).count();
                prop_assert_eq!(rx as usize, above + 1);
                for &(y, ry) in &ranked {
                    prop_assert_eq!(x == y, rx == ry);
                    prop_assert_eq!(x > y, rx < ry);
                }
            }
        }
    }
}
