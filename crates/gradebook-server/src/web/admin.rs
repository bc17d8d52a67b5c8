//! An admin's pages: accounts (`user.*`), who may manage which promotion
//! (`promotion.grant` and `promotion.revoke`), and the audit log
//! (`audit.list`, `audit.verify`).
//!
//! Every action runs the protocol's own command as the signed-in admin
//! ([`super::call`]): permissions, validation (a weak password, a taken
//! name, a student record that does not exist) and every message come from
//! the command path. A refused command shows the error page with the
//! protocol's code; a failed one shows its message beside the form, and
//! nothing changed. These pages are the admin's by nature, so they also
//! turn other roles away up front (a teacher's `audit.list` of a promotion
//! of theirs would otherwise succeed here: the teacher's pages are for
//! that).
//!
//! Everything works without JavaScript: deleting an account asks again on
//! a page of its own, and a success redirects to the page (post, redirect,
//! get) with a short notice naming what changed.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use gradebook_core::Role;
use gradebook_proto::command::{
    AuditListArgs, GrantArgs, NoArgs, UserCreateArgs, UserPasswordArgs, UsernameArgs, call,
};
use gradebook_proto::{ErrorCode, Secret, WireError, data};
use serde::Deserialize;

use super::i18n::Lang;
use super::page::{self, Chrome, Page, Refused};
use super::session::Viewer;
use super::{Web, call};

/// The admin's routes.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{username}/delete", post(delete_user))
        .route("/admin/users/{username}/password", post(set_password))
        .route("/admin/grants", get(grants).post(change_grant))
        .route("/admin/audit", get(audit))
        .route("/admin/audit/verify", post(verify))
}

// ---- what the pages share ----

/// The error page for a failed command (used when a page cannot be shown
/// at all).
fn refused(viewer: &Viewer, e: &WireError) -> Refused {
    page::error_page(viewer.lang, Some(viewer), e).into()
}

/// A form's failed command: its message goes beside the form, except a
/// refusal (the role may not), which is the error page. (A wrong current
/// password is `unauthenticated` and belongs beside its form; a session
/// that ended meanwhile fails the page's own listing next.)
fn inline(viewer: &Viewer, e: WireError) -> Result<WireError, Refused> {
    match e.code {
        ErrorCode::Forbidden => Err(refused(viewer, &e)),
        _ => Ok(e),
    }
}

/// Only an admin goes further.
fn admin_only(viewer: &Viewer) -> Result<(), Refused> {
    viewer.require(&[Role::Admin])
}

/// An optional id typed in a form: empty is none; anything else must be a
/// whole number, or the protocol's own kind of error for an ill-typed
/// argument.
fn optional_number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, WireError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        WireError::bad_request(format!(
            "{field}: '{}' is not a whole number",
            text.escape_debug()
        ))
    })
}

/// A page rendered with `status`.
fn with_status<T: Template>(status: StatusCode, page: &T) -> Response {
    (status, page::render(page)).into_response()
}

/// After a change: back to `path` (a GET), with a one-time notice
/// (`admin.flash.WHAT`) naming what changed.
fn done(web: &Web, path: &str, what: &'static str, values: &[(&str, &str)]) -> Response {
    page::redirect_with_flash(web.secure, path, what, values)
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

// ---- accounts ----

/// One account in the table.
#[derive(Debug)]
struct UserRow {
    name: String,
    /// The name as a path segment, for the row's forms.
    path: String,
    /// The role, in the page's language.
    role: &'static str,
    student: Option<i64>,
    /// The signed-in admin's own account (changing its password needs the
    /// current one).
    own: bool,
}

/// A choice of the role select.
#[derive(Debug)]
struct RoleOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// What the create form had when it failed (never the password).
#[derive(Debug, Default)]
struct Draft {
    username: String,
    role: String,
    student: String,
}

/// A failed action on one account.
#[derive(Debug)]
struct RowError {
    username: String,
    message: String,
}

/// What the accounts page shows beyond the list.
#[derive(Debug, Default)]
struct UsersView {
    notice: Option<String>,
    create_error: Option<String>,
    draft: Draft,
    row_error: Option<RowError>,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    roles: Vec<RoleOption>,
    view: UsersView,
}

#[derive(Template)]
#[template(path = "admin_user_delete.html")]
struct DeletePage {
    chrome: Chrome,
    username: String,
    path: String,
}

/// A role's name in `lang`.
fn role_label(lang: Lang, role: Role) -> &'static str {
    lang.t(match role {
        Role::Admin => "admin.role.admin",
        Role::Teacher => "admin.role.teacher",
        Role::Student => "admin.role.student",
    })
}

