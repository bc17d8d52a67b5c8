//! Signing in and out of the portal, and who a request comes from.
//!
//! The session cookie holds the protocol's own session token (`auth.login`
//! made it): a logout anywhere, a password or role change, or expiry ends
//! the portal's session too. The cookie is `HttpOnly`, `SameSite=Strict`
//! and, over TLS, `Secure`.
//!
//! Every state-changing request carries a CSRF token in its form (or, for
//! scripts, the `x-csrf-token` header): for a signed-in user, a hash of
//! the session token (it changes with the session, and reveals nothing of
//! it); for the login form, a random value also set in a short-lived
//! cookie (double submit). `SameSite=Strict` alone would stop most
//! cross-site posts; the token stops the rest.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use gradebook_core::Role;
use gradebook_proto::command::{LoginArgs, NoArgs, call};
use gradebook_proto::{ErrorCode, Secret, data};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::i18n::Lang;
use super::page::{self, Chrome, Refused};
use super::{Peer, Web};

/// The session cookie.
pub const SESSION_COOKIE: &str = "gradebook_session";
/// The login form's CSRF cookie.
const LOGIN_COOKIE: &str = "gradebook_login";
/// The header that carries the CSRF token of a script's request.
const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in a request's headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, path `/`,
/// `Secure` over TLS; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    // Names and values here are ours: hex, digits, ASCII.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The CSRF token of a session: its token hashed with a purpose of its own.
pub fn csrf_of(token: &Secret) -> String {
    let mut hash = Sha256::new();
    hash.update(b"gradebook web csrf\0");
    hash.update(token.expose().as_bytes());
    hex::encode(&hash.finalize()[..16])
}

/// Compares two tokens in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The signed-in user of a request: their session token, who they are, the
/// page chrome. Extracting it from a request without a live session
/// redirects to `/login`.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The protocol session token from the cookie.
    pub token: Secret,
    /// Who the session belongs to.
    pub who: data::Whoami,
    /// Where the request came from.
    pub peer: Peer,
    /// The page's language.
    pub lang: Lang,
    /// The CSRF token forms must carry.
    pub csrf: String,
}

impl Viewer {
    /// What every page's layout shows for this user.
    pub fn chrome(&self, path: &str) -> Chrome {
        Chrome::signed_in(self, path)
    }

    /// Whether a state-changing request's form or header carries this
    /// session's CSRF token.
    pub fn check_csrf(&self, headers: &HeaderMap, form_token: Option<&str>) -> Result<(), Refused> {
        let sent = form_token.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
        match sent {
            Some(t) if same(t, &self.csrf) => Ok(()),
            _ => Err(page::csrf_refused(self.lang).into()),
        }
    }

    /// Whether the user has one of `roles`; a page for others is `forbidden`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Refused> {
        if roles.contains(&self.who.role) {
            Ok(())
        } else {
            Err(page::error_page(
                self.lang,
                Some(self),
                &gradebook_proto::WireError::new(
                    ErrorCode::Forbidden,
                    "this page is not for your role",
                ),
            )
            .into())
        }
    }
}

impl FromRequestParts<Arc<Web>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        web: &Arc<Web>,
    ) -> Result<Self, Self::Rejection> {
        let lang = Lang::of(&parts.headers);
        let peer = Peer::of(parts);
        let to_login = || {
            let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            Redirect::to(&format!("/login?next={}", page::encode(next))).into_response()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Err(to_login());
        };
        let token = Secret::new(token);
        match super::call(web, &token, peer, call::Whoami(NoArgs {})).await {
            Ok(who) => Ok(Viewer {
                csrf: csrf_of(&token),
                token,
                who,
                peer,
                lang,
            }),
            // An ended session: back to the login page, the stale cookie
            // deleted.
            Err(e) if e.code == ErrorCode::Unauthenticated => {
                let mut response = to_login();
                response.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, "", 0, web.secure),
                );
                Err(response)
            }
            Err(e) => Err(page::error_page(lang, None, &e)),
        }
    }
}

/// `/login`, `/logout`, `/` and the language switch.
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/lang", get(switch_language))
}

