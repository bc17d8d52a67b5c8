//! `grade add|list|update|delete|publish|unpublish`.

use gradebook_proto::call;
use gradebook_proto::command::{
    GradeAddArgs, GradeInput, GradeListArgs, GradeUpdateArgs, IdArgs, PublishArgs,
};
use gradebook_proto::data::Grade;

use super::request;
use crate::app::Ctx;
use crate::args::{GradeCommand, GradeSelectionArgs};
use crate::error::CliError;
use crate::output;
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
            let add = call::GradeAdd(GradeAddArgs {
                student,
                subject,
                value: value_arg(&value)?,
                coefficient: coef.as_deref().map(coef_arg).transpose()?,
                label,
            });
            if let Some(g) = request(ctx, add).await? {
                output::print(&format!(
                    "Added grade {} for student {}.\n{}",
                    g.id,
                    g.student,
                    table(std::slice::from_ref(&g))
                ));
            }
        }
        GradeCommand::List { student } => {
            if let Some(list) = request(ctx, call::GradeList(GradeListArgs { student })).await? {
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
            if value.is_none()
                && coef.is_none()
                && subject.is_none()
                && label.is_none()
                && !clear_label
            {
                return Err(CliError::usage(
                    "nothing to change: give --value, --coef, --subject or --label",
                ));
            }
            let update = GradeUpdateArgs {
                id,
                value: value.as_deref().map(value_arg).transpose()?,
                coefficient: coef.as_deref().map(coef_arg).transpose()?,
                subject,
                // A label to set, or null to clear it.
                label: match label {
                    Some(l) => Some(Some(l)),
                    None => clear_label.then_some(None),
                },
            };
            if let Some(g) = request(ctx, call::GradeUpdate(update)).await? {
                output::print(&format!(
                    "Updated grade {}.\n{}",
                    g.id,
                    table(std::slice::from_ref(&g))
                ));
            }
        }
        GradeCommand::Delete { id } => {
            if request(ctx, call::GradeDelete(IdArgs { id }))
                .await?
                .is_some()
            {
                output::print(&format!("Deleted grade {id}."));
            }
        }
        GradeCommand::Publish { which } => publish(ctx, which, true).await?,
        GradeCommand::Unpublish { which } => publish(ctx, which, false).await?,
    }
    Ok(())
}

/// `grade publish` (`published`) and `grade unpublish`.
async fn publish(
    ctx: &mut Ctx,
    which: GradeSelectionArgs,
    published: bool,
) -> Result<(), CliError> {
    let promotion = which.promotion.clone();
    let args = PublishArgs {
        promotion: which.promotion,
        subject: which.subject,
        label: which.label,
        ids: which.ids,
    };
    let (changed, verb) = if published {
        (request(ctx, call::GradePublish(args)).await?, "Published")
    } else {
        (
            request(ctx, call::GradeUnpublish(args)).await?,
            "Unpublished",
        )
    };
    if let Some(c) = changed {
        output::print(&format!(
            "{verb} {} in {promotion}.",
            output::count(c.changed, "grade")
        ));
    }
    Ok(())
}

fn value_arg(text: &str) -> Result<GradeInput, CliError> {
    values::grade_input(text).map_err(CliError::Usage)
}

fn coef_arg(text: &str) -> Result<f64, CliError> {
    values::coefficient_input(text).map_err(CliError::Usage)
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
            output::grade_cell(g),
            output::coefficient(&g.coefficient),
            g.label.clone().unwrap_or_default(),
        ]);
    }
    t.to_string()
}