/// The accounts page from `user.list`, with `view`'s notice or errors.
async fn users_page(web: &Web, viewer: &Viewer, view: UsersView, status: StatusCode) -> Page {
    let list = call(web, &viewer.token, viewer.peer, call::UserList(NoArgs {}))
        .await
        .map_err(|e| refused(viewer, &e))?;
    let lang = viewer.lang;
    let users = list
        .users
        .into_iter()
        .map(|u| UserRow {
            path: page::segment(&u.username),
            role: role_label(lang, u.role),
            student: u.student,
            own: u.username == viewer.who.username,
            name: u.username,
        })
        .collect();
    // A teacher first: the likeliest, and never an admin by mistake.
    let chosen = if view.draft.role.is_empty() {
        Role::Teacher.as_str()
    } else {
        view.draft.role.as_str()
    };
    let roles = [Role::Teacher, Role::Student, Role::Admin]
        .into_iter()
        .map(|r| RoleOption {
            value: r.as_str(),
            label: role_label(lang, r),
            selected: r.as_str() == chosen,
        })
        .collect();
    Ok(with_status(
        status,
        &UsersPage {
            chrome: viewer.chrome("/admin/users"),
            users,
            roles,
            view,
        },
    ))
}

/// `GET /admin/users`: every account (`user.list`) and the forms.
async fn users(State(web): State<Arc<Web>>, viewer: Viewer, headers: HeaderMap) -> Page {
    admin_only(&viewer)?;
    let view = UsersView {
        notice: page::flash(&headers, viewer.lang),
        ..UsersView::default()
    };
    let shown = users_page(&web, &viewer, view, StatusCode::OK).await?;
    Ok(page::shown(web.secure, &headers, StatusCode::OK, shown))
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    student: String,
    csrf: Option<String>,
}

