//! `gradebook watch`: live events, printed as they arrive; reconnects by
//! itself after a dropped connection or a server restart and resumes with
//! `since`, so that no event is missed or shown twice.

use std::time::Duration;

use gradebook_proto::call;
use gradebook_proto::command::{IdArgs, NoArgs, WatchArgs};
use gradebook_proto::data::{Event, Grade};

use crate::app::Ctx;
use crate::args::WatchArgs as Args;
use crate::error::CliError;
use crate::output;

/// How often a request keeps the session alive (sessions end after 30
/// idle minutes).
const KEEPALIVE: Duration = Duration::from_secs(600);

/// The longest wait between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs `gradebook watch` until interrupted (or an error that retrying
/// cannot mend: a refused session, a forbidden target).
pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), CliError> {
    let student = match (&args.promotion, args.student) {
        (None, None) => own_student(ctx).await?,
        _ => args.student,
    };
    // The last event shown: a new watch resumes after it.
    let mut last = args.since;
    let mut backoff = Duration::from_millis(500);
    let mut announced = false;
    // Say whose grade each is, unless only one student's are watched.
    let whose = student.is_none();
    loop {
        let call = call::Watch(WatchArgs {
            promotion: args.promotion.clone(),
            student,
            since: last,
        });
        let watching = match ctx.conn.run(call).await {
            Ok(w) => w,
            Err(CliError::Connection(m)) => {
                eprintln!(
                    "gradebook watch: {m}; retrying in {:.1} s",
                    backoff.as_secs_f64()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                ctx.conn.reset();
                continue;
            }
            Err(e) => return Err(e),
        };
        backoff = Duration::from_millis(500);
        if !announced && !ctx.json {
            output::print(&format!(
                "Watching {} (from change {}); Ctrl-C to stop.",
                what(&args.promotion, student),
                last.unwrap_or(watching.seq)
            ));
            announced = true;
        }
        last = Some(last.unwrap_or(watching.seq));
        // Events until the connection drops or the feed says lagged. Now
        // and then a request keeps the session from expiring idle (its
        // reply comes between events; waiting for an event is resumed).
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            let waited = {
                let client = ctx.conn.client().await?;
                tokio::select! {
                    next = client.next_event() => Some(next.map_err(|e| e.to_string())),
                    _ = keepalive.tick() => None,
                }
            };
            ctx.conn.mark_used();
            let next = match waited {
                Some(next) => next,
                None => match ctx.conn.run(call::Whoami(NoArgs {})).await {
                    Ok(_) => continue,
                    Err(CliError::Connection(m)) => Err(m),
                    Err(e) => return Err(e),
                },
            };
            let event = match next {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("gradebook watch: the connection was lost ({e}); reconnecting");
                    ctx.conn.reset();
                    break;
                }
            };
            if event.event == "lagged" {
                // Watch again from the last event shown.
                break;
            }
            if last.is_some_and(|l| event.seq <= l) {
                continue;
            }
            last = Some(event.seq);
            if show(ctx, &event, whose).await.is_err() {
                // The connection went while asking for the average.
                break;
            }
        }
    }
}

/// The student record of a student account; nothing for the others (an
/// admin watches everything; a teacher must say what).
async fn own_student(ctx: &mut Ctx) -> Result<Option<i64>, CliError> {
    let me = ctx.conn.run(call::Whoami(NoArgs {})).await?;
    match (me.role, me.student) {
        (gradebook_proto::data::Role::Student, Some(id)) => Ok(Some(id)),
        (gradebook_proto::data::Role::Teacher, _) => Err(CliError::usage(
            "a teacher watches a promotion or a student: give --promotion or --student",
        )),
        _ => Ok(None),
    }
}

fn what(promotion: &Option<String>, student: Option<i64>) -> String {
    match (promotion, student) {
        (Some(p), _) => format!("promotion {p}"),
        (None, Some(s)) => format!("student {s}"),
        (None, None) => "every promotion".into(),
    }
}

/// Prints one event: one JSON line with `--json`, else a sentence; an
/// error if the connection was lost on the way.
async fn show(ctx: &mut Ctx, event: &Event, whose: bool) -> Result<(), CliError> {
    if ctx.json {
        // One line per event, as it came.
        output::print(&serde_json::to_string(event).unwrap_or_default());
        return Ok(());
    }
    let data = event.data.clone().unwrap_or_default();
    let line = match event.event.as_str() {
        "promotion.locked" | "promotion.unlocked" => {
            let name = data["name"].as_str().unwrap_or_default();
            let state = if event.event == "promotion.locked" {
                "locked: its grades can no longer change"
            } else {
                "unlocked"
            };
            format!("Promotion {name} {state}.")
        }
        kind => match serde_json::from_value::<Grade>(data) {
            Ok(g) => {
                let average = average_of(ctx, g.student).await?;
                grade_line(kind, &g, average, whose)
            }
            Err(_) => format!("{kind} (change {})", event.seq),
        },
    };
    output::print(&line);
    Ok(())
}

/// A grade event in words, with the student's average now if known.
fn grade_line(kind: &str, g: &Grade, average: Option<String>, whose: bool) -> String {
    let label = g
        .label
        .as_deref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    let value = format!(
        "{} ×{}",
        output::grade_value(&g.value),
        output::coefficient(&g.coefficient).trim_end_matches(".00")
    );
    let what = match kind {
        "grade.published" => format!("New grade in {}: {value}{label}", g.subject),
        "grade.added" => format!("New unpublished grade in {}: {value}{label}", g.subject),
        "grade.updated" => format!("Grade {} changed in {}: {value}{label}", g.id, g.subject),
        "grade.unpublished" => format!("Grade {} in {} hidden again{label}", g.id, g.subject),
        "grade.deleted" => format!("Grade {} in {} deleted{label}", g.id, g.subject),
        other => format!("{other}: grade {} in {}", g.id, g.subject),
    };
    let whose = if whose {
        format!(" for student {}", g.student)
    } else {
        String::new()
    };
    match average {
        Some(a) => format!("{what}{whose}, average now {a}"),
        None => format!("{what}{whose}"),
    }
}

/// The student's average as the watcher may see it, for the message (none
/// if it may not); an error only if the connection was lost.
async fn average_of(ctx: &mut Ctx, student: i64) -> Result<Option<String>, CliError> {
    match ctx
        .conn
        .run(call::StudentAverage(IdArgs { id: student }))
        .await
    {
        Ok(a) => Ok(a.average.map(output::fmt2)),
        Err(e @ CliError::Connection(_)) => Err(e),
        Err(_) => Ok(None),
    }
}
