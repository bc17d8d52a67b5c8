//! A teacher's pages (and an admin's, who manages every promotion): the
//! promotions they may see, each promotion's table, the grade-entry grid,
//! publication, locking, imports and exports.
//!
//! Every figure and every refusal comes from the protocol's commands run as
//! the signed-in user ([`super::call`]): which promotions a teacher sees is
//! `promotion.list`'s answer, a grade out of range is `grade.add`'s
//! `invalid_value`, a locked promotion is the store's `locked`. These pages
//! only gather replies, sort them for display and write them out.
//!
//! - this file: `/promotions` (the list and the create form), and what the
//!   other pages share (paths, flash messages, the role check);
//! - [`promotion`]: `/promotions/{name}`, its table and its actions;
//! - [`grid`]: `/promotions/{name}/grid`, one column of grades at a time;
//! - [`transfer`]: `/promotions/{name}/import` and `/export.csv`.

mod grid;
mod promotion;
mod transfer;

use std::sync::Arc;

use askama::Template;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use gradebook_core::Role;
use gradebook_proto::command::{NoArgs, PromotionCreateArgs, call};
use gradebook_proto::{WireError, data};
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{self, Chrome, Page, Refused};
use super::session::Viewer;
use super::{Web, call};

/// Room for the multipart framing and the import form's other fields
/// beyond the file itself.
const UPLOAD_OVERHEAD: usize = 64 * 1024;

/// The teacher's routes. An upload is bounded by the server's
/// `max_import_bytes`, the most an import may hold.
pub fn routes(web: &Web) -> Router<Arc<Web>> {
    let upload = web
        .state
        .limits
        .max_import_bytes
        .saturating_add(UPLOAD_OVERHEAD);
    Router::new()
        .route("/promotions", get(list).post(create))
        .route("/promotions/{name}", get(promotion::show))
        .route("/promotions/{name}/publish", post(promotion::publish))
        .route("/promotions/{name}/unpublish", post(promotion::unpublish))
        .route("/promotions/{name}/lock", post(promotion::lock))
        .route("/promotions/{name}/unlock", post(promotion::unlock))
        .route("/promotions/{name}/students", post(promotion::add_student))
        .route("/promotions/{name}/grid", get(grid::show).post(grid::save))
        .route(
            "/promotions/{name}/import",
            get(transfer::import_form)
                .post(transfer::import)
                .layer(DefaultBodyLimit::max(upload)),
        )
        .route("/promotions/{name}/export.csv", get(transfer::export))
}

/// Teachers' and admins' pages; a student gets `forbidden`.
fn guard(viewer: &Viewer) -> Result<(), Refused> {
    viewer.require(&[Role::Teacher, Role::Admin])
}

/// The page of promotion `name`.
fn promotion_path(name: &str) -> String {
    format!("/promotions/{}", page::segment(name))
}

/// The path and query a page was asked with, for the language switch to
/// come back to.
fn here(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

/// An optional text field: empty or blank means absent.
fn given(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// A refusal as a page shows it inline: the protocol's code and message.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The stable code (`invalid_value`, `locked`…).
    pub code: &'static str,
    /// The protocol's message.
    pub message: String,
}

impl From<&WireError> for Problem {
    fn from(e: &WireError) -> Self {
        Problem {
            code: e.code.as_str(),
            message: e.message.clone(),
        }
    }
}

/// A form field the protocol cannot carry as typed (a year that is not a
/// whole number): refused here, in the page's language.
fn form_problem(lang: Lang, key: &str) -> WireError {
    WireError::bad_request(lang.t(key))
}

/// A redirect (303) to `to` that leaves that page the message `key`
/// (`teacher.flash.…`), where `{n}` becomes `n`.
fn redirect_with_flash(web: &Web, to: &str, key: &'static str, n: Option<u64>) -> Response {
    let n = n.map(|n| n.to_string());
    let values: Vec<(&str, &str)> = n.iter().map(|n| ("n", n.as_str())).collect();
    page::redirect_with_flash(web.secure, to, key, &values)
}

/// The message a form left for this page, in its language.
fn flash(headers: &HeaderMap, lang: Lang) -> Option<String> {
    page::flash(headers, lang)
}

/// A page, with the flash message it showed deleted.
fn shown(web: &Web, headers: &HeaderMap, status: StatusCode, body: Response) -> Response {
    page::shown(web.secure, headers, status, body)
}

/// One promotion in the list.
#[derive(Debug)]
struct ListedPromotion {
    name: String,
    href: String,
    year: String,
    students: u64,
    manual: bool,
    locked: bool,
}

/// What the create form holds (kept when it is refused).
#[derive(Debug, Default, Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    year: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    publication: String,
    csrf: Option<String>,
}

