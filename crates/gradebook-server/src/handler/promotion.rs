//! `promotion.*`: cohorts, their averages, statistics and ranks.

use std::collections::HashMap;

use gradebook_core::{
    Average, Grade, Name, Role, Summary, check_text, competition_ranks, statistics,
    student_summaries, subject_averages,
};
use gradebook_proto::WireError;
use gradebook_proto::command::{
    GrantArgs, PromotionArgs, PromotionCreateArgs, PromotionDeleteArgs,
};
use gradebook_proto::data::{
    PromotionAverage, PromotionShow, PromotionSubjects, Promotions, RankedStudent, SubjectStats,
};
use gradebook_store::PromotionGrades;

use super::{Handled, done, from_store, reply};
use crate::dispatch::{Caller, State};

/// Years a promotion may have.
const YEARS: std::ops::RangeInclusive<i64> = 1900..=9999;

pub async fn create(state: &State, args: PromotionCreateArgs, caller: &Caller) -> Handled {
    let name = Name::parse("promotion name", &args.name)?;
    if let Some(year) = args.year
        && !YEARS.contains(&year)
    {
        return Err(WireError::invalid_value(format!(
            "year {year} is outside {}..{}",
            YEARS.start(),
            YEARS.end()
        )));
    }
    if let Some(d) = &args.description {
        check_text("description", d, 0, 1024)?;
    }
    let session = caller.session()?;
    let promotion = state
        .store
        .promotion_create(
            name.as_str(),
            args.year,
            args.description.as_deref(),
            Some(session.user_id),
            caller.write()?,
        )
        .await
        .map_err(from_store)?;
    reply(&promotion)
}

pub async fn list(state: &State, caller: &Caller) -> Handled {
    let session = caller.session()?;
    let promotions = match session.user.role {
        Role::Admin => state.store.promotion_list(None).await,
        Role::Teacher => state.store.promotion_list(Some(session.user_id)).await,
        Role::Student => match session.user.student {
            Some(id) => {
                let own = state.store.student_get(id).await.map_err(from_store)?;
                state
                    .store
                    .promotion_get(&own.promotion)
                    .await
                    .map(|p| vec![p])
            }
            None => Ok(vec![]),
        },
    }
    .map_err(from_store)?;
    reply(&Promotions { promotions })
}

/// A promotion with its students and all their grades.
pub(super) async fn load(state: &State, name: &str) -> Result<PromotionGrades, WireError> {
    state.store.promotion_grades(name).await.map_err(from_store)
}

/// Each student's summary, in the store's order (last name, first name).
pub(super) fn summaries(pg: &PromotionGrades) -> Vec<Summary> {
    let ids: Vec<i64> = pg.students.iter().map(|s| s.id).collect();
    student_summaries(
        &ids,
        pg.grades
            .iter()
            .map(|g| (g.student, g.value, g.coefficient)),
    )
}

/// Each student's rank among the promotion, aligned with `summaries`.
pub(super) fn ranks(summaries: &[Summary]) -> Vec<Option<u32>> {
    let averages: Vec<Option<Average>> = summaries.iter().map(|s| s.average).collect();
    competition_ranks(&averages)
}

pub async fn show(state: &State, args: PromotionArgs) -> Handled {
    let pg = load(state, &args.name).await?;
    let summaries = summaries(&pg);
    let ranks = ranks(&summaries);
    let mut students: Vec<RankedStudent> = pg
        .students
        .into_iter()
        .zip(summaries.iter().zip(&ranks))
        .map(|(s, (summary, rank))| RankedStudent {
            id: s.id,
            first_name: s.first_name,
            last_name: s.last_name,
            number: s.number,
            email: s.email,
            average: summary.average.map(|a| a.to_f64()),
            rank: *rank,
            incomplete: summary.incomplete,
        })
        .collect();
    // By rank; the unranked keep the store's name order, after the others.
    students.sort_by_key(|s| s.rank.unwrap_or(u32::MAX));
    reply(&PromotionShow {
        name: pg.promotion.name,
        year: pg.promotion.year,
        description: pg.promotion.description,
        students,
    })
}

pub async fn delete(state: &State, args: PromotionDeleteArgs, caller: &Caller) -> Handled {
    state
        .store
        .promotion_delete(&args.name, args.force.unwrap_or(false), caller.write()?)
        .await
        .map_err(from_store)?;
    done()
}

pub async fn grant(state: &State, args: GrantArgs, give: bool, caller: &Caller) -> Handled {
    let user = state
        .store
        .user_credentials(&args.username)
        .await
        .map_err(from_store)?
        .ok_or_else(|| {
            WireError::not_found(format!("no user named '{}'", args.username.escape_debug()))
        })?;
    if user.user.role != Role::Teacher {
        return Err(WireError::invalid_value(format!(
            "'{}' is a {}: only teachers are granted promotions",
            args.username.escape_debug(),
            user.user.role
        )));
    }
    let store = &state.store;
    let ctx = caller.write()?;
    if give {
        store.promotion_grant(&args.name, &args.username, ctx).await
    } else {
        store
            .promotion_revoke(&args.name, &args.username, ctx)
            .await
    }
    .map_err(from_store)?;
    done()
}

pub async fn average(state: &State, args: PromotionArgs) -> Handled {
    let pg = load(state, &args.name).await?;
    let summaries = summaries(&pg);
    let averages: Vec<Average> = summaries.iter().filter_map(|s| s.average).collect();
    let stats = statistics(&averages);
    reply(&PromotionAverage {
        name: pg.promotion.name,
        average: stats.average,
        count: stats.count as u64,
        min: stats.min,
        max: stats.max,
        median: stats.median,
        q1: stats.q1,
        q3: stats.q3,
        stddev: stats.stddev,
        histogram: stats.histogram.to_vec(),
        students: pg.students.len() as u64,
        incomplete: summaries.iter().filter(|s| s.incomplete).count() as u64,
    })
}

pub async fn subjects(state: &State, args: PromotionArgs) -> Handled {
    let pg = load(state, &args.name).await?;
    let mut by_student: HashMap<i64, Vec<&Grade>> = HashMap::new();
    for g in &pg.grades {
        by_student.entry(g.student).or_default().push(g);
    }
    // subject -> the students' averages in it
    let mut per_subject: std::collections::BTreeMap<String, Vec<Average>> = Default::default();
    for grades in by_student.values() {
        let subjects = subject_averages(
            grades
                .iter()
                .map(|g| (g.subject.as_str(), g.value, g.coefficient)),
        );
        for s in subjects {
            let entry = per_subject.entry(s.subject).or_default();
            entry.extend(s.summary.average);
        }
    }
    let subjects = per_subject
        .into_iter()
        .map(|(subject, averages)| {
            let stats = statistics(&averages);
            SubjectStats {
                subject,
                average: stats.average,
                min: stats.min,
                max: stats.max,
                count: stats.count as u64,
            }
        })
        .collect();
    reply(&PromotionSubjects {
        name: pg.promotion.name,
        subjects,
    })
}
