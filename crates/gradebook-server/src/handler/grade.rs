//! `grade.*` and `audit.list`: grades, their changes, and the record of
//! those changes.

use gradebook_core::{Coefficient, GradeValue};
use gradebook_proto::WireError;
use gradebook_proto::command::{
    AuditListArgs, GradeAddArgs, GradeListArgs, GradeUpdateArgs, IdArgs,
};
use gradebook_proto::data::{AuditEntries, AuditEntry, AuditVerify, ChainProblem, Grades};
use gradebook_store::{AuditFilter, GradePatch, NewGrade};

use super::{Handled, done, from_store, name, optional_name, reply};
use crate::context::{Caller, State};

const AUDIT_DEFAULT: u32 = 100;
const AUDIT_MAX: u32 = 1000;

fn coefficient(x: f64) -> Result<Coefficient, WireError> {
    Ok(Coefficient::from_f64(x)?)
}

fn subject(s: String) -> Result<String, WireError> {
    name("subject", s)
}

pub async fn add(state: &State, args: GradeAddArgs, caller: &Caller) -> Handled {
    let grade = NewGrade {
        student: args.student,
        subject: subject(args.subject)?,
        value: GradeValue::parse(&args.value)?,
        coefficient: args
            .coefficient
            .map(coefficient)
            .transpose()?
            .unwrap_or_default(),
        label: optional_name("label", args.label)?,
    };
    let g = state
        .store
        .grade_add(&grade, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(g)
}

pub async fn update(state: &State, args: GradeUpdateArgs, caller: &Caller) -> Handled {
    let patch = GradePatch {
        value: args.value.as_ref().map(GradeValue::parse).transpose()?,
        coefficient: args.coefficient.map(coefficient).transpose()?,
        subject: args.subject.map(subject).transpose()?,
        label: args.label.map(|l| optional_name("label", l)).transpose()?,
    };
    let g = state
        .store
        .grade_update(args.id, &patch, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(g)
}

pub async fn delete(state: &State, args: IdArgs, caller: &Caller) -> Handled {
    state
        .store
        .grade_delete(args.id, caller.write()?)
        .await
        .map_err(from_store)?;
    done()
}

pub async fn list(state: &State, args: GradeListArgs, caller: &Caller) -> Handled {
    let grades = state
        .model
        .read()
        .student(args.student)?
        .grades(caller.scope())
        .collect();
    reply(Grades { grades })
}

pub async fn audit(state: &State, args: AuditListArgs) -> Handled {
    let limit = args.limit.unwrap_or(AUDIT_DEFAULT);
    if limit == 0 || limit > AUDIT_MAX {
        return Err(WireError::invalid_value(format!(
            "limit must be between 1 and {AUDIT_MAX}"
        )));
    }
    let entries = state
        .store
        .audit_list(AuditFilter {
            promotion: args.promotion.as_deref(),
            student: args.student,
            limit,
        })
        .await
        .map_err(from_store)?;
    let entries = entries
        .into_iter()
        .map(|e| AuditEntry {
            id: e.id,
            at: iso8601(e.at),
            by: e.by,
            action: e.action,
            grade: e.grade,
            student: e.student,
            old: e.old,
            new: e.new,
        })
        .collect();
    reply(AuditEntries { entries })
}

/// Checks the change log's hash chain, from its first entry to its last.
pub async fn verify(state: &State) -> Handled {
    let report = state.store.verify_log().await.map_err(from_store)?;
    reply(AuditVerify {
        intact: report.problem.is_none(),
        entries: report.entries,
        last_seq: report.last_seq,
        head: report.head,
        problem: report.problem.map(|p| ChainProblem {
            seq: p.seq,
            reason: p.reason,
        }),
    })
}

/// Formats Unix seconds as an ISO 8601 UTC timestamp (`2026-11-25T13:05:09Z`).
pub fn iso8601(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_611_909), "2026-11-25T13:05:09Z");
    }
}
