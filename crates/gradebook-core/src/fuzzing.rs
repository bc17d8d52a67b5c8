//! The body of the fuzz target for file imports, and the corpus replay
//! that every crate's replay tests use.
//!
//! A target is one function taking arbitrary bytes; it panics when an
//! invariant breaks. The cargo-fuzz binaries in `fuzz/` (nightly) and the
//! replay tests (stable, `cargo test`) both call these functions, so what
//! the fuzzer checked is exactly what the tests check again. Not part of
//! the crate's API.

use std::collections::HashSet;
use std::path::Path;

use crate::import::{Kind, Layout, parse_hundredths, plan_grades, plan_students};
use crate::value::format_hundredths;
use crate::{Coefficient, Grade, GradeValue, Student, sheet};

/// The promotion the lines are planned against: homonyms, a number, and a
/// grade already there.
fn fixture() -> (Vec<Student>, Vec<Grade>) {
    let student = |id: i64, first: &str, last: &str, number: Option<&str>| Student {
        id,
        first_name: first.into(),
        last_name: last.into(),
        number: number.map(Into::into),
        email: None,
        promotion: "P".into(),
    };
    let students = vec![
        student(1, "Élodie", "Lefèvre", Some("1")),
        student(2, "Alice", "Martin", None),
        student(3, "Alice", "Martin", Some("3")),
    ];
    let grades = vec![Grade {
        id: 1,
        student: 1,
        subject: "Maths".into(),
        value: GradeValue::Abs,
        coefficient: Coefficient::default(),
        label: None,
        published: true,
    }];
    (students, grades)
}

/// Target `import_file`: the bytes of a file given to `gradebook import`,
/// read as the command line reads them (CSV, or a workbook) and planned as
/// the server plans them, for both kinds of import.
///
/// Beyond "no panic": lines keep increasing numbers; every line is
/// accounted for exactly once (added, present, empty, repeated or bad);
/// every error names a line of the file; what is added is valid; and every
/// decimal that reads back prints as the same number.
pub fn import_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for word in text.split([';', ',', '\n']) {
            if let Ok(h) = parse_hundredths(word) {
                assert_eq!(parse_hundredths(&format_hundredths(h)), Ok(h), "{word:?}");
            }
        }
    }
    let Ok(file) = sheet::read(data, None) else {
        return;
    };
    let numbers: Vec<u64> = file.lines.iter().map(|l| l.line).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "line numbers must increase: {numbers:?}"
    );
    let known: HashSet<u64> = numbers.iter().copied().collect();
    let (students, grades) = fixture();
    let total = file.lines.len() as u64;
    for kind in [Kind::Students, Kind::Grades] {
        let Ok(layout) = Layout::new(kind, &file.headers, &[]) else {
            continue;
        };
        let (added, present, empty, repeated, errors) = match kind {
            Kind::Students => {
                let plan = plan_students(&layout, &file.lines, &students, &HashSet::new());
                for (_, s) in &plan.add {
                    assert!(!s.first_name.is_empty() && !s.last_name.is_empty());
                }
                let lines: Vec<u64> = plan.errors.iter().map(|e| e.line).collect();
                (
                    plan.add.len() as u64,
                    plan.present,
                    plan.empty,
                    plan.repeated,
                    lines,
                )
            }
            Kind::Grades => {
                let plan = plan_grades(&layout, &file.lines, "P", &students, &grades);
                for (_, g) in &plan.add {
                    assert!(students.iter().any(|s| s.id == g.student));
                    assert!(GradeValue::from_code(g.value.to_code()) == Some(g.value));
                }
                let lines: Vec<u64> = plan.errors.iter().map(|e| e.line).collect();
                (
                    plan.add.len() as u64,
                    plan.present,
                    plan.empty,
                    plan.repeated,
                    lines,
                )
            }
        };
        assert!(errors.iter().all(|l| known.contains(l)), "{errors:?}");
        assert_eq!(
            added + present + empty + repeated + errors.len() as u64,
            total,
            "every line once ({kind:?})"
        );
    }
}

/// Runs every file of `corpus/target` through `body`. Panics when the
/// directory is missing, unreadable or empty: a replay that finds nothing
/// must fail, not pass.
pub fn replay_corpus(corpus: &Path, target: &str, body: fn(&[u8])) {
    let dir = corpus.join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()));
    let mut replayed = 0usize;
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", dir.display()))
            .path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("corpus file {} unreadable: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| body(&data));
        if outcome.is_err() {
            panic!("target {target} failed on {}", path.display());
        }
        replayed += 1;
    }
    assert!(replayed > 0, "corpus {} is empty", dir.display());
}