#[derive(Template)]
#[template(path = "teacher_promotions.html")]
struct ListPage {
    chrome: Chrome,
    flash: Option<String>,
    promotions: Vec<ListedPromotion>,
    error: Option<Problem>,
    form: CreateForm,
}

impl ListPage {
    fn manual_selected(&self) -> bool {
        self.form.publication == "manual"
    }
}

/// The list page, with the create form's refusal if any.
async fn list_page(
    web: &Web,
    viewer: &Viewer,
    headers: &HeaderMap,
    here: &str,
    form: CreateForm,
    error: Option<&WireError>,
) -> Page {
    let listed = call(
        web,
        &viewer.token,
        viewer.peer,
        call::PromotionList(NoArgs {}),
    )
    .await
    .map_err(|e| page::error_page(viewer.lang, Some(viewer), &e))?;
    let promotions = listed
        .promotions
        .into_iter()
        .map(|p: data::Promotion| ListedPromotion {
            href: promotion_path(&p.name),
            year: p.year.map(|y| y.to_string()).unwrap_or_default(),
            students: p.students,
            manual: !p.publication.publishes_new_grades(),
            locked: p.locked,
            name: p.name,
        })
        .collect();
    let status = error.map_or(StatusCode::OK, |e| page::status_of(e.code));
    let body = page::render(&ListPage {
        chrome: viewer.chrome(here),
        flash: flash(headers, viewer.lang),
        promotions,
        error: error.map(Problem::from),
        form,
    });
    Ok(shown(web, headers, status, body))
}

/// `GET /promotions`: the promotions the user may see, and a form to
/// create one.
async fn list(State(web): State<Arc<Web>>, viewer: Viewer, headers: HeaderMap, uri: Uri) -> Page {
    guard(&viewer)?;
    let form = CreateForm {
        publication: "immediate".into(),
        ..CreateForm::default()
    };
    list_page(&web, &viewer, &headers, &here(&uri), form, None).await
}

/// `POST /promotions`: `promotion.create`, then the new promotion's page.
async fn create(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Page {
    guard(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let year = match form.year.trim() {
        "" => Ok(None),
        y => y
            .parse::<i64>()
            .map(Some)
            .map_err(|_| form_problem(viewer.lang, "teacher.year_not_a_number")),
    };
    let result = match year {
        Ok(year) => {
            let args = PromotionCreateArgs {
                name: form.name.clone(),
                year,
                description: given(&form.description),
                publication: given(&form.publication),
            };
            call(
                &web,
                &viewer.token,
                viewer.peer,
                call::PromotionCreate(args),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => Ok(redirect_with_flash(
            &web,
            &promotion_path(&p.name),
            "teacher.flash.created",
            None,
        )),
        Err(e) => list_page(&web, &viewer, &headers, "/promotions", form, Some(&e)).await,
    }
}

/// The error page for a refused read (`promotion.show` of a promotion the
/// teacher does not manage: the protocol's `forbidden`).
fn refused(viewer: &Viewer, e: &WireError) -> Refused {
    page::error_page(viewer.lang, Some(viewer), e).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_names_are_one_segment_of_a_path() {
        assert_eq!(promotion_path("R&T 1/2"), "/promotions/R%26T%201%2F2");
        assert_eq!(promotion_path("Réseaux"), "/promotions/R%C3%A9seaux");
    }

    #[test]
    fn blank_fields_are_absent() {
        assert_eq!(given("  "), None);
        assert_eq!(given(" TP "), Some("TP".to_owned()));
    }
}
