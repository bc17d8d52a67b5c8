//! `student.*`: enrolment, identity, a student's averages and rank.

use gradebook_core::explain as explain_average;
use gradebook_proto::WireError;
use gradebook_proto::command::{IdArgs, StudentAddArgs, StudentListArgs, StudentUpdateArgs};
use gradebook_proto::data::{StudentAverage, StudentShow, Students, SubjectAverage};
use gradebook_store::{NewStudent, StudentPatch};

use super::{Handled, done, from_store, name, reply};
use crate::context::{Caller, State};

fn email(value: Option<String>) -> Result<Option<String>, WireError> {
    Ok(gradebook_core::import::email(value.as_deref())?)
}

fn number(value: Option<String>) -> Result<Option<String>, WireError> {
    Ok(gradebook_core::import::number(value.as_deref())?)
}

pub async fn add(state: &State, args: StudentAddArgs, caller: &Caller) -> Handled {
    let student = NewStudent {
        first_name: name("first_name", args.first_name)?,
        last_name: name("last_name", args.last_name)?,
        number: number(args.number)?,
        email: email(args.email)?,
    };
    let s = state
        .store
        .student_add(&args.promotion, &student, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(s)
}

pub async fn list(state: &State, args: StudentListArgs) -> Handled {
    let students = {
        let view = state.model.read();
        let p = view.promotion(&args.promotion)?;
        view.students_of(p).map(|s| s.student().clone()).collect()
    };
    reply(Students { students })
}

pub async fn update(state: &State, args: StudentUpdateArgs, caller: &Caller) -> Handled {
    let patch = StudentPatch {
        first_name: args.first_name.map(|v| name("first_name", v)).transpose()?,
        last_name: args.last_name.map(|v| name("last_name", v)).transpose()?,
        number: args.number.map(number).transpose()?,
        email: args.email.map(email).transpose()?,
        promotion: args.promotion,
    };
    let s = state
        .store
        .student_update(args.id, &patch, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(s)
}

pub async fn remove(state: &State, args: IdArgs, caller: &Caller) -> Handled {
    state
        .store
        .student_remove(args.id, caller.write()?)
        .await
        .map_err(from_store)?;
    done()
}

pub async fn show(state: &State, args: IdArgs, caller: &Caller) -> Handled {
    let scope = caller.scope();
    let view = state.model.read();
    let s = view.student(args.id)?;
    let student = s.student().clone();
    let figures = view.figures(view.promotion(&student.promotion)?, scope);
    let (summary, rank) = match figures.of(student.id) {
        Some((summary, rank)) => (summary.clone(), rank),
        None => (s.summary(scope), None),
    };
    let grades = s.grades(scope).collect();
    let subjects = s
        .subject_averages(scope)
        .into_iter()
        .map(|s| SubjectAverage {
            subject: s.subject,
            average: s.summary.average.map(|a| a.to_f64()),
            coefficients: s.summary.coefficients as f64 / 100.0,
        })
        .collect();
    drop(view);
    reply(StudentShow {
        id: student.id,
        first_name: student.first_name,
        last_name: student.last_name,
        number: student.number,
        email: student.email,
        promotion: student.promotion,
        grades,
        average: summary.average.map(|a| a.to_f64()),
        incomplete: summary.incomplete,
        subjects,
        rank,
        of: figures.ranked,
    })
}

pub async fn average(state: &State, args: IdArgs, caller: &Caller) -> Handled {
    let s = state.model.read().student(args.id)?.summary(caller.scope());
    reply(StudentAverage {
        id: args.id,
        average: s.average.map(|a| a.to_f64()),
        counted: s.counted as u64,
        coefficients: s.coefficients as f64 / 100.0,
        incomplete: s.incomplete,
    })
}

pub async fn explain(state: &State, args: IdArgs, caller: &Caller) -> Handled {
    let explanation = explain_average(
        state
            .model
            .read()
            .student(args.id)?
            .grade_values(caller.scope()),
    );
    reply(Explained {
        explanation,
        id: args.id,
    })
}

/// `student.explain`'s reply: the explanation, and whose it is.
#[derive(serde::Serialize)]
struct Explained {
    #[serde(flatten)]
    explanation: gradebook_core::Explanation,
    id: i64,
}
