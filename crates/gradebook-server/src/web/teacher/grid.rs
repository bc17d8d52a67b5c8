//! `/promotions/{name}/grid?subject=S&label=L&coefficient=C`: one column
//! of grades (a subject and label) for every student of a promotion, typed
//! like a spreadsheet column and saved in one request.
//!
//! A cell holds what the teacher types (`14.5`, `14,5`, `ABS`, `EXC`,
//! `ATT`); a saved cell is one `grade.add`, or `grade.update` of the
//! student's grade with that subject and label, or `grade.delete` when a
//! cell that had a grade is emptied. Each cell's `was-{id}` field holds
//! what the page showed, so a cell left as it was changes nothing, even if
//! someone else changed that grade meanwhile. A refused cell keeps what was
//! typed, with the protocol's message beside it; the others are saved.
//!
//! `web/static/grid.js` adds the keyboard (Enter and the arrows move down
//! and up the column) and pastes a copied column into the cells below.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use gradebook_core::import::{NotDecimal, parse_coefficient, parse_hundredths};
use gradebook_core::{Grade, GradeInput, GradeValue};
use gradebook_proto::command::{
    GradeAddArgs, GradeListArgs, GradeUpdateArgs, IdArgs, PromotionArgs, call,
};
use gradebook_proto::{ErrorCode, WireError, data};
use serde::Deserialize;

use super::super::i18n::Lang;
use super::super::page::{self, Chrome, Page};
use super::super::session::Viewer;
use super::super::{Web, call};
use super::promotion::grid_href;
use super::{Problem, given, guard, promotion_path, redirect_with_flash, refused};

/// The column a grid is about.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GridQuery {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    coefficient: String,
}

impl GridQuery {
    /// The subject and label as the server stores names (NFC), so that a
    /// name typed in decomposed form finds its grades.
    fn normalized(mut self) -> GridQuery {
        for text in [&mut self.subject, &mut self.label] {
            *text = text.trim().to_owned();
            gradebook_core::to_nfc(text);
        }
        self.coefficient = self.coefficient.trim().to_owned();
        self
    }

    fn label(&self) -> Option<String> {
        given(&self.label)
    }
}

/// One student's row of the grid.
#[derive(Debug)]
pub struct GridRow {
    /// Their id.
    pub id: i64,
    /// Last and first name.
    pub name: String,
    /// Their institutional number, or empty.
    pub number: String,
    /// What the cell shows: the grade, or what was typed if refused.
    pub value: String,
    /// What the page showed before any typing.
    pub was: String,
    /// The protocol's refusal of what was typed.
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "teacher_grid.html")]
struct GridPage {
    chrome: Chrome,
    name: String,
    base: String,
    here: String,
    subject: String,
    label: String,
    coefficient: String,
    manual: bool,
    locked: bool,
    rows: Vec<GridRow>,
    status: String,
    alerts: Vec<Problem>,
}

/// A student of the promotion with their grades.
#[derive(Debug)]
struct Student {
    id: i64,
    name: String,
    number: String,
    grades: Vec<Grade>,
}

/// `promotion.show` and each student's `grade.list`, students by name.
async fn load(
    web: &Web,
    viewer: &Viewer,
    name: &str,
) -> Result<(data::PromotionShow, Vec<Student>), WireError> {
    let show = call(
        web,
        &viewer.token,
        viewer.peer,
        call::PromotionShow(PromotionArgs {
            name: name.to_owned(),
        }),
    )
    .await?;
    let mut ranked: Vec<&data::RankedStudent> = show.students.iter().collect();
    ranked.sort_by(|a, b| {
        (
            a.last_name.to_lowercase(),
            a.first_name.to_lowercase(),
            a.id,
        )
            .cmp(&(
                b.last_name.to_lowercase(),
                b.first_name.to_lowercase(),
                b.id,
            ))
    });
    let mut students = Vec::with_capacity(ranked.len());
    for s in ranked {
        let list = call(
            web,
            &viewer.token,
            viewer.peer,
            call::GradeList(GradeListArgs { student: s.id }),
        )
        .await?;
        students.push(Student {
            id: s.id,
            name: format!("{} {}", s.last_name, s.first_name),
            number: s.number.clone().unwrap_or_default(),
            grades: list.grades,
        });
    }
    Ok((show, students))
}

/// The student's grade in the column: the first (oldest) with its subject
/// and label.
fn in_column<'a>(student: &'a Student, column: &GridQuery) -> Option<&'a Grade> {
    let label = column.label();
    student
        .grades
        .iter()
        .find(|g| g.subject == column.subject && g.label == label)
}

