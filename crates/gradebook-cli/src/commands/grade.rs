//! `grade add|list|update|delete`.

use gradebook_proto::data::{Grade, Grades};
use serde_json::{Value, json};

use super::call;
use crate::app::Ctx;
use crate::args::GradeCommand;
use crate::error::CliError;
use crate::output::{self, decode};
use crate::values;

/// Runs one `grade` subcommand.
pub async fn run(ctx: &mut Ctx, command: GradeCommand) -> Result<(), CliError> {
    match command {
        GradeCommand::Add {
            student,
            subject,
            value,
            coef,
            label,
        } => {
            let mut args = serde_json::Map::new();
            args.insert("student".into(), student.into());
            args.insert("subject".into(), subject.into());
            args.insert("value".into(), value_arg(&value)?);
            if let Some(c) = coef {
                args.insert("coefficient".into(), coef_arg(&c)?);
            }
            if let Some(l) = label {
                args.insert("label".into(), l.into());
            }
            if let Some(data) = call(ctx, "grade.add", Value::Object(args)).await? {
                let g: Grade = decode(data)?;
                output::print(&format!(
                    "Added grade {} for student {}.\n{}",
                    g.id,
                    g.student,
                    table(std::slice::from_ref(&g))
                ));
            }
        }
        GradeCommand::List { student } => {
            if let Some(data) = call(ctx, "grade.list", json!({ "student": student })).await? {
                let list: Grades = decode(data)?;
                if list.grades.is_empty() {
                    output::print(&format!("No grades for student {student}."));
                } else {
                    output::print(&table(&list.grades));
                }
            }
        }
        GradeCommand::Update {
            id,
            value,
            coef,
            subject,
            label,
            clear_label,
        } => {
            let mut args = serde_json::Map::new();
            args.insert("id".into(), id.into());
            if let Some(v) = value {
                args.insert("value".into(), value_arg(&v)?);
            }
            if let Some(c) = coef {
                args.insert("coefficient".into(), coef_arg(&c)?);
            }
            if let Some(s) = subject {
                args.insert("subject".into(), s.into());
            }
            if let Some(l) = label {
                args.insert("label".into(), l.into());
            } else if clear_label {
                args.insert("label".into(), Value::Null);
            }
            if args.len() == 1 {
                return Err(CliError::usage(
                    "nothing to change: give --value, --coef, --subject or --label",
                ));
            }
            if let Some(data) = call(ctx, "grade.update", Value::Object(args)).await? {
                let g: Grade = decode(data)?;
                output::print(&format!(
                    "Updated grade {}.\n{}",
                    g.id,
                    table(std::slice::from_ref(&g))
                ));
            }
        }
        GradeCommand::Delete { id } => {
            if call(ctx, "grade.delete", json!({ "id": id }))
                .await?
                .is_some()
            {
                output::print(&format!("Deleted grade {id}."));
            }
        }
    }
    Ok(())
}

fn value_arg(text: &str) -> Result<Value, CliError> {
    let input = values::grade_input(text).map_err(CliError::Usage)?;
    serde_json::to_value(input).map_err(|e| CliError::usage(e.to_string()))
}

fn coef_arg(text: &str) -> Result<Value, CliError> {
    let x = values::coefficient_input(text).map_err(CliError::Usage)?;
    Ok(json!(x))
}

/// Grades with their ids.
pub fn table(grades: &[Grade]) -> String {
    let mut t = output::table(
        &["Id", "Student", "Subject", "Grade", "Coef", "Label"],
        &[0, 1, 3, 4],
    );
    for g in grades {
        t.add_row(vec![
            g.id.to_string(),
            g.student.to_string(),
            g.subject.clone(),
            output::grade_value(&g.value),
            output::coefficient(&g.coefficient),
            g.label.clone().unwrap_or_default(),
        ]);
    }
    t.to_string()
}
