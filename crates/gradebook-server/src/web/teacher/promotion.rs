//! `/promotions/{name}`: a promotion's table (rank, name, each subject's
//! average, the general average), sortable by links, its evaluations, and
//! the forms that act on it: publish, unpublish, lock, unlock, add a
//! student, open the grid.
//!
//! The table is `promotion.show` (averages and ranks), `promotion.subjects`
//! and `promotion.average` (the promotion's figures) and one `student.show`
//! per student (their subject averages and grades), all run as the viewer.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use gradebook_proto::command::{IdArgs, PromotionArgs, PublishArgs, StudentAddArgs, call};
use gradebook_proto::{WireError, data};
use serde::Deserialize;

use super::super::i18n::Lang;
use super::super::page::{self, Chrome, Page, number};
use super::super::session::{Viewer, local_path};
use super::super::{Web, call};
use super::{Problem, given, guard, here, promotion_path, redirect_with_flash, refused, shown};

/// What the protocol says of a promotion, for the page.
#[derive(Debug)]
pub struct Loaded {
    /// `promotion.show`: the promotion, its students, averages and ranks.
    pub show: data::PromotionShow,
    /// `promotion.subjects`: each subject's figures.
    pub subjects: data::PromotionSubjects,
    /// `promotion.average`: the promotion's figures.
    pub average: data::PromotionAverage,
    /// `student.show` of each student, in the order of `show.students`.
    pub students: Vec<data::StudentShow>,
}

/// Runs the commands the promotion's page is made of, as the viewer.
pub async fn load(web: &Web, viewer: &Viewer, name: &str) -> Result<Loaded, WireError> {
    let promotion = || PromotionArgs {
        name: name.to_owned(),
    };
    let token = &viewer.token;
    let show = call(web, token, viewer.peer, call::PromotionShow(promotion())).await?;
    let subjects = call(
        web,
        token,
        viewer.peer,
        call::PromotionSubjects(promotion()),
    )
    .await?;
    let average = call(web, token, viewer.peer, call::PromotionAverage(promotion())).await?;
    let mut students = Vec::with_capacity(show.students.len());
    for s in &show.students {
        let one = call(
            web,
            token,
            viewer.peer,
            call::StudentShow(IdArgs { id: s.id }),
        )
        .await?;
        students.push(one);
    }
    Ok(Loaded {
        show,
        subjects,
        average,
        students,
    })
}

/// How the table is sorted: `?sort=rank|name|average|subject:<S>` and
/// `&dir=desc`.
#[derive(Debug, Default, Deserialize)]
pub struct SortQuery {
    sort: Option<String>,
    dir: Option<String>,
}

/// A column the table can be sorted by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Rank,
    Name,
    Average,
    Subject(String),
}

impl Key {
    fn parse(text: Option<&str>) -> Key {
        match text {
            Some("name") => Key::Name,
            Some("average") => Key::Average,
            Some(s) => match s.strip_prefix("subject:") {
                Some(subject) => Key::Subject(subject.to_owned()),
                None => Key::Rank,
            },
            None => Key::Rank,
        }
    }

    /// The direction a first click sorts in: the best averages first,
    /// names and ranks from the top.
    fn first_descending(&self) -> bool {
        matches!(self, Key::Average | Key::Subject(_))
    }

    fn as_param(&self) -> String {
        match self {
            Key::Rank => "rank".into(),
            Key::Name => "name".into(),
            Key::Average => "average".into(),
            Key::Subject(s) => format!("subject:{s}"),
        }
    }
}

/// A sortable column's header: its link, and `aria-sort` when it is the
/// current order.
#[derive(Debug)]
pub struct SortLink {
    /// The link that sorts by it (the other way when it is current).
    pub href: String,
    /// `ascending` or `descending` when current.
    pub aria: Option<&'static str>,
    /// The arrow shown beside the current column.
    pub arrow: &'static str,
}

fn sort_link(base: &str, key: &Key, current: &Key, descending: bool) -> SortLink {
    let param = page::encode(&key.as_param());
    let this = key == current;
    // The current column links to the other direction; another column to
    // its first one.
    let next_descending = if this {
        !descending
    } else {
        key.first_descending()
    };
    let href = if next_descending {
        format!("{base}?sort={param}&dir=desc")
    } else {
        format!("{base}?sort={param}")
    };
    SortLink {
        href,
        aria: this.then_some(if descending {
            "descending"
        } else {
            "ascending"
        }),
        arrow: match (this, descending) {
            (false, _) => "",
            (true, false) => "▲",
            (true, true) => "▼",
        },
    }
}