/// A number written in `lang` (a decimal comma in French).
fn decimal(lang: Lang, text: String) -> String {
    match lang {
        Lang::En => text,
        Lang::Fr => text.replace('.', ","),
    }
}

/// A grade as its cell shows it.
fn cell_text(lang: Lang, grade: Option<&Grade>) -> String {
    grade.map_or_else(String::new, |g| decimal(lang, g.value.to_string()))
}

/// A cell's text as the protocol carries it: a mark in capitals, a number
/// read exactly (`14,5` is 14.5). Anything else goes as typed, so that the
/// protocol refuses it in its own words.
fn grade_input(text: &str) -> GradeInput {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    if GradeValue::parse_mark(&upper).is_some() {
        return GradeInput::Mark(upper);
    }
    match parse_hundredths(t) {
        Ok(h) => GradeInput::Number(h as f64 / 100.0),
        Err(NotDecimal::TooPrecise) => t
            .replace(',', ".")
            .parse::<f64>()
            .map_or_else(|_| GradeInput::Mark(t.to_owned()), GradeInput::Number),
        Err(NotDecimal::NotANumber) => GradeInput::Mark(t.to_owned()),
    }
}

/// The grid's coefficient as the protocol carries it (none when left
/// empty). Text that is not a number is refused with the words an import
/// uses for it; a number out of range goes to the protocol.
fn coefficient_input(text: &str) -> Result<Option<f64>, WireError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let read = match parse_hundredths(t) {
        Ok(h) => Some(h as f64 / 100.0),
        Err(NotDecimal::TooPrecise) => t.replace(',', ".").parse::<f64>().ok(),
        Err(NotDecimal::NotANumber) => None,
    };
    match read {
        Some(x) => Ok(Some(x)),
        None => parse_coefficient(t)
            .map(|c| Some(c.to_f64()))
            .map_err(WireError::from),
    }
}

/// The coefficient shown when the grid was opened without one: the
/// column's, if it has grades, else 1.
fn column_coefficient(lang: Lang, students: &[Student], column: &GridQuery) -> String {
    let found = students.iter().find_map(|s| in_column(s, column));
    let hundredths = found.map_or(100, |g| i64::from(g.coefficient.hundredths()));
    decimal(lang, gradebook_core::export::number(hundredths, false))
}

/// What to do with one cell.
#[derive(Debug, PartialEq)]
enum Change {
    Nothing,
    Add(GradeAddArgs),
    Update(GradeUpdateArgs),
    Delete(i64),
}

/// The change a cell asks for: `typed` now, `was` what the page showed
/// (absent from a form that did not carry it), `existing` the student's
/// grade in the column now.
fn change(
    student: i64,
    typed: &str,
    was: Option<&str>,
    existing: Option<&Grade>,
    column: &GridQuery,
    coefficient: Option<f64>,
) -> Change {
    let typed = typed.trim();
    if was.is_some_and(|w| w.trim() == typed) {
        return Change::Nothing;
    }
    if typed.is_empty() {
        // Emptied: the grade the page showed goes. An empty cell that
        // showed nothing changes nothing.
        let showed = was.map_or(existing.is_some(), |w| !w.trim().is_empty());
        return match existing {
            Some(g) if showed => Change::Delete(g.id),
            _ => Change::Nothing,
        };
    }
    let value = grade_input(typed);
    match existing {
        Some(g) => {
            let same_value = GradeValue::parse(&value).is_ok_and(|v| v == g.value);
            let new_coefficient =
                coefficient.filter(|&c| (c - g.coefficient.to_f64()).abs() > f64::EPSILON);
            if same_value && new_coefficient.is_none() {
                return Change::Nothing;
            }
            Change::Update(GradeUpdateArgs {
                id: g.id,
                value: Some(value),
                coefficient: new_coefficient,
                subject: None,
                label: None,
            })
        }
        None => Change::Add(GradeAddArgs {
            student,
            subject: column.subject.clone(),
            value,
            coefficient,
            label: column.label(),
        }),
    }
}

/// Runs one cell's change; `Ok(true)` when something was written.
async fn apply(web: &Web, viewer: &Viewer, change: Change) -> Result<bool, WireError> {
    let (token, peer) = (&viewer.token, viewer.peer);
    match change {
        Change::Nothing => Ok(false),
        Change::Add(args) => call(web, token, peer, call::GradeAdd(args))
            .await
            .map(|_| true),
        Change::Update(args) => call(web, token, peer, call::GradeUpdate(args))
            .await
            .map(|_| true),
        Change::Delete(id) => call(web, token, peer, call::GradeDelete(IdArgs { id }))
            .await
            .map(|_| true),
    }
}

