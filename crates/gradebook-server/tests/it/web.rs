//! The web portal, in process (requests straight to the server's router)
//! and over its real HTTPS listener: signing in and out, CSRF, security
//! headers, a student's page and its live events, languages. The teacher's
//! and admin's pages have their own files (`web_teacher.rs`,
//! `web_admin.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::web::{Browser, field_value};
use crate::common::{ADMIN_PASSWORD, TestServer, ok};

const PASSWORD: &str = "password-of-the-tests";

/// A manual promotion `P` with students Ada (account `ada`) and Bob; Ada
/// has a published 12 in Maths and an unpublished 18.75 in Physics, Bob a
/// published 16 in Maths. Returns Ada's and Bob's ids.
async fn promotion_with_a_hidden_grade(server: &TestServer) -> (i64, i64) {
    let mut admin = server.admin().await;
    ok(
        &mut admin,
        "promotion.create",
        json!({"name": "P", "publication": "manual"}),
    )
    .await;
    let add = |first: &str| json!({"promotion": "P", "first_name": first, "last_name": "Lovelace"});
    let ada = ok(&mut admin, "student.add", add("Ada")).await["id"]
        .as_i64()
        .expect("id");
    let bob = ok(&mut admin, "student.add", add("Bob")).await["id"]
        .as_i64()
        .expect("id");
    ok(
        &mut admin,
        "user.create",
        json!({"username": "ada", "password": PASSWORD, "role": "student", "student": ada}),
    )
    .await;
    let grade = |student: i64, subject: &str, value: f64, label: &str| json!({"student": student, "subject": subject, "value": value, "coefficient": 2, "label": label});
    ok(
        &mut admin,
        "grade.add",
        grade(ada, "Maths", 12.0, "Midterm"),
    )
    .await;
    ok(
        &mut admin,
        "grade.add",
        grade(bob, "Maths", 16.0, "Midterm"),
    )
    .await;
    ok(
        &mut admin,
        "grade.publish",
        json!({"promotion": "P", "subject": "Maths"}),
    )
    .await;
    ok(&mut admin, "grade.add", grade(ada, "Physics", 18.75, "Lab")).await;
    (ada, bob)
}

#[tokio::test]
async fn the_listening_line_announces_the_portal_and_it_answers_over_https() {
    let server = TestServer::start_tls().await;
    let http = server.http.expect("a web portal");
    // Over the real socket, with TLS 1.3 and the server's own certificate.
    let pem = std::fs::read(server.dir.path().join("server-cert.pem")).expect("the certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(http)
        .await
        .expect("connects");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("sent");
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).await.expect("a reply");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("name=\"password\""), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{reply}"
    );

    // Over TLS the session cookie is Secure.
    let mut browser = Browser::new(&server);
    let login = browser
        .login("admin", ADMIN_PASSWORD)
        .await
        .expect(StatusCode::SEE_OTHER);
    let session = login
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("gradebook_session="))
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(session.contains(attribute), "{session} lacks {attribute}");
    }
}