/// `/`: each role's home page.
async fn home(viewer: Viewer) -> Redirect {
    Redirect::to(match viewer.who.role {
        Role::Student => "/me",
        Role::Teacher => "/promotions",
        Role::Admin => "/promotions",
    })
}

#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

/// A path on this site to go back to; anything else (another site, a
/// scheme) becomes `/`.
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/",
    }
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: Chrome,
    csrf: &'a str,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// Renders the login form with a fresh CSRF cookie.
fn login_page(
    lang: Lang,
    secure: bool,
    next: &str,
    username: &str,
    error: Option<&str>,
    status: axum::http::StatusCode,
) -> Response {
    let csrf = match crate::session::new_token() {
        Ok(t) => t.expose()[..32].to_owned(),
        Err(_) => return page::error_page(lang, None, &gradebook_proto::WireError::internal()),
    };
    let body = LoginPage {
        chrome: Chrome::anonymous(lang, "/login"),
        csrf: &csrf,
        next,
        username,
        error,
    };
    let mut response = (status, page::render(&body)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &csrf, 3600, secure),
    );
    response
}

async fn login_form(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    axum::extract::Query(next): axum::extract::Query<Next>,
) -> Response {
    let lang = Lang::of(&headers);
    login_page(
        lang,
        web.secure,
        local_path(next.next.as_deref()),
        "",
        None,
        axum::http::StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

/// Signs in with `auth.login`: the same throttling, the same one message
/// for an unknown user and a wrong password.
async fn login(
    State(web): State<Arc<Web>>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let sent = form.csrf.as_deref().unwrap_or_default();
    if expected.is_empty() || !same(sent, expected) {
        return page::csrf_refused(lang);
    }
    let next = local_path(form.next.as_deref()).to_owned();
    let args = LoginArgs {
        username: form.username.clone(),
        password: Secret::new(form.password),
    };
    let outcome = web.run(None, peer, call::Login(args)).await;
    let reply = outcome
        .result
        .and_then(|data| data.to_value())
        .and_then(|v| {
            serde_json::from_value::<data::Login>(v)
                .map_err(|_| gradebook_proto::WireError::internal())
        });
    match reply {
        Ok(login) => {
            let mut response = Redirect::to(&next).into_response();
            let cookies = response.headers_mut();
            cookies.append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    login.token.expose(),
                    login.expires_in,
                    web.secure,
                ),
            );
            cookies.append(
                header::SET_COOKIE,
                set_cookie(LOGIN_COOKIE, "", 0, web.secure),
            );
            response
        }
        Err(e) => {
            let status = page::status_of(e.code);
            login_page(
                lang,
                web.secure,
                &next,
                &form.username,
                Some(&e.message),
                status,
            )
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// Signs out with `auth.logout`: the session ends everywhere.
async fn logout(
    State(web): State<Arc<Web>>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = viewer.check_csrf(&headers, form.csrf.as_deref()) {
        return refused.into_response();
    }
    // Whatever the reply, the cookie goes.
    let _ = web
        .run(Some(&viewer.token), viewer.peer, call::Logout(NoArgs {}))
        .await;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, web.secure),
    );
    response
}

#[derive(Deserialize)]
struct Switch {
    to: String,
    back: Option<String>,
}

/// `/lang?to=fr&back=/me`: remembers the language in a cookie.
async fn switch_language(
    State(web): State<Arc<Web>>,
    axum::extract::Query(switch): axum::extract::Query<Switch>,
) -> Response {
    let Some(lang) = Lang::parse(&switch.to) else {
        return Redirect::to(local_path(switch.back.as_deref())).into_response();
    };
    let mut response = Redirect::to(local_path(switch.back.as_deref())).into_response();
    let value = set_cookie(
        super::i18n::LANG_COOKIE,
        lang.code(),
        365 * 24 * 3600,
        web.secure,
    );
    response.headers_mut().append(header::SET_COOKIE, value);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; gradebook_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/me")), "/me");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn a_csrf_token_depends_on_the_session() {
        let a = csrf_of(&Secret::new("a"));
        assert_ne!(a, csrf_of(&Secret::new("b")));
        assert!(same(&a, &csrf_of(&Secret::new("a"))));
        assert!(!same(&a, ""));
    }
}