/// Everything a grid page shows beside its rows.
struct Shown {
    status: String,
    alerts: Vec<Problem>,
    http: StatusCode,
}

/// Renders the grid. `typed` holds, for refused cells, what was typed,
/// what the page had shown, and why it was refused.
#[allow(clippy::too_many_arguments)]
fn render(
    web: &Web,
    viewer: &Viewer,
    headers: &HeaderMap,
    show: &data::PromotionShow,
    students: &[Student],
    column: &GridQuery,
    typed: &HashMap<i64, (String, Option<String>, String)>,
    shown_: Shown,
) -> Page {
    let lang = viewer.lang;
    let base = promotion_path(&show.name);
    let coefficient = if column.coefficient.is_empty() {
        column_coefficient(lang, students, column)
    } else {
        column.coefficient.clone()
    };
    let here = grid_href(&base, &column.subject, &column.label, &column.coefficient);
    let rows = students
        .iter()
        .map(|s| {
            let current = cell_text(lang, in_column(s, column));
            match typed.get(&s.id) {
                Some((value, was, error)) => GridRow {
                    id: s.id,
                    name: s.name.clone(),
                    number: s.number.clone(),
                    value: value.clone(),
                    was: was.clone().unwrap_or_else(|| current.clone()),
                    error: Some(error.clone()),
                },
                None => GridRow {
                    id: s.id,
                    name: s.name.clone(),
                    number: s.number.clone(),
                    value: current.clone(),
                    was: current,
                    error: None,
                },
            }
        })
        .collect();
    let body = page::render(&GridPage {
        chrome: viewer.chrome(&here),
        name: show.name.clone(),
        subject: column.subject.clone(),
        label: column.label.clone(),
        coefficient,
        manual: !show.publication.publishes_new_grades(),
        locked: show.locked,
        rows,
        status: shown_.status,
        alerts: shown_.alerts,
        base,
        here,
    });
    Ok(super::shown(web, headers, shown_.http, body))
}

/// `GET /promotions/{name}/grid`.
pub async fn show(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(column): Query<GridQuery>,
) -> Page {
    guard(&viewer)?;
    let column = column.normalized();
    if column.subject.is_empty() {
        let e = WireError::bad_request(viewer.lang.t("teacher.grid.no_subject"));
        return Err(refused(&viewer, &e));
    }
    let (show, students) = load(&web, &viewer, &name)
        .await
        .map_err(|e| refused(&viewer, &e))?;
    let status = super::flash(&headers, viewer.lang).unwrap_or_default();
    render(
        &web,
        &viewer,
        &headers,
        &show,
        &students,
        &column,
        &HashMap::new(),
        Shown {
            status,
            alerts: Vec::new(),
            http: StatusCode::OK,
        },
    )
}

