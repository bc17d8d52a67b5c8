//! A student's home page: their grades by subject with averages, their
//! rank, their promotion's average and histogram; kept live by
//! server-sent events that a `watch` feeds.
//!
//! Everything comes from `student.show` and `promotion.average` run as the
//! student: unpublished grades are absent from both (protocol §9), so the
//! page cannot show or leak them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gradebook_core::{GradeValue, Role};
use gradebook_proto::command::{IdArgs, PromotionArgs, WatchArgs, call};
use gradebook_proto::{ErrorCode, WireError, data};

use super::page::{self, Chrome, Page, number};
use super::session::Viewer;
use super::{Web, call};
use crate::context::Effect;
use crate::watch::{Taken, Watcher};

/// `/me`, its live part, and `/events`.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/me", get(me))
        .route("/me/live", get(me_live))
        .route("/events", get(events))
}

/// One grade as the page shows it.
#[derive(Debug)]
pub struct GradeRow {
    /// The value (`14.50`, `ABS`…).
    pub value: String,
    /// Its coefficient.
    pub coefficient: String,
    /// Its label, or empty.
    pub label: String,
}

/// One subject with its grades.
#[derive(Debug)]
pub struct SubjectBlock {
    /// The subject.
    pub subject: String,
    /// Its average, written in the page's language.
    pub average: String,
    /// Its grades, oldest first.
    pub grades: Vec<GradeRow>,
}

/// One bar of the histogram (SVG coordinates).
#[derive(Debug)]
pub struct Bar {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Height.
    pub height: u32,
    /// The bin's lower bound (0 to 19).
    pub from: u32,
    /// How many students.
    pub count: u32,
    /// Whether the student's own average falls in it.
    pub mine: bool,
}

/// What the live part of the page shows.
#[derive(Debug)]
pub struct Live {
    /// The student's name.
    pub name: String,
    /// Their promotion.
    pub promotion: String,
    /// Their general average.
    pub average: String,
    /// Some grade is pending (ATT).
    pub incomplete: bool,
    /// Their rank, if ranked.
    pub rank: Option<u32>,
    /// How many are ranked.
    pub of: u32,
    /// Their subjects.
    pub subjects: Vec<SubjectBlock>,
    /// The promotion's average.
    pub promotion_average: String,
    /// Its median.
    pub median: String,
    /// The histogram.
    pub bars: Vec<Bar>,
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    chrome: Chrome,
    live: Option<Live>,
}

#[derive(Template)]
#[template(path = "me_live.html")]
struct MeLive {
    chrome: Chrome,
    live: Option<Live>,
}

/// Histogram height in SVG units.
const CHART_HEIGHT: u32 = 120;
/// One bar's width and gap.
const BAR_WIDTH: u32 = 16;

/// Gathers the page's data, as the student.
async fn live(web: &Web, viewer: &Viewer) -> Result<Option<Live>, WireError> {
    let Some(id) = viewer.who.student else {
        return Ok(None);
    };
    let lang = viewer.lang;
    let show = call(
        web,
        &viewer.token,
        viewer.peer,
        call::StudentShow(IdArgs { id }),
    )
    .await?;
    let promotion = call(
        web,
        &viewer.token,
        viewer.peer,
        call::PromotionAverage(PromotionArgs {
            name: show.promotion.clone(),
        }),
    )
    .await?;
    Ok(Some(assemble(lang, show, promotion)))
}

