//! `gradebook bench --after-write N`: what a read costs right after a
//! write changed the data it reads.
//!
//! On one connection, N rounds of: a `grade.add` to a student of the data
//! set's first promotion, then `student.show` of another of its students;
//! another `grade.add`, then `promotion.average` of that promotion; then a
//! `ping`. Each read is timed alone (request written, reply read), and the
//! report gives each read's latency as a multiple of the ping's on the same
//! connection: the cost of the read itself, with the network and the
//! protocol taken out.

use std::time::Instant;

use gradebook_client::{Client, ClientError};
use gradebook_core::GradeInput;
use gradebook_proto::command::{GradeAddArgs, IdArgs, NoArgs, PromotionArgs};
use gradebook_proto::{Call, call};
use hdrhistogram::Histogram;
use serde_json::json;

use super::DataSet;

/// Latencies of the timed requests, in microseconds.
struct Timings {
    show: Histogram<u64>,
    average: Histogram<u64>,
    ping: Histogram<u64>,
}

/// Runs `rounds` rounds on `c` against the first promotion of `data`.
pub async fn run(
    c: &mut Client,
    data: &DataSet,
    students_per_promotion: usize,
    rounds: u32,
    json_output: bool,
) -> Result<(), ClientError> {
    let promotion = data.promotions.first().cloned().unwrap_or_default();
    let students = &data.students[..students_per_promotion.min(data.students.len())];
    if students.is_empty() {
        return Err(ClientError::Protocol("the data set has no student".into()));
    }
    let mut t = Timings {
        show: super::histogram()?,
        average: super::histogram()?,
        ping: super::histogram()?,
    };
    for round in 0..rounds as usize {
        let writer = students[round % students.len()];
        let reader = students[(round * 7 + 1) % students.len()];
        let add = call::GradeAdd(GradeAddArgs {
            student: writer,
            subject: "After write".into(),
            value: GradeInput::Number((round % 21) as f64),
            coefficient: None,
            label: None,
        });
        c.run(add.clone()).await?;
        timed(c, &mut t.show, call::StudentShow(IdArgs { id: reader })).await?;
        c.run(add).await?;
        let name = promotion.clone();
        timed(
            c,
            &mut t.average,
            call::PromotionAverage(PromotionArgs { name }),
        )
        .await?;
        timed(c, &mut t.ping, call::Ping(NoArgs {})).await?;
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let ratio = |h: &Histogram<u64>| ms(h, 0.5) / ms(&t.ping, 0.5).max(1e-9);
    if json_output {
        let figures = |h: &Histogram<u64>| json!({"p50_ms": ms(h, 0.5), "p99_ms": ms(h, 0.99), "p50_over_ping": ratio(h)});
        println!(
            "{}",
            json!({
                "workload": "after-write",
                "rounds": rounds,
                "students": students.len(),
                "student.show": figures(&t.show),
                "promotion.average": figures(&t.average),
                "ping": figures(&t.ping),
            })
        );
    } else {
        println!(
            "after a write, one connection, {rounds} rounds, a promotion of {} students:",
            students.len()
        );
        for (name, h) in [
            ("student.show", &t.show),
            ("promotion.average", &t.average),
            ("ping", &t.ping),
        ] {
            println!(
                "  {name:<18} p50 {:.3} ms  p99 {:.3} ms  ({:.1}× ping)",
                ms(h, 0.5),
                ms(h, 0.99),
                ratio(h)
            );
        }
    }
    Ok(())
}

/// Sends one request and waits for its reply, recording the time taken.
async fn timed<C: Call>(
    c: &mut Client,
    h: &mut Histogram<u64>,
    call: C,
) -> Result<(), ClientError> {
    let started = Instant::now();
    c.run(call).await?;
    let micros = started.elapsed().as_micros().max(1);
    let _ = h.record(u64::try_from(micros).unwrap_or(u64::MAX));
    Ok(())
}
