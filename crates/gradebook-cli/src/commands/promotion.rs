//! `promotion create|update|lock|unlock|list|show|average|subjects|delete|grant|revoke`.

use gradebook_proto::call;
use gradebook_proto::command::{
    GrantArgs, NoArgs, PromotionArgs, PromotionCreateArgs, PromotionDeleteArgs, PromotionUpdateArgs,
};
use gradebook_proto::data::{Promotion, PromotionAverage, PromotionShow, Publication};

use super::{in_flags, name_key, request};
use crate::app::Ctx;
use crate::args::PromotionCommand;
use crate::error::CliError;
use crate::output::{self, fmt2, opt2};

/// Runs one `promotion` subcommand.
pub async fn run(ctx: &mut Ctx, command: PromotionCommand) -> Result<(), CliError> {
    match command {
        PromotionCommand::Create {
            name,
            year,
            description,
            publication,
        } => {
            let create = call::PromotionCreate(PromotionCreateArgs {
                name,
                year,
                description,
                publication,
            });
            let created = request(ctx, create).await.map_err(|e| in_flags(e, FLAGS))?;
            if let Some(p) = created {
                let year = p.year.map(|y| format!(" ({y})")).unwrap_or_default();
                let hidden = match p.publication {
                    Publication::Manual => ": its grades stay hidden from students until published",
                    Publication::Immediate => "",
                };
                output::print(&format!("Created promotion {}{year}{hidden}.", p.name));
            }
        }
        PromotionCommand::Update {
            name,
            year,
            clear_year,
            description,
            clear_description,
            publication,
        } => {
            let update = call::PromotionUpdate(PromotionUpdateArgs {
                name,
                year: if clear_year {
                    Some(None)
                } else {
                    year.map(Some)
                },
                description: if clear_description {
                    Some(None)
                } else {
                    description.map(Some)
                },
                publication,
            });
            let updated = request(ctx, update).await.map_err(|e| in_flags(e, FLAGS))?;
            if let Some(p) = updated {
                output::print(&format!("Updated promotion {}: {}.", p.name, state(&p)));
            }
        }
        PromotionCommand::Lock { name } => {
            if let Some(p) = request(ctx, call::PromotionLock(PromotionArgs { name })).await? {
                output::print(&format!(
                    "Locked promotion {}: its students and grades can no longer change.",
                    p.name
                ));
            }
        }
        PromotionCommand::Unlock { name } => {
            if let Some(p) = request(ctx, call::PromotionUnlock(PromotionArgs { name })).await? {
                output::print(&format!("Unlocked promotion {}.", p.name));
            }
        }
        PromotionCommand::List => {
            if let Some(mut list) = request(ctx, call::PromotionList(NoArgs {})).await? {
                if list.promotions.is_empty() {
                    output::print("No promotions.");
                    return Ok(());
                }
                list.promotions
                    .sort_by_cached_key(|p| (name_key(&p.name), p.name.clone()));
                let mut t = output::table(&["Promotion", "Year", "Students"], &[1, 2]);
                for p in &list.promotions {
                    t.add_row(vec![
                        p.name.clone(),
                        p.year.map(|y| y.to_string()).unwrap_or_default(),
                        p.students.to_string(),
                    ]);
                }
                output::print(&t.to_string());
            }
        }
        PromotionCommand::Show { name } => {
            if let Some(p) = request(ctx, call::PromotionShow(PromotionArgs { name })).await? {
                show(p);
            }
        }
        PromotionCommand::Average { name } => {
            let asked = call::PromotionAverage(PromotionArgs { name });
            if let Some(a) = request(ctx, asked).await? {
                average(&a);
            }
        }
        PromotionCommand::Subjects { name } => {
            let asked = call::PromotionSubjects(PromotionArgs { name });
            if let Some(mut s) = request(ctx, asked).await? {
                if s.subjects.is_empty() {
                    output::print(&format!("No subjects in {}: no grades yet.", s.name));
                    return Ok(());
                }
                s.subjects
                    .sort_by_cached_key(|row| (name_key(&row.subject), row.subject.clone()));
                let mut t = output::table(
                    &["Subject", "Average", "Min", "Max", "Students"],
                    &[1, 2, 3, 4],
                );
                for row in &s.subjects {
                    t.add_row(vec![
                        row.subject.clone(),
                        opt2(row.average),
                        opt2(row.min),
                        opt2(row.max),
                        row.count.to_string(),
                    ]);
                }
                output::print(&format!(
                    "{}: {}\n{t}",
                    s.name,
                    output::count(s.subjects.len() as u64, "subject")
                ));
            }
        }
        PromotionCommand::Delete { name, force } => {
            let delete = call::PromotionDelete(PromotionDeleteArgs {
                name: name.clone(),
                force: force.then_some(true),
            });
            let done = request(ctx, delete)
                .await
                .map_err(|e| in_flags(e, &[("force", "--force")]))?;
            if done.is_some() {
                output::print(&format!("Deleted promotion {name}."));
            }
        }
        PromotionCommand::Grant { name, username } => {
            let grant = call::PromotionGrant(GrantArgs {
                name: name.clone(),
                username: username.clone(),
            });
            if request(ctx, grant).await?.is_some() {
                output::print(&format!("{username} may now manage {name}."));
            }
        }
        PromotionCommand::Revoke { name, username } => {
            let revoke = call::PromotionRevoke(GrantArgs {
                name: name.clone(),
                username: username.clone(),
            });
            if request(ctx, revoke).await?.is_some() {
                output::print(&format!("{username} no longer manages {name}."));
            }
        }
    }
    Ok(())
}

