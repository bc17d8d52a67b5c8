//! What every page shares: the layout's data ([`Chrome`]), rendering, the
//! error page, and how numbers are written in each language.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use gradebook_core::Role;
use gradebook_proto::{ErrorCode, WireError};

use super::i18n::Lang;
use super::session::Viewer;

/// One link of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Where it goes.
    pub href: &'static str,
    /// Its text's key.
    pub key: &'static str,
    /// Whether it is the current page's section.
    pub current: bool,
}

/// What the layout (`base.html`) shows around every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's language.
    pub lang: Lang,
    /// The page's path, for the language switch to come back to.
    pub path: String,
    /// The signed-in user's name.
    pub username: Option<String>,
    /// The CSRF token for the page's forms (empty when signed out).
    pub csrf: String,
    /// The navigation links for the user's role.
    pub nav: Vec<NavLink>,
}

impl Chrome {
    /// The layout of a page for a signed-in user.
    pub fn signed_in(viewer: &Viewer, path: &str) -> Chrome {
        let links: &[(&str, &str)] = match viewer.who.role {
            Role::Student => &[("/me", "nav.my_grades")],
            Role::Teacher => &[("/promotions", "nav.promotions")],
            Role::Admin => &[
                ("/promotions", "nav.promotions"),
                ("/admin/users", "nav.users"),
                ("/admin/grants", "nav.grants"),
                ("/admin/audit", "nav.audit"),
            ],
        };
        Chrome {
            lang: viewer.lang,
            path: path.to_owned(),
            username: Some(viewer.who.username.clone()),
            csrf: viewer.csrf.clone(),
            nav: links
                .iter()
                .map(|(href, key)| NavLink {
                    href,
                    key,
                    current: path == *href || path.starts_with(&format!("{href}/")),
                })
                .collect(),
        }
    }

    /// The layout of a page for someone not signed in.
    pub fn anonymous(lang: Lang, path: &str) -> Chrome {
        Chrome {
            lang,
            path: path.to_owned(),
            username: None,
            csrf: String::new(),
            nav: Vec::new(),
        }
    }

    /// The text `key` in the page's language.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// The language switch's link.
    pub fn switch_href(&self) -> String {
        format!(
            "/lang?to={}&back={}",
            self.lang.other().code(),
            encode(&self.path)
        )
    }
}

/// `value` with two decimals in `lang`, or a dash.
pub fn number(lang: Lang, value: Option<f64>) -> String {
    match value {
        None => "–".to_owned(),
        Some(v) => {
            let text = format!("{v:.2}");
            match lang {
                Lang::En => text,
                Lang::Fr => text.replace('.', ","),
            }
        }
    }
}

/// A response that ends a handler early (a refusal, a redirect to log in):
/// boxed, so that `Result<_, Refused>` stays small, and `?` works in
/// handlers that return a [`Page`].
#[derive(Debug)]
pub struct Refused(pub Box<Response>);

