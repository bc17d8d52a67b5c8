//! `audit list`: who changed which grade, when; `audit verify`: whether
//! the change log is as the server wrote it.

use gradebook_proto::command::{AuditListArgs, NoArgs};
use gradebook_proto::data::Grade;
use gradebook_proto::{Command, call};

use super::request;
use crate::app::Ctx;
use crate::args::AuditCommand;
use crate::error::CliError;
use crate::output;

/// Runs one `audit` subcommand.
pub async fn run(ctx: &mut Ctx, command: AuditCommand) -> Result<(), CliError> {
    let (promotion, student, limit) = match command {
        AuditCommand::List {
            promotion,
            student,
            limit,
        } => (promotion, student, limit),
        AuditCommand::Verify => return verify(ctx).await,
    };
    let list = call::AuditList(AuditListArgs {
        promotion,
        student,
        limit,
    });
    let listed = request(ctx, list)
        .await
        .map_err(|e| super::in_flags(e, &[("limit", "--limit")]))?;
    let Some(listed) = listed else {
        return Ok(());
    };
    if listed.entries.is_empty() {
        output::print("No grade changes recorded.");
        return Ok(());
    }
    let mut t = output::table(
        &[
            "At", "By", "Action", "Grade", "Student", "Subject", "Before", "After",
        ],
        &[3, 4],
    );
    for e in &listed.entries {
        let subject = [&e.new, &e.old]
            .into_iter()
            .flatten()
            .map(|g| g.subject.clone())
            .next()
            .unwrap_or_default();
        t.add_row(vec![
            e.at.clone(),
            e.by.clone(),
            e.action.clone(),
            e.grade.to_string(),
            e.student.to_string(),
            subject,
            describe(e.old.as_ref()),
            describe(e.new.as_ref()),
        ]);
    }
    output::print(&t.to_string());
    Ok(())
}

/// Checks the chain; a broken one is an error (exit 1), with `--json` too.
async fn verify(ctx: &mut Ctx) -> Result<(), CliError> {
    let data = ctx
        .conn
        .run(Command::from(call::AuditVerify(NoArgs {})))
        .await?;
    if ctx.json {
        output::print_json(&data);
    }
    let report = output::decode::<call::AuditVerify>(call::AuditVerify::NAME, data)?;
    match report.problem {
        None => {
            if !ctx.json {
                output::print(&format!(
                    "The change log is intact: {} entries, up to #{}.\nHead of the chain: {}",
                    report.entries, report.last_seq, report.head
                ));
            }
            Ok(())
        }
        Some(p) => Err(CliError::Failed(format!(
            "the change log is broken at entry #{}: {}; it checks out up to #{} (head {})",
            p.seq, p.reason, report.last_seq, report.head
        ))),
    }
}

/// A grade in an audit entry, as `14.50 ×2.00 (Midterm)`.
fn describe(grade: Option<&Grade>) -> String {
    match grade {
        Some(g) => {
            let label = g
                .label
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            format!(
                "{} ×{}{label}",
                output::grade_value(&g.value),
                output::coefficient(&g.coefficient)
            )
        }
        None => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grade(value: serde_json::Value, coefficient: f64, label: Option<&str>) -> Grade {
        serde_json::from_value(json!({
            "id": 1, "student": 1, "subject": "S",
            "value": value, "coefficient": coefficient, "label": label,
        }))
        .expect("a grade")
    }

    #[test]
    fn grades_are_described_with_their_coefficient() {
        let g = grade(json!(14.5), 2.0, Some("Midterm"));
        assert_eq!(describe(Some(&g)), "14.50 ×2.00 (Midterm)");
        assert_eq!(describe(Some(&grade(json!("ABS"), 1.0, None))), "ABS ×1.00");
        assert_eq!(describe(None), "—");
    }
}