#[tokio::test]
async fn every_page_forbids_inline_scripts_framing_and_sniffing() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    for path in ["/login", "/no/such/page", "/static/app.js"] {
        let reply = browser.get(path).await;
        let h = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = h("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        // Pages hold grades: never cached. Assets may be.
        if !path.starts_with("/static/") {
            assert_eq!(h("cache-control"), "no-store", "{path}");
            assert!(
                !reply.body.contains("<script>"),
                "{path} has an inline script"
            );
        }
    }
    assert_eq!(
        browser.get("/no/such/page").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn assets_are_embedded_and_revalidated_by_etag() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    for (path, kind) in [
        ("/static/app.js", "text/javascript"),
        ("/static/htmx.min.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/static/manifest.webmanifest", "application/manifest+json"),
    ] {
        let reply = browser.get(path).await.expect(StatusCode::OK);
        let etag = reply.headers["etag"].to_str().expect("an etag").to_owned();
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with(kind)
        );
        assert!(
            reply.body.len() > 100,
            "{path} is {} bytes",
            reply.body.len()
        );
        let again = axum::http::Request::get(path)
            .header("if-none-match", &etag)
            .body(axum::body::Body::empty())
            .expect("a request");
        assert_eq!(
            browser.send(again).await.status,
            StatusCode::NOT_MODIFIED,
            "{path}"
        );
    }
    assert_eq!(
        browser.get("/static/nothing.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn signing_in_needs_the_right_password_and_the_form_token() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    // Signed out, a page sends to the login form, remembering where.
    let reply = browser.get("/me").await.expect(StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), Some("/login?next=/me"));

    let wrong = browser.login("admin", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = browser.login("nobody", "not the password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // One message for both, as over the protocol.
    let message = |body: &str| {
        let after = body.split("role=\"alert\"").nth(1)?;
        Some(after.split("</p>").next()?.to_owned())
    };
    assert_eq!(message(&wrong.body), message(&unknown.body));
    assert!(browser.cookie("gradebook_session").is_none());

    // A post without the form's token (or with another one) is refused
    // even with the right password, and makes no session.
    let _ = browser.get("/login").await;
    for csrf in ["", "0123456789abcdef0123456789abcdef"] {
        let reply = browser
            .post(
                "/login",
                &[
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                    ("csrf", csrf),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(browser.cookie("gradebook_session").is_none());
    }

    let ok = browser
        .login("admin", ADMIN_PASSWORD)
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(ok.location(), Some("/"));
    assert!(browser.cookie("gradebook_session").is_some());
    assert_eq!(browser.get("/").await.location(), Some("/promotions"));
}

#[tokio::test]
async fn the_login_form_only_sends_back_to_this_site() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    for (next, kept) in [
        ("/me", "/me"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ] {
        let form = browser
            .get(&format!("/login?next={}", crate::common::web::encode(next)))
            .await;
        assert_eq!(
            field_value(&form.body, "next").as_deref(),
            Some(kept),
            "{next}"
        );
    }
}

#[tokio::test]
async fn logging_out_needs_the_token_and_ends_the_protocol_session_too() {
    let server = TestServer::start().await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let token = browser.session_token();

    // The same token works over TCP: the portal's session is the protocol's.
    let mut tcp = server.connect().await;
    let whoami = tcp
        .call_with_token(&token, "auth.whoami", json!({}))
        .await
        .expect("the portal's token works over TCP");
    assert_eq!(whoami["username"], "admin");

    // No token: refused, still signed in.
    let refused = browser.post("/logout", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/").await.location(), Some("/promotions"));

    let csrf = browser_csrf(&mut browser).await;
    let out = browser
        .post("/logout", &[("csrf", &csrf)])
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/login"));
    assert!(browser.cookie("gradebook_session").is_none());
    let err = tcp
        .call_with_token(&token, "auth.whoami", json!({}))
        .await
        .expect_err("the session ended everywhere");
    assert!(err.to_string().contains("unauthenticated"), "{err}");
}

#[tokio::test]
async fn a_logout_over_the_protocol_signs_the_browser_out() {
    let server = TestServer::start().await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let token = browser.session_token();
    let mut tcp = server.connect().await;
    tcp.call_with_token(&token, "auth.logout", json!({}))
        .await
        .expect("logout over TCP");
    let reply = browser.get("/me").await.expect(StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), Some("/login?next=/me"));
    assert!(
        browser.cookie("gradebook_session").is_none(),
        "the stale cookie is deleted"
    );
}

/// The CSRF token of the signed-in browser's pages.
async fn browser_csrf(browser: &mut Browser) -> String {
    // Any page of a signed-in user has it (its logout form).
    let page = browser.get("/me").await;
    field_value(&page.body, "csrf")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("no csrf token on {}", page.body))
}

#[tokio::test]
async fn a_student_sees_exactly_the_published_grades() {
    let server = TestServer::start().await;
    promotion_with_a_hidden_grade(&server).await;
    let mut ada = Browser::signed_in(&server, "ada", PASSWORD).await;
    assert_eq!(ada.get("/").await.location(), Some("/me"));
    let page = ada.get("/me").await.expect(StatusCode::OK);
    assert!(page.body.contains("Maths"), "{}", page.body);
    // Her grade, written as averages are.
    assert!(
        page.body.contains("<td class=\"num grade\">12.00</td>"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("Physics"),
        "an unpublished subject shows: {}",
        page.body
    );
    assert!(!page.body.contains("18.75"), "an unpublished grade shows");
    // Her average, rank and her promotion's figures count only what she
    // may see: 12 (rank 2 of 2 behind Bob's 16), promotion average 14.
    let live = ada.get("/me/live").await.expect(StatusCode::OK);
    assert!(
        live.body.contains("id=\"my-average\">12.00"),
        "{}",
        live.body
    );
    assert!(live.body.contains("id=\"my-rank\">2 / 2"), "{}", live.body);
    assert!(live.body.contains("14.00"), "{}", live.body);
    // The histogram: Ada's band [12, 13) is hers, Bob's [16, 17) is not.
    assert!(live.body.contains("bar mine"), "{}", live.body);
    assert_eq!(live.body.matches("class=\"bar mine\"").count(), 1);
}

/// What `/events` sends `browser` while `write` runs, until a
/// publication arrives.
async fn until_published(
    browser: &mut Browser,
    write: impl std::future::Future<Output = ()>,
) -> String {
    let (status, events) = browser
        .stream_until("/events", Duration::from_secs(10), write, |seen| {
            seen.contains("event: grade.published")
        })
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(events.contains("event: grade.published"), "{events}");
    events
}

#[tokio::test]
async fn a_publication_reaches_the_students_page_live() {
    let server = TestServer::start().await;
    promotion_with_a_hidden_grade(&server).await;
    let mut ada = Browser::signed_in(&server, "ada", PASSWORD).await;
    let mut admin = server.admin().await;
    let publish = async {
        ok(
            &mut admin,
            "grade.publish",
            json!({"promotion": "P", "subject": "Physics"}),
        )
        .await;
    };
    let events = until_published(&mut ada, publish).await;
    assert!(events.contains("18.75"), "{events}");
    // The part of the page the script fetches again shows it.
    let page = ada.get("/me/live").await.expect(StatusCode::OK);
    assert!(page.body.contains("Physics"), "{}", page.body);
}

#[tokio::test]
async fn a_student_never_receives_another_students_events() {
    let server = TestServer::start().await;
    let (ada_id, bob) = promotion_with_a_hidden_grade(&server).await;
    let mut ada = Browser::signed_in(&server, "ada", PASSWORD).await;
    let mut admin = server.admin().await;
    let write = async {
        // Bob's grade, then Ada's (both unpublished: manual), then both
        // published at once: only her own publication reaches her.
        for (student, value) in [(bob, 9), (ada_id, 11)] {
            ok(
                &mut admin,
                "grade.add",
                json!({"student": student, "subject": "Art", "value": value, "coefficient": 1}),
            )
            .await;
        }
        ok(
            &mut admin,
            "grade.publish",
            json!({"promotion": "P", "subject": "Art"}),
        )
        .await;
    };
    let events = until_published(&mut ada, write).await;
    assert_eq!(events.matches("event: grade").count(), 1, "{events}");
    assert!(
        events.contains(&format!("\"student\":{ada_id}")),
        "{events}"
    );
    assert!(
        !events.contains(&format!("\"student\":{bob}")),
        "Ada got Bob's event: {events}"
    );
}

#[tokio::test]
async fn pages_follow_the_browsers_language_and_the_switch() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    browser.language = Some("fr-FR,fr;q=0.9,en;q=0.5");
    let form = browser.get("/login").await.expect(StatusCode::OK);
    assert!(form.body.contains("<html lang=\"fr\">"), "{}", form.body);
    assert!(form.body.contains("Mot de passe"), "{}", form.body);
    let back = browser
        .get("/lang?to=en&back=/login")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(back.location(), Some("/login"));
    assert_eq!(browser.cookie("gradebook_lang"), Some("en"));
    let form = browser.get("/login").await.expect(StatusCode::OK);
    assert!(form.body.contains("Password"), "{}", form.body);
    // French numbers have a decimal comma.
    promotion_with_a_hidden_grade(&server).await;
    let mut ada = Browser::signed_in(&server, "ada", PASSWORD).await;
    ada.set_cookie("gradebook_lang", Some("fr"));
    let page = ada.get("/me").await.expect(StatusCode::OK);
    assert!(page.body.contains("12,00"), "{}", page.body);
}

/// The login form counts failures with the protocol: five wrong passwords
/// in the browser close the name to the right one, in the browser and
/// over TCP alike (the failures are per name, whatever the door).
#[tokio::test]
async fn failed_sign_ins_are_throttled_with_the_protocols_logins() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    for _ in 0..5 {
        let wrong = browser.login("admin", "not the password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let blocked = browser.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        blocked.body
    );
    assert!(blocked.body.contains("try again in"), "{}", blocked.body);
    assert!(browser.cookie("gradebook_session").is_none());
    let mut tcp = server.connect().await;
    crate::common::err(
        &mut tcp,
        "auth.login",
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
        "rate_limited",
    )
    .await;
}
