//! The core computations at scale: `cargo bench -p gradebook-core`.
//!
//! The promotion case is the target of issue 6: a promotion of 1,000
//! students × 50 grades averaged, ranked and summarised in under 1 ms.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gradebook_core::{
    Average, Coefficient, GradeValue, Points, competition_ranks, statistics, student_average,
    student_summaries,
};

/// A deterministic spread of grades: values over 0..=20 with a few marks,
/// coefficients 0.5 to 4.
fn grade(i: u64) -> (GradeValue, Coefficient) {
    let x = i.wrapping_mul(2_654_435_761) % 2100;
    let value = match x {
        2001..=2030 => GradeValue::Abs,
        2031..=2060 => GradeValue::Exc,
        2061.. => GradeValue::Att,
        h => GradeValue::Points(Points::from_hundredths(h as i64).expect("in range")),
    };
    let coef = Coefficient::from_hundredths(50 + (i % 8) as i64 * 50).expect("in range");
    (value, coef)
}

fn bench(c: &mut Criterion) {
    let grades: Vec<_> = (0..100_000).map(grade).collect();
    c.bench_function("student_average/100k grades", |b| {
        b.iter(|| student_average(black_box(&grades).iter().copied()))
    });

    let averages: Vec<Average> = (0..100_000u64)
        .filter_map(|i| student_average((i..i + 5).map(grade)).average)
        .collect();
    c.bench_function("statistics/100k averages", |b| {
        b.iter(|| statistics(black_box(&averages)))
    });
    let optional: Vec<Option<Average>> = averages.iter().copied().map(Some).collect();
    c.bench_function("competition_ranks/100k averages", |b| {
        b.iter(|| competition_ranks(black_box(&optional)))
    });

    // promotion.average for 1,000 students × 50 grades, as the server does it.
    let students: Vec<i64> = (1..=1000).collect();
    let promotion: Vec<(i64, GradeValue, Coefficient)> = (0..50_000u64)
        .map(|i| {
            let (v, c) = grade(i);
            ((i % 1000) as i64 + 1, v, c)
        })
        .collect();
    c.bench_function("promotion.average/1000 students x 50 grades", |b| {
        b.iter(|| {
            let summaries = student_summaries(black_box(&students), promotion.iter().copied());
            let averages: Vec<Average> = summaries.iter().filter_map(|s| s.average).collect();
            let ranks = competition_ranks(&summaries.iter().map(|s| s.average).collect::<Vec<_>>());
            (statistics(&averages), ranks)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
