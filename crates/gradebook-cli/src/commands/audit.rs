//! `audit list`: who changed which grade, when.

use serde_json::Value;

use super::call;
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
    let mut args = serde_json::Map::new();
    if let Some(p) = promotion {
        args.insert("promotion".into(), p.into());
    }
    if let Some(s) = student {
        args.insert("student".into(), s.into());
    }
    if let Some(l) = limit {
        args.insert("limit".into(), l.into());
    }
    let data = call(ctx, "audit.list", Value::Object(args))
        .await
        .map_err(|e| super::in_flags(e, &[("limit", "--limit")]))?;
    let Some(data) = data else {
        return Ok(());
    };
    let entries = data
        .get("entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        output::print("No grade changes recorded.");
        return Ok(());
    }
    let mut t = output::table(
        &[
            "At", "By", "Action", "Grade", "Student", "Subject", "Before", "After",
        ],
        &[3, 4],
    );
    for e in &entries {
        let text = |k: &str| match e.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        let subject = [e.get("new"), e.get("old")]
            .into_iter()
            .flatten()
            .find_map(|g| g.get("subject").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        t.add_row(vec![
            text("at"),
            text("by"),
            text("action"),
            text("grade"),
            text("student"),
            subject,
            describe(e.get("old")),
            describe(e.get("new")),
        ]);
    }
    output::print(&t.to_string());
    Ok(())
}

/// A grade in an audit entry, as `14.50 ×2.00 (Midterm)`.
fn describe(grade: Option<&Value>) -> String {
    match grade {
        Some(g @ Value::Object(_)) => {
            let value = output::wire_value(g.get("value").unwrap_or(&Value::Null));
            let coef = g
                .get("coefficient")
                .and_then(Value::as_f64)
                .map(output::fmt2)
                .unwrap_or_default();
            let label = g
                .get("label")
                .and_then(Value::as_str)
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            format!("{value} ×{coef}{label}")
        }
        _ => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grades_are_described_with_their_coefficient() {
        let g = json!({"value": 14.5, "coefficient": 2, "label": "Midterm", "subject": "S"});
        assert_eq!(describe(Some(&g)), "14.50 ×2.00 (Midterm)");
        assert_eq!(
            describe(Some(&json!({"value": "ABS", "coefficient": 1}))),
            "ABS ×1.00"
        );
        assert_eq!(describe(None), "—");
    }
}
