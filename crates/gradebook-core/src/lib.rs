//! The domain of gradebook: validated values, averages, statistics, ranks.
//!
//! This crate is pure: no I/O, no async, no clock. Everything here can be
//! tested with plain values, and both the server and the clients use it, so
//! a grade means the same thing on both sides of the wire.

#![forbid(unsafe_code)]

pub mod average;
pub mod explain;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod model;
pub mod rank;
pub mod role;
pub mod sheet;
pub mod stats;
pub mod value;

pub use average::{
    Average, SubjectAverage, Summary, Tally, student_average, student_summaries, subject_averages,
};
pub use explain::{Explanation, explain};
pub use model::{Changed, Grade, NewGrade, NewStudent, Promotion, Publication, Student, User};
pub use rank::competition_ranks;
pub use role::Role;
pub use stats::{HISTOGRAM_BINS, Statistics, statistics};
pub use value::{
    Coefficient, GradeInput, GradeValue, Name, Points, ValueError, check_text,
    is_forbidden_in_name, to_nfc,
};
