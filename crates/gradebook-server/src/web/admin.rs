//! An admin's pages: accounts (`user.*`).
//!
//! Every action runs the protocol's own command as the signed-in admin
//! ([`super::call`]): permissions, validation (a weak password, a taken
//! name, a student record that does not exist) and every message come from
//! the command path. A refused command shows the error page with the
//! protocol's code; a failed one shows its message beside the form, and
//! nothing changed. These pages are the admin's by nature, so they also
//! turn other roles away up front.
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
use gradebook_proto::command::{NoArgs, UserCreateArgs, UserPasswordArgs, UsernameArgs, call};
use gradebook_proto::{ErrorCode, Secret, WireError};
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

/// `text` with each `{name}` replaced by its value, in one pass (a value
/// that looks like a placeholder stays as it is).
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let found = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (close, *v))
        });
        match found {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` as one path segment: everything but unreserved characters
/// percent-encoded (a `/` in a username stays inside its segment).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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

/// After a change: back to `path` (a GET), with a notice in its query.
fn done(path: &str, what: &str, values: &[(&str, &str)]) -> Response {
    let mut to = format!("{path}?done={what}");
    for (k, v) in values {
        to.push_str(&format!("&{k}={}", page::encode(v)));
    }
    Redirect::to(&to).into_response()
}

/// The notice a page shows after a change: `?done=…` names a text (only
/// the admin's own texts, nothing typed in a link is shown as is), the
/// other fields fill it in.
#[derive(Debug, Default, Deserialize)]
struct Notice {
    done: Option<String>,
    user: Option<String>,
    promotion: Option<String>,
}

impl Notice {
    fn text(&self, lang: Lang) -> Option<String> {
        let key = match self.done.as_deref()? {
            "created" => "admin.done.created",
            "deleted" => "admin.done.deleted",
            "password" => "admin.done.password",
            _ => return None,
        };
        Some(fill(
            lang.t(key),
            &[
                ("user", self.user.as_deref().unwrap_or_default()),
                ("promotion", self.promotion.as_deref().unwrap_or_default()),
            ],
        ))
    }
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
            path: segment(&u.username),
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
async fn users(State(web): State<Arc<Web>>, viewer: Viewer, Query(notice): Query<Notice>) -> Page {
    admin_only(&viewer)?;
    let view = UsersView {
        notice: notice.text(viewer.lang),
        ..UsersView::default()
    };
    users_page(&web, &viewer, view, StatusCode::OK).await
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
        Ok(user) => Ok(done("/admin/users", "created", &[("user", &user.username)])),
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
            path: segment(&username),
            username,
        }));
    }
    let args = UsernameArgs {
        username: username.clone(),
    };
    match call(&web, &viewer.token, viewer.peer, call::UserDelete(args)).await {
        Ok(_) => Ok(done("/admin/users", "deleted", &[("user", &username)])),
        Err(e) => {
            let e = inline(&viewer, e)?;
            let view = UsersView {
                row_error: Some(RowError {
                    username,
                    message: e.message,
                }),
                ..UsersView::default()
            };
            users_page(&web, &viewer, view, page::status_of(e.code)).await
        }
    }
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
        Ok(_) => Ok(done("/admin/users", "password", &[("user", &username)])),
        Err(e) => {
            let e = inline(&viewer, e)?;
            let view = UsersView {
                row_error: Some(RowError {
                    username,
                    message: e.message,
                }),
                ..UsersView::default()
            };
            users_page(&web, &viewer, view, page::status_of(e.code)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill(
                "{user} may manage {promotion}.",
                &[("user", "{promotion}"), ("promotion", "P")]
            ),
            "{promotion} may manage P."
        );
        assert_eq!(fill("a {b} {c", &[("x", "y")]), "a {b} {c");
    }

    #[test]
    fn usernames_stay_in_one_path_segment() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("élodie"), "%C3%A9lodie");
        assert_eq!(segment("bob.m-1"), "bob.m-1");
    }
}
