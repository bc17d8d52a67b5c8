//! `promotion.*`: cohorts, their averages, statistics and ranks.

use gradebook_core::{Changed, Promotion, Publication};
use gradebook_core::{Name, Role, check_text};
use gradebook_proto::WireError;
use gradebook_proto::command::{
    GrantArgs, PromotionArgs, PromotionCreateArgs, PromotionDeleteArgs, PromotionUpdateArgs,
    PublishArgs,
};
use gradebook_proto::data::{
    PromotionAverage, PromotionShow, PromotionSubjects, Promotions, RankedStudent, SubjectStats,
};
use gradebook_store::{GradeSelection, PromotionPatch};

use super::{Handled, done, from_store, optional_name, reply};
use crate::context::{Caller, State};
use crate::model::Scope;

/// Years a promotion may have.
const YEARS: std::ops::RangeInclusive<i64> = 1900..=9999;

/// Validates a year.
fn year(year: Option<i64>) -> Result<Option<i64>, WireError> {
    match year {
        Some(y) if !YEARS.contains(&y) => Err(WireError::invalid_value(format!(
            "year {y} is outside {}..{}",
            YEARS.start(),
            YEARS.end()
        ))),
        _ => Ok(year),
    }
}

/// Validates a description.
fn description(d: Option<String>) -> Result<Option<String>, WireError> {
    if let Some(d) = &d {
        check_text("description", d, 0, 1024)?;
    }
    Ok(d)
}

/// Parses a publication mode.
fn publication(mode: Option<String>) -> Result<Option<Publication>, WireError> {
    Ok(mode.map(|m| m.parse::<Publication>()).transpose()?)
}

pub async fn create(state: &State, args: PromotionCreateArgs, caller: &Caller) -> Handled {
    let promotion = Promotion {
        year: year(args.year)?,
        description: description(args.description)?,
        publication: publication(args.publication)?.unwrap_or_default(),
        ..Promotion::new(Name::parse("promotion name", &args.name)?.into_string())
    };
    let session = caller.session()?;
    let promotion = state
        .store
        .promotion_create(&promotion, Some(session.user_id), caller.write()?)
        .await
        .map_err(from_store)?;
    reply(promotion)
}

pub async fn update(state: &State, args: PromotionUpdateArgs, caller: &Caller) -> Handled {
    let patch = PromotionPatch {
        year: args.year.map(year).transpose()?,
        description: args.description.map(description).transpose()?,
        publication: publication(args.publication)?,
    };
    let promotion = state
        .store
        .promotion_update(&args.name, &patch, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(promotion)
}

/// `promotion.lock` (`locked`) and `promotion.unlock`.
pub async fn lock(state: &State, args: PromotionArgs, locked: bool, caller: &Caller) -> Handled {
    let promotion = state
        .store
        .promotion_lock(&args.name, locked, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(promotion)
}

/// `grade.publish` (`published`) and `grade.unpublish`.
pub async fn publish(
    state: &State,
    args: PublishArgs,
    published: bool,
    caller: &Caller,
) -> Handled {
    let selection = GradeSelection {
        subject: optional_name("subject", args.subject)?,
        label: optional_name("label", args.label)?,
        ids: args.ids,
    };
    let changed = state
        .store
        .grades_publish(&args.promotion, &selection, published, caller.write()?)
        .await
        .map_err(from_store)?;
    reply(Changed { changed })
}

pub async fn list(state: &State, caller: &Caller) -> Handled {
    let session = caller.session()?;
    let view = state.model.read();
    let promotions = match session.user.role {
        Role::Admin => view.promotions().map(|p| p.promotion()).collect(),
        Role::Teacher => view
            .promotions()
            .filter(|p| p.managed_by(session.user_id))
            .map(|p| p.promotion())
            .collect(),
        Role::Student => match session.user.student {
            Some(id) => {
                let own = view.student(id)?;
                vec![view.promotion(&own.student().promotion)?.promotion()]
            }
            None => vec![],
        },
    };
    drop(view);
    reply(Promotions { promotions })
}

pub async fn show(state: &State, args: PromotionArgs) -> Handled {
    let view = state.model.read();
    let p = view.promotion(&args.name)?;
    let figures = view.figures(p, Scope::All);
    let mut students = Vec::with_capacity(figures.students.len());
    for ((id, summary), rank) in figures
        .students
        .iter()
        .zip(&figures.summaries)
        .zip(&figures.ranks)
    {
        let s = view.student(*id)?.student();
        students.push(RankedStudent {
            id: s.id,
            first_name: s.first_name.clone(),
            last_name: s.last_name.clone(),
            number: s.number.clone(),
            email: s.email.clone(),
            average: summary.average.map(|a| a.to_f64()),
            rank: *rank,
            incomplete: summary.incomplete,
        });
    }
    let promotion = p.promotion();
    drop(view);
    // By rank; the unranked keep the name order, after the others.
    students.sort_by_key(|s| s.rank.unwrap_or(u32::MAX));
    reply(PromotionShow {
        name: promotion.name,
        year: promotion.year,
        description: promotion.description,
        publication: promotion.publication,
        locked: promotion.locked,
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

pub async fn average(state: &State, args: PromotionArgs, caller: &Caller) -> Handled {
    let (name, figures) = {
        let view = state.model.read();
        let p = view.promotion(&args.name)?;
        (p.name().to_owned(), view.figures(p, caller.scope()))
    };
    let stats = &figures.statistics;
    reply(PromotionAverage {
        name,
        average: stats.average,
        count: stats.count as u64,
        min: stats.min,
        max: stats.max,
        median: stats.median,
        q1: stats.q1,
        q3: stats.q3,
        stddev: stats.stddev,
        histogram: stats.histogram.to_vec(),
        students: figures.students.len() as u64,
        incomplete: figures.incomplete,
    })
}

pub async fn subjects(state: &State, args: PromotionArgs, caller: &Caller) -> Handled {
    let (name, stats) = {
        let view = state.model.read();
        let p = view.promotion(&args.name)?;
        (
            p.name().to_owned(),
            view.subject_statistics(p, caller.scope()),
        )
    };
    let subjects = stats
        .iter()
        .map(|(subject, stats)| SubjectStats {
            subject: subject.clone(),
            average: stats.average,
            min: stats.min,
            max: stats.max,
            count: stats.count as u64,
        })
        .collect();
    reply(PromotionSubjects { name, subjects })
}
