//! `audit list`: who changed which grade, when.

use gradebook_proto::call;
use gradebook_proto::command::AuditListArgs;
use gradebook_proto::data::Grade;

use super::request;
use crate::app::Ctx;
use crate::args::AuditCommand;
use crate::error::CliError;
use crate::output;

/// Runs one `audit` subcommand.
pub async fn run(ctx: &mut Ctx, command: AuditCommand) -> Result<(), CliError> {
    let AuditCommand::List {
        promotion,
        student,
        limit,
    } = command;
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