/// `POST /promotions/{name}/grid`: every changed cell in one request.
pub async fn save(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Page {
    guard(&viewer)?;
    let fields: HashMap<String, String> = fields.into_iter().collect();
    let field = |k: &str| fields.get(k).map(String::as_str);
    viewer.check_csrf(&headers, field("csrf"))?;
    let lang = viewer.lang;
    let column = GridQuery {
        subject: field("subject").unwrap_or_default().to_owned(),
        label: field("label").unwrap_or_default().to_owned(),
        coefficient: field("coefficient").unwrap_or_default().to_owned(),
    }
    .normalized();
    let (show, students) = load(&web, &viewer, &name)
        .await
        .map_err(|e| refused(&viewer, &e))?;
    let mut refused_cells: HashMap<i64, (String, Option<String>, String)> = HashMap::new();
    let mut problems: Vec<WireError> = Vec::new();
    let mut saved = 0u64;
    match coefficient_input(&column.coefficient) {
        Err(e) => problems.push(e),
        Ok(coefficient) => {
            // Every cell's command at once: they touch different students,
            // and the store's group commit writes them in a commit or two
            // instead of one each.
            let (cells, todos): (Vec<_>, Vec<_>) = students
                .iter()
                .filter_map(|s| {
                    // None: a student added since the page was shown.
                    let typed = field(&format!("grade-{}", s.id))?;
                    let was = field(&format!("was-{}", s.id));
                    let todo = change(
                        s.id,
                        typed,
                        was,
                        in_column(s, &column),
                        &column,
                        coefficient,
                    );
                    Some(((s.id, typed, was), todo))
                })
                .unzip();
            let applied = futures_util::future::join_all(
                todos.into_iter().map(|todo| apply(&web, &viewer, todo)),
            )
            .await;
            for ((id, typed, was), result) in cells.iter().zip(applied) {
                match result {
                    Ok(true) => saved += 1,
                    Ok(false) => {}
                    Err(e) => {
                        refused_cells.insert(
                            *id,
                            (typed.to_string(), was.map(str::to_owned), e.message.clone()),
                        );
                        problems.push(e);
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        let base = promotion_path(&show.name);
        let back = grid_href(&base, &column.subject, &column.label, &column.coefficient);
        return Ok(redirect_with_flash(
            &web,
            &back,
            "teacher.flash.saved",
            Some(saved),
        ));
    }
    // Show the grid as it is now (the saved cells as saved), the refused
    // cells as typed.
    let (show, students) = load(&web, &viewer, &name)
        .await
        .map_err(|e| refused(&viewer, &e))?;
    let status = lang
        .t("teacher.grid.partly_saved")
        .replace("{n}", &saved.to_string())
        .replace("{m}", &refused_cells.len().to_string());
    // Refusals that are not about one value (a locked promotion, a
    // coefficient out of range…) are said once at the top too.
    let mut alerts: Vec<Problem> = Vec::new();
    for p in &problems {
        let whole = p.code != ErrorCode::InvalidValue || refused_cells.is_empty();
        if whole && !alerts.iter().any(|a| a.message == p.message) {
            alerts.push(Problem::from(p));
        }
    }
    render(
        &web,
        &viewer,
        &headers,
        &show,
        &students,
        &column,
        &refused_cells,
        Shown {
            status,
            alerts,
            http: StatusCode::UNPROCESSABLE_ENTITY,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradebook_core::{Coefficient, Points};

    fn column() -> GridQuery {
        GridQuery {
            subject: "Maths".into(),
            label: "TP".into(),
            coefficient: String::new(),
        }
    }

    fn grade(value: GradeValue) -> Grade {
        Grade {
            id: 7,
            student: 1,
            subject: "Maths".into(),
            value,
            coefficient: Coefficient::ONE,
            label: Some("TP".into()),
            published: true,
        }
    }

    fn points(h: u16) -> GradeValue {
        GradeValue::Points(Points::from_hundredths(i64::from(h)).expect("a grade"))
    }

    #[test]
    fn cells_are_read_as_people_type_them() {
        assert_eq!(grade_input("14,5"), GradeInput::Number(14.5));
        assert_eq!(grade_input(" 14.5 "), GradeInput::Number(14.5));
        assert_eq!(grade_input("abs"), GradeInput::Mark("ABS".into()));
        assert_eq!(grade_input("45"), GradeInput::Number(45.0));
        assert_eq!(grade_input("12,255"), GradeInput::Number(12.255));
        assert_eq!(grade_input("abc"), GradeInput::Mark("abc".into()));
    }

    #[test]
    fn coefficients_are_numbers_or_refused_in_the_import_s_words() {
        assert_eq!(coefficient_input(""), Ok(None));
        assert_eq!(coefficient_input("1,5"), Ok(Some(1.5)));
        assert_eq!(coefficient_input("0"), Ok(Some(0.0)));
        let e = coefficient_input("two").expect_err("not a number");
        assert_eq!(e.code, ErrorCode::InvalidValue);
    }

    #[test]
    fn a_cell_left_as_shown_changes_nothing() {
        let g = grade(points(1450));
        let c = column();
        assert_eq!(
            change(1, "14,5", Some("14,5"), Some(&g), &c, None),
            Change::Nothing
        );
        // Typed again in the other notation: the same value.
        assert_eq!(
            change(1, "14.5", Some("14,5"), Some(&g), &c, None),
            Change::Nothing
        );
        assert_eq!(change(1, "", Some(""), None, &c, None), Change::Nothing);
        // Empty, and the page showed nothing: a grade added meanwhile stays.
        assert_eq!(change(1, "", Some(""), Some(&g), &c, None), Change::Nothing);
    }

    #[test]
    fn cells_add_update_or_delete() {
        let g = grade(points(1450));
        let c = column();
        assert!(matches!(
            change(1, "12", Some(""), None, &c, Some(2.0)),
            Change::Add(GradeAddArgs {
                student: 1,
                coefficient: Some(2.0),
                ..
            })
        ));
        assert!(matches!(
            change(1, "12", Some("14,5"), Some(&g), &c, None),
            Change::Update(GradeUpdateArgs {
                id: 7,
                coefficient: None,
                ..
            })
        ));
        assert_eq!(
            change(1, "", Some("14,5"), Some(&g), &c, None),
            Change::Delete(7)
        );
        // Without the page's record, an empty cell deletes what is there.
        assert_eq!(change(1, "", None, Some(&g), &c, None), Change::Delete(7));
    }
}