/// The flags of `promotion create` and `update`, by argument name.
const FLAGS: &[(&str, &str)] = &[
    ("year", "--year"),
    ("description", "--description"),
    ("publication", "--publication"),
];

/// A promotion's publication mode and lock, in words.
fn state(p: &Promotion) -> String {
    let mode = match p.publication {
        Publication::Immediate => "grades visible to students at once",
        Publication::Manual => "grades visible to students once published",
    };
    if p.locked {
        format!("{mode}, locked")
    } else {
        mode.to_owned()
    }
}

/// The students by rank; equal ranks and the unranked by name.
fn show(mut p: PromotionShow) {
    let year = p.year.map(|y| format!(" ({y})")).unwrap_or_default();
    let ranked = p.students.iter().filter(|s| s.rank.is_some()).count();
    let mut out = format!(
        "{}{year}: {}, {ranked} ranked{}{}\n",
        p.name,
        output::count(p.students.len() as u64, "student"),
        match p.publication {
            Publication::Manual => ", grades published by hand",
            Publication::Immediate => "",
        },
        if p.locked { ", locked" } else { "" },
    );
    if let Some(d) = &p.description {
        out.push_str(d);
        out.push('\n');
    }
    if p.students.is_empty() {
        out.push_str(&format!("No students in {}.", p.name));
        output::print(&out);
        return;
    }
    p.students.sort_by_cached_key(|s| {
        (
            s.rank.unwrap_or(u32::MAX),
            name_key(&s.last_name),
            name_key(&s.first_name),
            s.last_name.clone(),
            s.first_name.clone(),
            s.id,
        )
    });
    let mut t = output::table(
        &["Rank", "Id", "Last name", "First name", "Number", "Average"],
        &[0, 1, 5],
    );
    let mut pending = false;
    for s in &p.students {
        let mark = if s.incomplete {
            pending = true;
            " *"
        } else {
            ""
        };
        t.add_row(vec![
            s.rank.map(|r| r.to_string()).unwrap_or_else(|| "—".into()),
            s.id.to_string(),
            s.last_name.clone(),
            s.first_name.clone(),
            s.number.clone().unwrap_or_default(),
            format!("{}{mark}", opt2(s.average)),
        ]);
    }
    out.push_str(&t.to_string());
    if pending {
        out.push_str("\n* a grade is pending (ATT): the average may change");
    }
    output::print(&out);
}

/// The statistics, then the histogram under them.
fn average(a: &PromotionAverage) {
    let mut out = format!(
        "{}: {} enrolled, {} with an average",
        a.name,
        output::count(a.students, "student"),
        a.count
    );
    if a.incomplete > 0 {
        out.push_str(&format!(", {} with a pending grade (ATT)", a.incomplete));
    }
    out.push('\n');
    let mut t = output::table(&["Statistic", "Value"], &[1]);
    for (name, value) in [
        ("average", a.average),
        ("median", a.median),
        ("q1", a.q1),
        ("q3", a.q3),
        ("min", a.min),
        ("max", a.max),
        ("stddev", a.stddev),
    ] {
        t.add_row(vec![name.to_owned(), opt2(value)]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    if a.count > 0 {
        out.push_str(&format!(
            "\nStudent averages (20 bins; {}, mean {}):\n",
            output::count(a.count, "student"),
            a.average.map(fmt2).unwrap_or_default()
        ));
        out.push_str(&output::histogram(&a.histogram, output::colour(false)));
    }
    output::print(&out);
}