/// One subject's column.
#[derive(Debug)]
pub struct SubjectColumn {
    /// The subject.
    pub name: String,
    /// Its header's link.
    pub sort: SortLink,
    /// The promotion's average in it.
    pub average: String,
}

/// One student's row.
#[derive(Debug)]
pub struct Row {
    /// Their id.
    pub id: i64,
    /// Their rank, or a dash.
    pub rank: String,
    /// Last and first name.
    pub name: String,
    /// Their institutional number, or empty.
    pub number: String,
    /// Their average in each subject column.
    pub subjects: Vec<String>,
    /// Their general average.
    pub average: String,
    /// Some grade is pending (ATT).
    pub incomplete: bool,
}

/// One evaluation: the grades of a subject and label.
#[derive(Debug)]
pub struct Evaluation {
    /// The subject.
    pub subject: String,
    /// The label, or empty.
    pub label: String,
    /// How many grades.
    pub count: usize,
    /// How many of them are published.
    pub published: usize,
    /// Their coefficient(s).
    pub coefficient: String,
    /// The grid's link for it.
    pub grid: String,
}

/// What the student form holds (kept when it is refused).
#[derive(Debug, Default, Deserialize)]
pub struct StudentForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    email: String,
    csrf: Option<String>,
}

/// What the publish forms hold.
#[derive(Debug, Default, Deserialize)]
pub struct PublishForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    label: String,
    /// A page of this site to come back to (the grid).
    back: Option<String>,
    csrf: Option<String>,
}

/// A form with only its CSRF token.
#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "teacher_promotion.html")]
struct PromotionPage {
    chrome: Chrome,
    flash: Option<String>,
    error: Option<Problem>,
    name: String,
    base: String,
    year: String,
    description: String,
    manual: bool,
    locked: bool,
    average: String,
    rank_sort: SortLink,
    name_sort: SortLink,
    average_sort: SortLink,
    columns: Vec<SubjectColumn>,
    rows: Vec<Row>,
    evaluations: Vec<Evaluation>,
    student: StudentForm,
    publish: PublishForm,
}