/// The page's data from the two replies.
fn assemble(
    lang: super::i18n::Lang,
    show: data::StudentShow,
    promotion: data::PromotionAverage,
) -> Live {
    let decimal = |text: String| match lang {
        super::i18n::Lang::En => text,
        super::i18n::Lang::Fr => text.replace('.', ","),
    };
    let subjects = show
        .subjects
        .iter()
        .map(|s| SubjectBlock {
            subject: s.subject.clone(),
            average: number(lang, s.average),
            grades: show
                .grades
                .iter()
                .filter(|g| g.subject == s.subject)
                .map(|g| GradeRow {
                    // Points as averages are written (14.50); marks as they are.
                    value: match g.value {
                        GradeValue::Points(p) => number(lang, Some(p.to_f64())),
                        mark => mark.to_string(),
                    },
                    coefficient: decimal(g.coefficient.to_string()),
                    label: g.label.clone().unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let tallest = promotion
        .histogram
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let own_bin = show.average.map(|a| (a.floor() as u32).min(19));
    let bars = promotion
        .histogram
        .iter()
        .enumerate()
        .map(|(k, &count)| {
            let height = count * CHART_HEIGHT / tallest;
            Bar {
                x: k as u32 * BAR_WIDTH,
                y: CHART_HEIGHT - height,
                height,
                from: k as u32,
                count,
                mine: own_bin == Some(k as u32),
            }
        })
        .collect();
    Live {
        name: format!("{} {}", show.first_name, show.last_name),
        promotion: show.promotion,
        average: number(lang, show.average),
        incomplete: show.incomplete,
        rank: show.rank,
        of: show.of,
        subjects,
        promotion_average: number(lang, promotion.average),
        median: number(lang, promotion.median),
        bars,
    }
}

/// `/me`: a student's home page.
async fn me(State(web): State<Arc<Web>>, viewer: Viewer) -> Page {
    viewer.require(&[Role::Student])?;
    let live = live(&web, &viewer)
        .await
        .map_err(|e| page::error_page(viewer.lang, Some(&viewer), &e))?;
    Ok(page::render(&MePage {
        chrome: viewer.chrome("/me"),
        live,
    }))
}

/// `/me/live`: the part of `/me` that changes, fetched again on each event.
async fn me_live(State(web): State<Arc<Web>>, viewer: Viewer) -> Page {
    viewer.require(&[Role::Student])?;
    let live = live(&web, &viewer)
        .await
        .map_err(|e| page::error_page(viewer.lang, Some(&viewer), &e))?;
    Ok(page::render(&MeLive {
        chrome: viewer.chrome("/me"),
        live,
    }))
}

/// `/events`: the events the user may see, as server-sent events, from a
/// `watch` run as them (the same filter as over TCP). The stream ends with
/// the session, when the watcher lags (the browser reconnects by itself)
/// or when the server stops.
async fn events(State(web): State<Arc<Web>>, viewer: Viewer) -> Response {
    // A student watches their own record (the permission rule asks it).
    let student = match viewer.who.role {
        Role::Student => viewer.who.student,
        Role::Teacher | Role::Admin => None,
    };
    let outcome = web
        .run(
            Some(&viewer.token),
            viewer.peer,
            call::Watch(WatchArgs {
                promotion: None,
                student,
                since: None,
            }),
        )
        .await;
    let watch = match (outcome.result, outcome.effect) {
        (Ok(_), Effect::Watch(watch)) => watch,
        (Err(e), _) => return page::status_of(e.code).into_response(),
        (Ok(_), _) => {
            return page::status_of(ErrorCode::Internal).into_response();
        }
    };
    let Some(watcher) = Watcher::start(&watch) else {
        return page::status_of(ErrorCode::Internal).into_response();
    };
    // The state is `None` once the last event (`lagged`) went out.
    let stream =
        futures_util::stream::unfold(Some((watcher, web.clone())), move |watching| async move {
            let (mut watcher, web) = watching?;
            loop {
                let next = tokio::select! {
                    _ = web.shutdown.cancelled() => return None,
                    n = watcher.next() => n,
                };
                let sse = match watcher.take(next, &web.state) {
                    Taken::Nothing => continue,
                    Taken::SessionEnded => return None,
                    Taken::Lagged(seq) => {
                        let lagged = SseEvent::default()
                            .event("lagged")
                            .id(seq.to_string())
                            .data("{}");
                        return Some((Ok::<_, Infallible>(lagged), None));
                    }
                    Taken::Event(event) => SseEvent::default()
                        .event(event.kind)
                        .id(event.seq.to_string())
                        .data(serde_json::to_string(&event.message()).unwrap_or_default()),
                };
                return Some((Ok(sse), Some((watcher, web))));
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(25)))
        .into_response()
}
