//! `student add|list|show|average|explain|update|remove`.

use gradebook_proto::call;
use gradebook_proto::command::{IdArgs, StudentAddArgs, StudentListArgs, StudentUpdateArgs};
use gradebook_proto::data::{Student, StudentExplain, StudentShow};

use super::{in_flags, name_key, request};
use crate::app::Ctx;
use crate::args::StudentCommand;
use crate::error::CliError;
use crate::input;
use crate::output::{self, fmt2, opt2};

/// The wire names of `student add` and `update` arguments, as typed.
const ADD_FLAGS: &[(&str, &str)] = &[
    ("first_name", "FIRST_NAME"),
    ("last_name", "LAST_NAME"),
    ("number", "--number"),
    ("email", "--email"),
];
const UPDATE_FLAGS: &[(&str, &str)] = &[
    ("first_name", "--first-name"),
    ("last_name", "--last-name"),
    ("number", "--number"),
    ("email", "--email"),
];

/// Runs one `student` subcommand.
pub async fn run(ctx: &mut Ctx, command: StudentCommand) -> Result<(), CliError> {
    match command {
        StudentCommand::Add {
            promotion,
            first_name,
            last_name,
            number,
            email,
        } => {
            let add = call::StudentAdd(StudentAddArgs {
                promotion,
                first_name,
                last_name,
                number,
                email,
            });
            let added = request(ctx, add)
                .await
                .map_err(|e| in_flags(e, ADD_FLAGS))?;
            if let Some(s) = added {
                output::print(&format!(
                    "Added {} {} to {} with id {}.",
                    s.first_name, s.last_name, s.promotion, s.id
                ));
            }
        }
        StudentCommand::List { promotion } => {
            let list = call::StudentList(StudentListArgs {
                promotion: promotion.clone(),
            });
            if let Some(mut list) = request(ctx, list).await? {
                if list.students.is_empty() {
                    output::print(&format!("No students in {promotion}."));
                } else {
                    // As people sort names, not by code point: the
                    // server's order puts Émile after Zoé.
                    list.students.sort_by_cached_key(|s| {
                        (
                            name_key(&s.last_name),
                            name_key(&s.first_name),
                            s.last_name.clone(),
                            s.first_name.clone(),
                            s.id,
                        )
                    });
                    output::print(&students_table(&list.students));
                }
            }
        }
        StudentCommand::Show { id } => {
            if let Some(s) = request(ctx, call::StudentShow(IdArgs { id })).await? {
                output::print(&show(&s));
            }
        }
        StudentCommand::Average { id } => {
            if let Some(a) = request(ctx, call::StudentAverage(IdArgs { id })).await? {
                let mut line = format!(
                    "Student {}: average {} ({} counted, coefficients {})",
                    a.id,
                    opt2(a.average),
                    output::count(a.counted, "grade"),
                    fmt2(a.coefficients)
                );
                if a.incomplete {
                    line.push_str("\nA grade is pending (ATT): the average may change.");
                }
                output::print(&line);
            }
        }
        StudentCommand::Explain { id } => {
            if let Some(e) = request(ctx, call::StudentExplain(IdArgs { id })).await? {
                output::print(&explain(id, &e));
            }
        }
        StudentCommand::Update {
            id,
            first_name,
            last_name,
            number,
            clear_number,
            email,
            clear_email,
            promotion,
        } => {
            if first_name.is_none()
                && last_name.is_none()
                && number.is_none()
                && !clear_number
                && email.is_none()
                && !clear_email
                && promotion.is_none()
            {
                return Err(CliError::usage(
                    "nothing to change: give --first-name, --last-name, --number, --email or --promotion",
                ));
            }
            // A value to set, or null to clear, or nothing to leave as is.
            let change = |value: Option<String>, clear: bool| match value {
                Some(v) => Some(Some(v)),
                None => clear.then_some(None),
            };
            let update = StudentUpdateArgs {
                id,
                first_name,
                last_name,
                number: change(number, clear_number),
                email: change(email, clear_email),
                promotion,
            };
            let updated = request(ctx, call::StudentUpdate(update))
                .await
                .map_err(|e| in_flags(e, UPDATE_FLAGS))?;
            if let Some(s) = updated {
                output::print(&format!(
                    "Updated student {}.\n{}",
                    s.id,
                    students_table(std::slice::from_ref(&s))
                ));
            }
        }
        StudentCommand::Remove { id, force } => {
            if !force {
                confirm_remove(ctx, id).await?;
            }
            if request(ctx, call::StudentRemove(IdArgs { id }))
                .await?
                .is_some()
            {
                output::print(&format!("Removed student {id} and their grades."));
            }
        }
    }
    Ok(())
}