impl From<Response> for Refused {
    fn from(r: Response) -> Self {
        Refused(Box::new(r))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// What a page handler returns: its page, or the response that refused it.
pub type Page = Result<Response, Refused>;

/// A page rendered, or the error page if the template fails (logged).
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "web: a template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The HTTP status of a protocol error.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::UnknownCommand => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::InsecureTransport => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict | ErrorCode::Locked => StatusCode::CONFLICT,
        ErrorCode::InvalidValue => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::FrameTooLarge | ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    code: &'a str,
    message: &'a str,
}

/// The page for a refused or failed action: the protocol's code and
/// message (which never hold internals), with the matching HTTP status.
pub fn error_page(lang: Lang, viewer: Option<&Viewer>, e: &WireError) -> Response {
    let chrome = match viewer {
        Some(v) => Chrome::signed_in(v, ""),
        None => Chrome::anonymous(lang, "/"),
    };
    let page = ErrorPage {
        chrome,
        code: e.code.as_str(),
        message: &e.message,
    };
    (status_of(e.code), render(&page)).into_response()
}

/// A state-changing request without the right CSRF token.
pub fn csrf_refused(lang: Lang) -> Response {
    let e = WireError::new(
        ErrorCode::Forbidden,
        "this form has expired or did not come from this site: reload the page and try again",
    );
    error_page(lang, None, &e)
}

/// Any path the portal does not serve.
pub async fn not_found(headers: axum::http::HeaderMap) -> Response {
    let e = WireError::new(ErrorCode::NotFound, "there is no such page");
    error_page(Lang::of(&headers), None, &e)
}

/// `text` percent-encoded for a query string (a path may keep its `/`).
pub fn encode(text: &str) -> String {
    percent(text, true)
}

/// `text` percent-encoded as one path segment (a name with a `/` stays
/// one segment).
pub fn segment(text: &str) -> String {
    percent(text, false)
}

fn percent(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `text` with its `%XX` escapes decoded (invalid ones kept as they are).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with each `{name}` replaced by its value, in one pass (a value
/// that looks like a placeholder stays as it is).
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
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

/// The cookie that carries a form's one-time message to the page it
/// redirects to.
const FLASH_COOKIE: &str = "gradebook_flash";

/// A redirect (303) to `to` that leaves that page a one-time message: the
/// text `key` (a `….flash.…` key), its `{name}` slots filled with
/// `values`. The message travels in a short-lived cookie, not in the
/// address: a link cannot make a page say something.
pub fn redirect_with_flash(
    secure: bool,
    to: &str,
    key: &'static str,
    values: &[(&str, &str)],
) -> Response {
    let mut value = key.to_owned();
    for (k, v) in values {
        value.push_str(&format!("&{k}={}", segment(v)));
    }
    let mut response = axum::response::Redirect::to(to).into_response();
    response.headers_mut().append(
        axum::http::header::SET_COOKIE,
        super::session::set_cookie(FLASH_COOKIE, &value, 60, secure),
    );
    response
}

/// The one-time message a form left for this page, in its language. Where
/// a value `n` is 1 and the language has a `KEY.one` text, that one.
pub fn flash(headers: &axum::http::HeaderMap, lang: Lang) -> Option<String> {
    let cookie = super::session::cookie(headers, FLASH_COOKIE)?;
    let mut parts = cookie.split('&');
    let key = parts.next()?;
    // Only our own messages, whatever the cookie says.
    if !key.contains(".flash.") {
        return None;
    }
    let values: Vec<(String, String)> = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    let values: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let one = values
        .contains(&("n", "1"))
        .then(|| lang.text(&format!("{key}.one")))
        .flatten();
    let text = one.unwrap_or_else(|| lang.t(key));
    (!text.is_empty()).then(|| fill(text, &values))
}

/// A page with `status`, the one-time message it showed deleted.
pub fn shown(
    secure: bool,
    headers: &axum::http::HeaderMap,
    status: StatusCode,
    body: Response,
) -> Response {
    let mut response = (status, body).into_response();
    if super::session::cookie(headers, FLASH_COOKIE).is_some() {
        response.headers_mut().append(
            axum::http::header::SET_COOKIE,
            super::session::set_cookie(FLASH_COOKIE, "", 0, secure),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_language() {
        assert_eq!(number(Lang::En, Some(14.5)), "14.50");
        assert_eq!(number(Lang::Fr, Some(14.5)), "14,50");
        assert_eq!(number(Lang::Fr, None), "–");
    }

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
    fn names_stay_in_one_path_segment_and_come_back_whole() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("élodie"), "%C3%A9lodie");
        assert_eq!(segment("bob.m-1"), "bob.m-1");
        for text in ["R&T 1/2", "élodie", "100%", "%zz"] {
            assert_eq!(decode(&segment(text)), text);
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("/promotions/R&T 1?x=1"),
            "/promotions/R%26T%201%3Fx%3D1"
        );
    }
}