/// Orders the students for the table: ascending is increasing (rank 1
/// first; the lowest average first). Students without the value sorted on
/// (no average, no rank) come last whichever the direction; ties go by
/// name.
fn sort(loaded: &Loaded, key: &Key, descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..loaded.show.students.len()).collect();
    let name = |i: usize| {
        let s = &loaded.show.students[i];
        (
            s.last_name.to_lowercase(),
            s.first_name.to_lowercase(),
            s.id,
        )
    };
    let figure = |i: usize| -> Option<f64> {
        match key {
            Key::Rank => loaded.show.students[i].rank.map(f64::from),
            Key::Average => loaded.show.students[i].average,
            Key::Subject(subject) => loaded.students[i]
                .subjects
                .iter()
                .find(|s| &s.subject == subject)
                .and_then(|s| s.average),
            Key::Name => None,
        }
    };
    let direction = |o: std::cmp::Ordering| if descending { o.reverse() } else { o };
    match key {
        Key::Name => order.sort_by(|&a, &b| direction(name(a).cmp(&name(b)))),
        _ => order.sort_by(|&a, &b| {
            let by_figure = match (figure(a), figure(b)) {
                (Some(x), Some(y)) => direction(x.total_cmp(&y)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            by_figure.then_with(|| name(a).cmp(&name(b)))
        }),
    }
    order
}

/// The evaluations of the promotion, from its students' grades.
fn evaluations(lang: Lang, base: &str, loaded: &Loaded) -> Vec<Evaluation> {
    // (subject, label) → (count, published, coefficients in hundredths)
    type Tally = (usize, usize, std::collections::BTreeSet<u16>);
    let mut by: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for g in loaded.students.iter().flat_map(|s| &s.grades) {
        let entry = by
            .entry((g.subject.clone(), g.label.clone().unwrap_or_default()))
            .or_default();
        entry.0 += 1;
        entry.1 += usize::from(g.published);
        entry.2.insert(g.coefficient.hundredths());
    }
    by.into_iter()
        .map(|((subject, label), (count, published, coefficients))| {
            let written: Vec<String> = coefficients
                .iter()
                .map(|&h| decimal(lang, gradebook_core::export::number(i64::from(h), false)))
                .collect();
            let one = if coefficients.len() == 1 {
                written.first().cloned().unwrap_or_default()
            } else {
                String::new()
            };
            Evaluation {
                grid: grid_href(base, &subject, &label, &one),
                coefficient: written.join(", "),
                subject,
                label,
                count,
                published,
            }
        })
        .collect()
}

/// A decimal written in `lang` (a comma in French).
fn decimal(lang: Lang, text: String) -> String {
    match lang {
        Lang::En => text,
        Lang::Fr => text.replace('.', ","),
    }
}

/// The grid's link for a subject, label and coefficient.
pub fn grid_href(base: &str, subject: &str, label: &str, coefficient: &str) -> String {
    format!(
        "{base}/grid?subject={}&label={}&coefficient={}",
        page::encode(subject),
        page::encode(label),
        page::encode(coefficient)
    )
}

/// Everything the page may show beside the promotion.
#[derive(Debug, Default)]
struct Extras {
    error: Option<WireError>,
    student: StudentForm,
    publish: PublishForm,
}

/// Renders the page of promotion `name`, with an action's refusal if any.
async fn page_of(
    web: &Web,
    viewer: &Viewer,
    headers: &HeaderMap,
    here: &str,
    name: &str,
    sort_query: SortQuery,
    extras: Extras,
) -> Page {
    let loaded = load(web, viewer, name)
        .await
        .map_err(|e| refused(viewer, &e))?;
    let lang = viewer.lang;
    let base = promotion_path(&loaded.show.name);
    let key = Key::parse(sort_query.sort.as_deref());
    let descending = sort_query.dir.as_deref() == Some("desc");
    let columns: Vec<SubjectColumn> = loaded
        .subjects
        .subjects
        .iter()
        .map(|s| SubjectColumn {
            name: s.subject.clone(),
            sort: sort_link(&base, &Key::Subject(s.subject.clone()), &key, descending),
            average: number(lang, s.average),
        })
        .collect();
    let rows = sort(&loaded, &key, descending)
        .into_iter()
        .map(|i| {
            let s = &loaded.show.students[i];
            let shown = &loaded.students[i];
            Row {
                id: s.id,
                rank: s.rank.map_or_else(|| "–".to_owned(), |r| r.to_string()),
                name: format!("{} {}", s.last_name, s.first_name),
                number: s.number.clone().unwrap_or_default(),
                subjects: columns
                    .iter()
                    .map(|c| {
                        let average = shown
                            .subjects
                            .iter()
                            .find(|a| a.subject == c.name)
                            .and_then(|a| a.average);
                        number(lang, average)
                    })
                    .collect(),
                average: number(lang, s.average),
                incomplete: s.incomplete,
            }
        })
        .collect();
    let status = extras
        .error
        .as_ref()
        .map_or(StatusCode::OK, |e| page::status_of(e.code));
    let body = page::render(&PromotionPage {
        chrome: viewer.chrome(here),
        flash: super::flash(headers, lang),
        error: extras.error.as_ref().map(Problem::from),
        evaluations: evaluations(lang, &base, &loaded),
        rank_sort: sort_link(&base, &Key::Rank, &key, descending),
        name_sort: sort_link(&base, &Key::Name, &key, descending),
        average_sort: sort_link(&base, &Key::Average, &key, descending),
        year: loaded.show.year.map(|y| y.to_string()).unwrap_or_default(),
        description: loaded.show.description.clone().unwrap_or_default(),
        manual: !loaded.show.publication.publishes_new_grades(),
        locked: loaded.show.locked,
        average: number(lang, loaded.average.average),
        name: loaded.show.name.clone(),
        base,
        columns,
        rows,
        student: extras.student,
        publish: extras.publish,
    });
    Ok(shown(web, headers, status, body))
}

/// `GET /promotions/{name}`.
pub async fn show(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
    Query(sort): Query<SortQuery>,
) -> Page {
    guard(&viewer)?;
    page_of(
        &web,
        &viewer,
        &headers,
        &here(&uri),
        &name,
        sort,
        Extras::default(),
    )
    .await
}

/// After an action: back to `back` (a page of this site) or the
/// promotion's page, with `key`'s message; or the promotion's page with
/// the refusal inline.
async fn after(
    web: &Web,
    viewer: &Viewer,
    headers: &HeaderMap,
    name: &str,
    outcome: Result<(&'static str, Option<u64>), WireError>,
    back: Option<&str>,
    mut extras: Extras,
) -> Page {
    match outcome {
        Ok((key, n)) => {
            let to = match back {
                Some(b) => local_path(Some(b)).to_owned(),
                None => promotion_path(name),
            };
            Ok(redirect_with_flash(web, &to, key, n))
        }
        Err(e) => {
            extras.error = Some(e);
            let here = promotion_path(name);
            page_of(
                web,
                viewer,
                headers,
                &here,
                name,
                SortQuery::default(),
                extras,
            )
            .await
        }
    }
}

/// `grade.publish` or `grade.unpublish` with the form's subject and label.
async fn publication(
    web: Arc<Web>,
    viewer: Viewer,
    headers: HeaderMap,
    name: String,
    form: PublishForm,
    published: bool,
) -> Page {
    guard(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let args = PublishArgs {
        promotion: name.clone(),
        subject: given(&form.subject),
        label: given(&form.label),
        ids: None,
    };
    let (reply, key) = if published {
        let r = call(&web, &viewer.token, viewer.peer, call::GradePublish(args)).await;
        (r, "teacher.flash.published")
    } else {
        let r = call(&web, &viewer.token, viewer.peer, call::GradeUnpublish(args)).await;
        (r, "teacher.flash.unpublished")
    };
    let outcome = reply.map(|c| (key, Some(c.changed)));
    let back = form.back.clone();
    let extras = Extras {
        publish: form,
        ..Extras::default()
    };
    after(
        &web,
        &viewer,
        &headers,
        &name,
        outcome,
        back.as_deref(),
        extras,
    )
    .await
}

/// `POST /promotions/{name}/publish`.
pub async fn publish(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<PublishForm>,
) -> Page {
    publication(web, viewer, headers, name, form, true).await
}

/// `POST /promotions/{name}/unpublish`.
pub async fn unpublish(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<PublishForm>,
) -> Page {
    publication(web, viewer, headers, name, form, false).await
}

/// `promotion.lock` or `promotion.unlock`.
async fn locking(
    web: Arc<Web>,
    viewer: Viewer,
    headers: HeaderMap,
    name: String,
    form: CsrfForm,
    locked: bool,
) -> Page {
    guard(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let args = PromotionArgs { name: name.clone() };
    let outcome = if locked {
        call(&web, &viewer.token, viewer.peer, call::PromotionLock(args))
            .await
            .map(|_| ("teacher.flash.locked", None))
    } else {
        call(
            &web,
            &viewer.token,
            viewer.peer,
            call::PromotionUnlock(args),
        )
        .await
        .map(|_| ("teacher.flash.unlocked", None))
    };
    after(
        &web,
        &viewer,
        &headers,
        &name,
        outcome,
        None,
        Extras::default(),
    )
    .await
}

/// `POST /promotions/{name}/lock`.
pub async fn lock(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    locking(web, viewer, headers, name, form, true).await
}

/// `POST /promotions/{name}/unlock`.
pub async fn unlock(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    locking(web, viewer, headers, name, form, false).await
}

/// `POST /promotions/{name}/students`: `student.add`.
pub async fn add_student(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<StudentForm>,
) -> Page {
    guard(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let args = StudentAddArgs {
        promotion: name.clone(),
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        number: given(&form.number),
        email: given(&form.email),
    };
    let outcome = call(&web, &viewer.token, viewer.peer, call::StudentAdd(args))
        .await
        .map(|_| ("teacher.flash.student_added", None));
    // Refused: the typed values stay in the form.
    let extras = Extras {
        student: form,
        ..Extras::default()
    };
    after(&web, &viewer, &headers, &name, outcome, None, extras).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_read_back_from_their_parameter() {
        for key in [
            Key::Rank,
            Key::Name,
            Key::Average,
            Key::Subject("Réseaux: TP".into()),
        ] {
            assert_eq!(Key::parse(Some(&key.as_param())), key);
        }
        assert_eq!(Key::parse(Some("nonsense")), Key::Rank);
    }

    #[test]
    fn the_current_column_links_to_the_other_direction() {
        let l = sort_link("/promotions/P", &Key::Name, &Key::Name, false);
        assert_eq!(l.href, "/promotions/P?sort=name&dir=desc");
        assert_eq!(l.aria, Some("ascending"));
        let l = sort_link("/promotions/P", &Key::Name, &Key::Name, true);
        assert_eq!(l.href, "/promotions/P?sort=name");
        assert_eq!(l.aria, Some("descending"));
        // Averages sort best first at the first click.
        let l = sort_link("/promotions/P", &Key::Average, &Key::Name, false);
        assert_eq!(l.aria, None);
        assert_eq!(l.href, "/promotions/P?sort=average&dir=desc");
        let l = sort_link(
            "/promotions/P",
            &Key::Subject("A B".into()),
            &Key::Rank,
            false,
        );
        assert_eq!(l.href, "/promotions/P?sort=subject%3AA%20B&dir=desc");
        let l = sort_link("/promotions/P", &Key::Rank, &Key::Name, false);
        assert_eq!(l.href, "/promotions/P?sort=rank");
    }
}