/// Asks before removing a student, naming them and counting the grades
/// that go with them; refuses where no one can answer (a shell script
/// reads its lines from standard input).
async fn confirm_remove(ctx: &mut Ctx, id: i64) -> Result<(), CliError> {
    if !ctx.conn.may_prompt() {
        return Err(CliError::usage(format!(
            "student remove asks before removing; add --force to remove student {id} without asking"
        )));
    }
    let s = ctx.conn.run(call::StudentShow(IdArgs { id })).await?;
    let question = format!(
        "Remove {} {} (student {id}, {}) and {}?",
        s.first_name,
        s.last_name,
        s.promotion,
        output::count(s.grades.len() as u64, "grade")
    );
    if input::confirm(&question)? {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "student {id} not removed (add --force to remove without asking)"
        )))
    }
}

fn students_table(students: &[Student]) -> String {
    let mut t = output::table(
        &[
            "Id",
            "Last name",
            "First name",
            "Number",
            "Email",
            "Promotion",
        ],
        &[0],
    );
    for s in students {
        t.add_row(vec![
            s.id.to_string(),
            s.last_name.clone(),
            s.first_name.clone(),
            s.number.clone().unwrap_or_default(),
            s.email.clone().unwrap_or_default(),
            s.promotion.clone(),
        ]);
    }
    t.to_string()
}

/// A student's grades grouped by subject, each subject with its average,
/// then the general average and the rank.
fn show(s: &StudentShow) -> String {
    let mut out = format!("{} {} · id {}", s.first_name, s.last_name, s.id);
    if let Some(n) = &s.number {
        out.push_str(&format!(" · number {n}"));
    }
    if let Some(e) = &s.email {
        out.push_str(&format!(" · {e}"));
    }
    out.push_str(&format!(" · {}\n", s.promotion));
    if s.grades.is_empty() {
        out.push_str("No grades yet.\n");
    } else {
        let mut t = output::table(
            &["Subject", "Average", "Grade", "Coef", "Label", "Grade id"],
            &[1, 2, 3, 5],
        );
        // The server lists subjects by name; grades keep their order.
        let mut subjects: Vec<&str> = s.subjects.iter().map(|x| x.subject.as_str()).collect();
        for g in &s.grades {
            if !subjects.contains(&g.subject.as_str()) {
                subjects.push(&g.subject);
            }
        }
        for subject in subjects {
            let average = s
                .subjects
                .iter()
                .find(|x| x.subject == subject)
                .and_then(|x| x.average);
            for (i, g) in s.grades.iter().filter(|g| g.subject == subject).enumerate() {
                let (name, avg) = if i == 0 {
                    (subject.to_owned(), opt2(average))
                } else {
                    (String::new(), String::new())
                };
                t.add_row(vec![
                    name,
                    avg,
                    output::grade_cell(g),
                    output::coefficient(&g.coefficient),
                    g.label.clone().unwrap_or_default(),
                    g.id.to_string(),
                ]);
            }
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    out.push_str(&format!("General average: {}", opt2(s.average)));
    if s.incomplete {
        out.push_str(" (a grade is pending: ATT)");
    }
    out.push('\n');
    match s.rank {
        Some(r) => out.push_str(&format!("Rank: {r}/{}", s.of)),
        None => out.push_str(&format!("Rank: — ({} ranked)", s.of)),
    }
    out
}

/// `student.explain`, as the server writes it out.
fn explain(id: i64, e: &StudentExplain) -> String {
    let mut t = output::table(
        &["Grade id", "Subject", "Grade", "Coef", "How it counts"],
        &[0, 2, 3],
    );
    for l in &e.lines {
        t.add_row(vec![
            l.grade.to_string(),
            l.subject.clone(),
            output::grade_value(&l.value),
            fmt2(l.coefficient),
            l.reason.clone(),
        ]);
    }
    let mut out = format!("Average of student {id}, grade by grade:\n{t}\n");
    out.push_str(&format!(
        "Σ value × coefficient = {}   Σ coefficients = {}\n",
        e.weighted_sum, e.coefficient_sum
    ));
    out.push_str(&format!("Average = {}", e.formula));
    if e.incomplete {
        out.push_str("\nA grade is pending (ATT): the average may change.");
    }
    out
}
