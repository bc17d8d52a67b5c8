//! A minimal browser for the web portal's in-process tests: it sends
//! requests straight to the server's router (no socket), keeps cookies as
//! a browser would, and finds a page's CSRF token.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::TestServer;

/// One response, its body read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// Where a redirect goes.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION)?.to_str().ok()
    }

    /// Every `Set-Cookie` line.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The value of the page's first `name="csrf"` field.
    pub fn csrf(&self) -> String {
        field_value(&self.body, "csrf").unwrap_or_else(|| panic!("no csrf field in {}", self.body))
    }

    /// Asserts the status, showing the body if it differs.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Reply {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }
}

/// The `value` of the first input named `name` in `html`.
pub fn field_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    Some(tag[v..].split('"').next()?.to_owned())
}

/// A browser with its own cookies, talking to one server's router.
pub struct Browser {
    router: Router,
    cookies: BTreeMap<String, String>,
    /// Sent as `Accept-Language` when set.
    pub language: Option<&'static str>,
}

impl Browser {
    /// A new browser, with no cookie, for `server`'s portal.
    pub fn new(server: &TestServer) -> Browser {
        Browser {
            router: server.web.clone().expect("the server has a web portal"),
            cookies: BTreeMap::new(),
            language: None,
        }
    }

    /// A browser signed in as `username`.
    pub async fn signed_in(server: &TestServer, username: &str, password: &str) -> Browser {
        let mut b = Browser::new(server);
        let reply = b.login(username, password).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "login: {}", reply.body);
        b
    }

    /// Fills and posts the login form.
    pub async fn login(&mut self, username: &str, password: &str) -> Reply {
        let form = self.get("/login").await.expect(StatusCode::OK);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ],
        )
        .await
    }

    /// A cookie's current value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// The protocol session token the portal's cookie holds.
    pub fn session_token(&self) -> gradebook_proto::Secret {
        gradebook_proto::Secret::new(self.cookie("gradebook_session").expect("signed in"))
    }

    /// Forgets or replaces a cookie by hand.
    pub fn set_cookie(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => self.cookies.insert(name.to_owned(), v.to_owned()),
            None => self.cookies.remove(name),
        };
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut r = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            r = r.header(header::COOKIE, jar.join("; "));
        }
        if let Some(lang) = self.language {
            r = r.header(header::ACCEPT_LANGUAGE, lang);
        }
        r
    }

    /// Sends a request; keeps the cookies it sets.
    pub async fn send(&mut self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        for line in headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                let gone = line.contains("Max-Age=0");
                self.set_cookie(k.trim(), (!gone).then_some(v));
            }
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a whole body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Reply {
        let r = self
            .request("GET", path)
            .body(Body::empty())
            .expect("a request");
        self.send(r).await
    }

    /// `POST path` with a form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let r = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .expect("a request");
        self.send(r).await
    }

    /// Opens `path` as a stream (server-sent events) and returns what
    /// arrives within `wait`, or once `enough` says so.
    pub async fn stream_until(
        &mut self,
        path: &str,
        wait: Duration,
        start: impl std::future::Future<Output = ()>,
        enough: impl Fn(&str) -> bool,
    ) -> (StatusCode, String) {
        let r = self
            .request("GET", path)
            .body(Body::empty())
            .expect("a request");
        let response = self
            .router
            .clone()
            .oneshot(r)
            .await
            .expect("the router answers");
        let status = response.status();
        let mut body = response.into_body();
        start.await;
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + wait;
        while !enough(&seen) {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        seen.push_str(&String::from_utf8_lossy(data));
                    }
                }
                _ => break,
            }
        }
        (status, seen)
    }
}

/// Percent-encodes a form value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