/// `POST /admin/users`: `user.create`.
async fn create_user(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Page {
    admin_only(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let draft = Draft {
        username: form.username.clone(),
        role: form.role.clone(),
        student: form.student.clone(),
    };
    let created = match optional_number("student", &form.student) {
        Ok(student) => {
            let args = UserCreateArgs {
                username: form.username,
                password: Secret::new(form.password),
                role: form.role,
                student,
            };
            call(&web, &viewer.token, viewer.peer, call::UserCreate(args)).await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(user) => Ok(done(
            &web,
            "/admin/users",
            "admin.flash.created",
            &[("user", &user.username)],
        )),
        Err(e) => {
            let e = inline(&viewer, e)?;
            let view = UsersView {
                create_error: Some(e.message),
                draft,
                ..UsersView::default()
            };
            users_page(&web, &viewer, view, page::status_of(e.code)).await
        }
    }
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf: Option<String>,
    /// `yes` once confirmed.
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/users/{username}/delete`: first a page that asks again,
/// then, with `confirm=yes`, `user.delete`.
async fn delete_user(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(username): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DeleteForm>,
) -> Page {
    admin_only(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    if form.confirm != "yes" {
        return Ok(page::render(&DeletePage {
            chrome: viewer.chrome("/admin/users"),
            path: page::segment(&username),
            username,
        }));
    }
    let args = UsernameArgs {
        username: username.clone(),
    };
    match call(&web, &viewer.token, viewer.peer, call::UserDelete(args)).await {
        Ok(_) => Ok(done(
            &web,
            "/admin/users",
            "admin.flash.deleted",
            &[("user", &username)],
        )),
        Err(e) => row_refused(&web, &viewer, username, e).await,
    }
}

/// The accounts page again, with a command's refusal beside the row of
/// `username` (a forbidden one is the error page).
async fn row_refused(web: &Web, viewer: &Viewer, username: String, e: WireError) -> Page {
    let e = inline(viewer, e)?;
    let view = UsersView {
        row_error: Some(RowError {
            username,
            message: e.message,
        }),
        ..UsersView::default()
    };
    users_page(web, viewer, view, page::status_of(e.code)).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
    /// The current password, for one's own account.
    #[serde(default)]
    old: String,
    csrf: Option<String>,
}

/// `POST /admin/users/{username}/password`: `user.password` with
/// `username`; the account's sessions end.
async fn set_password(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Path(username): Path<String>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Page {
    admin_only(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let own = username == viewer.who.username;
    let args = UserPasswordArgs {
        new: Secret::new(form.password),
        old: (!form.old.is_empty()).then(|| Secret::new(form.old)),
        username: Some(username.clone()),
    };
    match call(&web, &viewer.token, viewer.peer, call::UserPassword(args)).await {
        // One's own sessions ended too, this one included: the page sends
        // to the login form.
        Ok(_) if own => Ok(Redirect::to("/admin/users").into_response()),
        Ok(_) => Ok(done(
            &web,
            "/admin/users",
            "admin.flash.password",
            &[("user", &username)],
        )),
        Err(e) => row_refused(&web, &viewer, username, e).await,
    }
}

// ---- grants ----

/// A teacher in a promotion's select.
#[derive(Debug)]
struct TeacherOption {
    name: String,
    selected: bool,
}

/// One promotion with its grant form.
#[derive(Debug)]
struct GrantRow {
    name: String,
    year: String,
    students: u64,
    teachers: Vec<TeacherOption>,
}

#[derive(Template)]
#[template(path = "admin_grants.html")]
struct GrantsPage {
    chrome: Chrome,
    promotions: Vec<GrantRow>,
    /// Whether there is any teacher account to grant to.
    any_teacher: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// The grants page: the promotions (`promotion.list`) and the teachers
/// (`user.list`). After a failure, `error` holds the protocol's error with
/// the promotion and username of the form, whose choice is kept.
async fn grants_page(
    web: &Web,
    viewer: &Viewer,
    notice: Option<String>,
    error: Option<(WireError, String, String)>,
) -> Page {
    let promotions = call(
        web,
        &viewer.token,
        viewer.peer,
        call::PromotionList(NoArgs {}),
    )
    .await
    .map_err(|e| refused(viewer, &e))?;
    let users = call(web, &viewer.token, viewer.peer, call::UserList(NoArgs {}))
        .await
        .map_err(|e| refused(viewer, &e))?;
    let teachers: Vec<String> = users
        .users
        .into_iter()
        .filter(|u| u.role == Role::Teacher)
        .map(|u| u.username)
        .collect();
    let (status, message, draft) = match error {
        Some((e, promotion, username)) => (
            page::status_of(e.code),
            Some(e.message),
            Some((promotion, username)),
        ),
        None => (StatusCode::OK, None, None),
    };
    let rows = promotions
        .promotions
        .into_iter()
        .map(|p| {
            let chosen = draft
                .as_ref()
                .filter(|(promotion, _)| *promotion == p.name)
                .map(|(_, username)| username.as_str());
            GrantRow {
                year: p.year.map_or_else(|| "–".to_owned(), |y| y.to_string()),
                students: p.students,
                teachers: teachers
                    .iter()
                    .map(|t| TeacherOption {
                        name: t.clone(),
                        selected: chosen == Some(t.as_str()),
                    })
                    .collect(),
                name: p.name,
            }
        })
        .collect();
    Ok(with_status(
        status,
        &GrantsPage {
            chrome: viewer.chrome("/admin/grants"),
            promotions: rows,
            any_teacher: !teachers.is_empty(),
            notice,
            error: message,
        },
    ))
}

/// `GET /admin/grants`.
async fn grants(State(web): State<Arc<Web>>, viewer: Viewer, headers: HeaderMap) -> Page {
    admin_only(&viewer)?;
    let notice = page::flash(&headers, viewer.lang);
    let shown = grants_page(&web, &viewer, notice, None).await?;
    Ok(page::shown(web.secure, &headers, StatusCode::OK, shown))
}

#[derive(Deserialize)]
struct GrantForm {
    #[serde(default)]
    promotion: String,
    #[serde(default)]
    username: String,
    /// `grant` or `revoke`.
    #[serde(default)]
    action: String,
    csrf: Option<String>,
}

/// `POST /admin/grants`: `promotion.grant` or `promotion.revoke`.
async fn change_grant(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<GrantForm>,
) -> Page {
    admin_only(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let args = GrantArgs {
        name: form.promotion.clone(),
        username: form.username.clone(),
    };
    let (token, peer) = (&viewer.token, viewer.peer);
    let changed = match form.action.as_str() {
        "grant" => call(&web, token, peer, call::PromotionGrant(args))
            .await
            .map(|_| "admin.flash.granted"),
        "revoke" => call(&web, token, peer, call::PromotionRevoke(args))
            .await
            .map(|_| "admin.flash.revoked"),
        other => Err(WireError::bad_request(format!(
            "action: '{}' is neither grant nor revoke",
            other.escape_debug()
        ))),
    };
    match changed {
        Ok(what) => Ok(done(
            &web,
            "/admin/grants",
            what,
            &[("user", &form.username), ("promotion", &form.promotion)],
        )),
        Err(e) => {
            let e = inline(&viewer, e)?;
            let error = (e, form.promotion, form.username);
            grants_page(&web, &viewer, None, Some(error)).await
        }
    }
}

// ---- the audit log ----

/// The audit page's filters, as typed (kept in the form).
#[derive(Debug, Default, Deserialize)]
struct AuditFilter {
    #[serde(default)]
    promotion: String,
    #[serde(default)]
    student: String,
    #[serde(default)]
    limit: String,
}

/// A promotion of the filter's select.
#[derive(Debug)]
struct PromotionOption {
    name: String,
    selected: bool,
}

/// One entry of the log as the table shows it.
#[derive(Debug)]
struct AuditRow {
    seq: i64,
    /// ISO 8601, for `<time datetime>`.
    iso: String,
    /// `2026-11-25 13:05:09 UTC`.
    at: String,
    by: String,
    action: String,
    /// Which grade of which student.
    entity: String,
    /// Old → new, in words.
    change: String,
}

/// What `audit.verify` found, in words.
#[derive(Debug)]
struct ChainStatus {
    intact: bool,
    text: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    chrome: Chrome,
    promotions: Vec<PromotionOption>,
    filter: AuditFilter,
    rows: Vec<AuditRow>,
    error: Option<String>,
    chain: Option<ChainStatus>,
}

/// `2026-11-25T13:05:09Z` as `2026-11-25 13:05:09 UTC`; anything else as
/// it is.
fn readable_utc(at: &str) -> String {
    at.strip_suffix('Z')
        .and_then(|s| s.split_once('T'))
        .map_or_else(|| at.to_owned(), |(day, time)| format!("{day} {time} UTC"))
}

/// A number as the page's language writes decimals.
fn decimal(lang: Lang, text: String) -> String {
    match lang {
        Lang::En => text,
        Lang::Fr => text.replace('.', ","),
    }
}

/// A grade in a few words: `Maths 14.5 ×2 (Midterm)`.
fn grade_text(lang: Lang, g: &data::Grade) -> String {
    let mut text = format!(
        "{} {} ×{}",
        g.subject,
        decimal(lang, g.value.to_string()),
        decimal(lang, g.coefficient.to_string())
    );
    if let Some(label) = &g.label {
        text.push_str(&format!(" ({label})"));
    }
    text
}

/// What an entry changed: the whole grade for an add or a delete, the
/// fields that differ for an update.
fn change_text(lang: Lang, old: Option<&data::Grade>, new: Option<&data::Grade>) -> String {
    match (old, new) {
        (None, Some(n)) => format!("– → {}", grade_text(lang, n)),
        (Some(o), None) => format!("{} → –", grade_text(lang, o)),
        (None, None) => "–".to_owned(),
        (Some(o), Some(n)) => {
            let yes_no = |b: bool| {
                lang.t(if b {
                    "admin.audit.yes"
                } else {
                    "admin.audit.no"
                })
            };
            let mut parts = Vec::new();
            let mut differs = |key: &str, a: String, b: String| {
                if a != b {
                    parts.push(format!("{} {a} → {b}", lang.t(key)));
                }
            };
            differs("admin.audit.subject", o.subject.clone(), n.subject.clone());
            differs(
                "admin.audit.value",
                decimal(lang, o.value.to_string()),
                decimal(lang, n.value.to_string()),
            );
            differs(
                "admin.audit.coefficient",
                decimal(lang, o.coefficient.to_string()),
                decimal(lang, n.coefficient.to_string()),
            );
            differs(
                "admin.audit.label",
                o.label.clone().unwrap_or_else(|| "–".into()),
                n.label.clone().unwrap_or_else(|| "–".into()),
            );
            differs(
                "admin.audit.published",
                yes_no(o.published).to_owned(),
                yes_no(n.published).to_owned(),
            );
            if parts.is_empty() {
                grade_text(lang, n)
            } else {
                format!("{}: {}", n.subject, parts.join("; "))
            }
        }
    }
}

/// The result of `audit.verify` in the page's language.
fn chain_status(lang: Lang, report: &data::AuditVerify) -> ChainStatus {
    let entries = report.entries.to_string();
    let last = report.last_seq.to_string();
    let text = match &report.problem {
        None if report.intact => page::fill(
            lang.t("admin.chain.intact"),
            &[
                ("entries", &entries),
                ("seq", &last),
                ("head", &report.head),
            ],
        ),
        problem => {
            let (seq, reason) = problem
                .as_ref()
                .map_or((String::from("?"), ""), |p| (p.seq.to_string(), &p.reason));
            page::fill(
                lang.t("admin.chain.broken"),
                &[
                    ("seq", &seq),
                    ("reason", reason),
                    ("entries", &entries),
                    ("last", &last),
                ],
            )
        }
    };
    ChainStatus {
        intact: report.intact,
        text,
    }
}

/// The audit page: `audit.list` with `filter`, and the chain's status if
/// it was just checked.
async fn audit_page(
    web: &Web,
    viewer: &Viewer,
    filter: AuditFilter,
    chain: Option<ChainStatus>,
    mut error: Option<WireError>,
) -> Page {
    let lang = viewer.lang;
    let promotions = call(
        web,
        &viewer.token,
        viewer.peer,
        call::PromotionList(NoArgs {}),
    )
    .await
    .map_err(|e| refused(viewer, &e))?;
    let args = optional_number("student", &filter.student).and_then(|student| {
        Ok(AuditListArgs {
            promotion: Some(filter.promotion.trim().to_owned()).filter(|p| !p.is_empty()),
            student,
            limit: optional_number("limit", &filter.limit)?,
        })
    });
    let listed = match args {
        Ok(args) => call(web, &viewer.token, viewer.peer, call::AuditList(args)).await,
        Err(e) => Err(e),
    };
    let rows = match listed {
        Ok(list) => list
            .entries
            .into_iter()
            .map(|e| AuditRow {
                seq: e.id,
                at: readable_utc(&e.at),
                iso: e.at,
                by: e.by,
                entity: page::fill(
                    lang.t("admin.audit.entity"),
                    &[
                        ("grade", &e.grade.to_string()),
                        ("student", &e.student.to_string()),
                    ],
                ),
                change: change_text(lang, e.old.as_ref(), e.new.as_ref()),
                action: e.action,
            })
            .collect(),
        Err(e) => {
            error = Some(inline(viewer, e)?);
            Vec::new()
        }
    };
    let status = error
        .as_ref()
        .map_or(StatusCode::OK, |e| page::status_of(e.code));
    let promotions = promotions
        .promotions
        .into_iter()
        .map(|p| PromotionOption {
            selected: p.name == filter.promotion.trim(),
            name: p.name,
        })
        .collect();
    Ok(with_status(
        status,
        &AuditPage {
            chrome: viewer.chrome("/admin/audit"),
            promotions,
            filter,
            rows,
            error: error.map(|e| e.message),
            chain,
        },
    ))
}

/// `GET /admin/audit?promotion=&student=&limit=`: `audit.list`.
async fn audit(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    Query(filter): Query<AuditFilter>,
) -> Page {
    admin_only(&viewer)?;
    audit_page(&web, &viewer, filter, None, None).await
}

/// `POST /admin/audit/verify`: `audit.verify`, shown on the audit page.
async fn verify(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    admin_only(&viewer)?;
    viewer.check_csrf(&headers, form.csrf.as_deref())?;
    let (chain, error) = match call(
        &web,
        &viewer.token,
        viewer.peer,
        call::AuditVerify(NoArgs {}),
    )
    .await
    {
        Ok(report) => (Some(chain_status(viewer.lang, &report)), None),
        Err(e) => (None, Some(inline(&viewer, e)?)),
    };
    audit_page(&web, &viewer, AuditFilter::default(), chain, error).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(
            readable_utc("2026-11-25T13:05:09Z"),
            "2026-11-25 13:05:09 UTC"
        );
        assert_eq!(readable_utc("yesterday"), "yesterday");
    }

    #[test]
    fn typed_numbers_are_whole_or_nothing() {
        assert_eq!(optional_number::<i64>("student", " "), Ok(None));
        assert_eq!(optional_number::<i64>("student", "12"), Ok(Some(12)));
        let e = optional_number::<u32>("limit", "ten").expect_err("not a number");
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn an_update_names_what_changed() {
        let grade: data::Grade = serde_json::from_value(serde_json::json!({
            "id": 1, "student": 2, "subject": "Maths", "value": 12.5,
            "coefficient": 2, "label": "Midterm", "published": true
        }))
        .expect("a grade");
        let mut after = grade.clone();
        after.value = serde_json::from_value(serde_json::json!(14)).expect("a value");
        let text = change_text(Lang::En, Some(&grade), Some(&after));
        assert!(text.contains("12.5 → 14"), "{text}");
        assert!(!text.contains("Midterm"), "{text}");
        let added = change_text(Lang::Fr, None, Some(&grade));
        assert!(added.contains("Maths 12,5 ×2 (Midterm)"), "{added}");
    }
}
