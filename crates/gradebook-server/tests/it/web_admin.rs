//! An admin's pages of the web portal, in process (see `web.rs`): accounts,
//! grants and the audit log, each checked against what the protocol then
//! says (a created account logs in over TCP, a revoked teacher no longer
//! lists the promotion), and refused to teachers, students and posts
//! without the form's token.

use axum::http::StatusCode;
use gradebook_client::ClientError;
use serde_json::json;

use crate::common::web::{Browser, Reply};
use crate::common::{ADMIN_PASSWORD, TestServer, err, ok};

const PASSWORD: &str = "password-of-the-tests";
const NEW_PASSWORD: &str = "another-password-entirely";

/// The accounts' names, over the protocol.
async fn usernames(server: &TestServer) -> Vec<String> {
    let mut admin = server.admin().await;
    ok(&mut admin, "user.list", json!({})).await["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().expect("a name").to_owned())
        .collect()
}

/// Whether `username` logs in with `password` over the protocol.
async fn logs_in(server: &TestServer, username: &str, password: &str) -> bool {
    let mut c = server.connect().await;
    match c.login(username, password).await {
        Ok(_) => true,
        Err(ClientError::Server(e)) if e.code.as_str() == "unauthenticated" => false,
        Err(e) => panic!("login of {username}: {e}"),
    }
}

/// The names of the promotions `username` sees in their own
/// `promotion.list`.
async fn promotions_of(server: &TestServer, username: &str) -> Vec<String> {
    let mut c = server.connect().await;
    c.login(username, PASSWORD).await.expect("logs in");
    ok(&mut c, "promotion.list", json!({})).await["promotions"]
        .as_array()
        .expect("promotions")
        .iter()
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Promotion `P` with one student, a teacher `tina` and a student account
/// `ada` linked to that student. Returns the student's id.
async fn department(server: &TestServer) -> i64 {
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "P"})).await;
    let ada = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "Ada", "last_name": "Lovelace"}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    ok(
        &mut admin,
        "user.create",
        json!({"username": "tina", "password": PASSWORD, "role": "teacher"}),
    )
    .await;
    ok(
        &mut admin,
        "user.create",
        json!({"username": "ada", "password": PASSWORD, "role": "student", "student": ada}),
    )
    .await;
    ada
}

/// The text of the element with `id` (tags inside dropped, entities
/// read), up to its closing tag.
fn text_of(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let start = body[..at].rfind('<')?;
    let name = body[start + 1..].split([' ', '>']).next()?;
    let open = at + body[at..].find('>')? + 1;
    let close = open + body[open..].find(&format!("</{name}>"))?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in body[open..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(
        text.replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The rows of the table with `id` (its `<tbody>`'s `<tr>`s).
fn rows(body: &str, id: &str) -> Vec<String> {
    let at = body
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id} in {body}"));
    let table = &body[at..at + body[at..].find("</table>").expect("a whole table")];
    let tbody = table.split("<tbody>").nth(1).unwrap_or_default();
    tbody.split("<tr>").skip(1).map(str::to_owned).collect()
}

/// Asserts that every visible input and select of a page has a label,
/// and that it holds no inline script or style.
#[track_caller]
fn assert_accessible(page: &Reply) {
    let body = &page.body;
    for tag in ["<input ", "<select "] {
        for piece in body.split(tag).skip(1) {
            let element = piece.split('>').next().unwrap_or_default();
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let id = element
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{tag}{element}> has no id"));
            assert!(
                body.contains(&format!("<label for=\"{id}\"")),
                "{tag}{element}> has no label"
            );
        }
    }
    assert!(!body.contains("<script>"), "an inline script");
    assert!(!body.contains("style=\""), "an inline style");
    assert!(!body.contains(" onclick="), "an inline handler");
}

#[tokio::test]
async fn an_admin_sees_every_account_with_its_role_and_record() {
    let server = TestServer::start().await;
    let ada = department(&server).await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let page = browser.get("/admin/users").await.expect(StatusCode::OK);
    assert_accessible(&page);
    let users = rows(&page.body, "users");
    assert_eq!(users.len(), 3, "{}", page.body);
    let row = |name: &str| {
        users
            .iter()
            .find(|r| r.contains(&format!("<th scope=\"row\">{name}</th>")))
            .unwrap_or_else(|| panic!("no row for {name}: {}", page.body))
            .clone()
    };
    assert!(row("admin").contains("<td>admin</td>"));
    assert!(row("tina").contains("<td>teacher</td>"));
    let ada_row = row("ada");
    assert!(ada_row.contains("<td>student</td>"), "{ada_row}");
    assert!(ada_row.contains(&format!(">{ada}</td>")), "{ada_row}");
    // Every account has its two forms.
    assert!(ada_row.contains("action=\"/admin/users/ada/password\""));
    assert!(ada_row.contains("action=\"/admin/users/ada/delete\""));
    // The create form, the way a role changes, and the nav's admin links.
    assert!(
        page.body
            .contains("<form id=\"create-user\" method=\"post\" action=\"/admin/users\"")
    );
    assert!(page.body.contains("create it again"), "{}", page.body);
    for link in ["/admin/users", "/admin/grants", "/admin/audit"] {
        assert!(page.body.contains(&format!("href=\"{link}\"")), "{link}");
    }

    // In French too.
    browser.set_cookie("gradebook_lang", Some("fr"));
    let page = browser.get("/admin/users").await.expect(StatusCode::OK);
    assert!(page.body.contains("Créer un compte"), "{}", page.body);
    assert!(page.body.contains("<td>enseignant</td>"), "{}", page.body);
}

#[tokio::test]
async fn an_admin_creates_a_teacher_and_a_linked_student_who_can_log_in() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "P"})).await;
    let bob = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "Bob", "last_name": "Martin"}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let csrf = browser.get("/admin/users").await.csrf();

    let created = browser
        .post(
            "/admin/users",
            &[
                ("username", "tom"),
                ("password", PASSWORD),
                ("role", "teacher"),
                ("student", ""),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let back = created.location().expect("back to the list").to_owned();
    // The notice travels in a one-time cookie, not in the address (a
    // link cannot make the page say something).
    assert_eq!(back, "/admin/users");
    let page = browser.get(&back).await.expect(StatusCode::OK);
    assert_eq!(
        text_of(&page.body, "notice").as_deref(),
        Some("Account tom created.")
    );
    let again = browser.get(&back).await.expect(StatusCode::OK);
    assert_eq!(text_of(&again.body, "notice"), None, "shown once");
    // Nor does a crafted cookie name someone else's text.
    browser.set_cookie("gradebook_flash", Some("login.title&user=x"));
    let crafted = browser.get(&back).await.expect(StatusCode::OK);
    assert_eq!(text_of(&crafted.body, "notice"), None);
    assert!(rows(&page.body, "users").iter().any(|r| r.contains("tom")));

    let bob_id = bob.to_string();
    browser
        .post(
            "/admin/users",
            &[
                ("username", "bob"),
                ("password", PASSWORD),
                ("role", "student"),
                ("student", &bob_id),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Both log in over the protocol, with the role and record given.
    let mut tom = server.connect().await;
    assert_eq!(
        tom.login("tom", PASSWORD)
            .await
            .expect("tom logs in")
            .role
            .as_str(),
        "teacher"
    );
    let mut student = server.connect().await;
    student.login("bob", PASSWORD).await.expect("bob logs in");
    let whoami = ok(&mut student, "auth.whoami", json!({})).await;
    assert_eq!(whoami["role"], "student");
    assert_eq!(whoami["student"], bob);
}

#[tokio::test]
async fn a_refused_account_shows_the_protocols_error_and_creates_nothing() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let before = usernames(&server).await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let csrf = browser.get("/admin/users").await.csrf();
    // (username, password, role): what the form sends, and the protocol
    // gets the very same as `user.create`.
    let cases = [
        // A weak password.
        (
            "weak",
            "short",
            "teacher",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        // A name that is taken.
        (
            "admin",
            PASSWORD,
            "teacher",
            StatusCode::CONFLICT,
            "conflict",
        ),
        // A student account without its record.
        (
            "sam",
            PASSWORD,
            "student",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        // A role that does not exist.
        (
            "sam",
            PASSWORD,
            "dean",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        // A name with a space.
        (
            "sam s",
            PASSWORD,
            "teacher",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
    ];
    for (username, password, role, status, code) in cases {
        let form = [
            ("username", username),
            ("password", password),
            ("role", role),
            ("csrf", &csrf),
        ];
        let page = browser.post("/admin/users", &form).await.expect(status);
        let args = json!({"username": username, "password": password, "role": role});
        // The very message the protocol gives for the same request.
        let message = err(&mut admin, "user.create", args, code).await;
        assert_eq!(
            text_of(&page.body, "create-error").as_deref(),
            Some(message.as_str()),
            "{}",
            page.body
        );
        // What was typed stays in the form, except the password.
        assert!(
            page.body
                .contains(&format!("name=\"username\" value=\"{username}\"")),
            "{}",
            page.body
        );
        assert!(!page.body.contains(&format!("value=\"{PASSWORD}\"")));
        assert_accessible(&page);
    }
    // A record id that is not a number is refused before anything runs.
    let page = browser
        .post(
            "/admin/users",
            &[
                ("username", "sam"),
                ("password", PASSWORD),
                ("role", "student"),
                ("student", "twelve"),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(
        text_of(&page.body, "create-error").is_some_and(|m| m.contains("twelve")),
        "{}",
        page.body
    );
    assert_eq!(usernames(&server).await, before);
}

#[tokio::test]
async fn deleting_an_account_asks_first_and_needs_the_form_token() {
    let server = TestServer::start().await;
    department(&server).await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let csrf = browser.get("/admin/users").await.csrf();

    // The first post only asks.
    let ask = browser
        .post("/admin/users/tina/delete", &[("csrf", &csrf)])
        .await
        .expect(StatusCode::OK);
    assert_eq!(text_of(&ask.body, "delete-user").as_deref(), Some("tina"));
    assert!(ask.body.contains("id=\"confirm-delete\""), "{}", ask.body);
    assert!(ask.body.contains("name=\"confirm\" value=\"yes\""));
    assert!(usernames(&server).await.contains(&"tina".to_owned()));

    // Confirmed, but without (or with a wrong) token: refused.
    for token in [None, Some("0123456789abcdef0123456789abcdef")] {
        let mut form = vec![("confirm", "yes")];
        form.extend(token.map(|t| ("csrf", t)));
        browser
            .post("/admin/users/tina/delete", &form)
            .await
            .expect(StatusCode::FORBIDDEN);
        assert!(usernames(&server).await.contains(&"tina".to_owned()));
    }

    let gone = browser
        .post(
            "/admin/users/tina/delete",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = browser
        .get(gone.location().expect("back"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        text_of(&page.body, "notice").as_deref(),
        Some("Account tina deleted.")
    );
    assert!(!usernames(&server).await.contains(&"tina".to_owned()));
    assert!(!logs_in(&server, "tina", PASSWORD).await);

    // The protocol's refusals show beside the list: one's own account,
    // an account that is no more.
    let own = browser
        .post(
            "/admin/users/admin/delete",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert!(
        text_of(&own.body, "user-error").is_some_and(|m| m.contains("your own account")),
        "{}",
        own.body
    );
    browser
        .post(
            "/admin/users/tina/delete",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await
        .expect(StatusCode::NOT_FOUND);
    assert!(usernames(&server).await.contains(&"admin".to_owned()));
}

#[tokio::test]
async fn setting_a_password_retires_the_old_one_and_its_sessions() {
    let server = TestServer::start().await;
    department(&server).await;
    let mut tina = server.connect().await;
    tina.login("tina", PASSWORD).await.expect("tina logs in");
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let csrf = browser.get("/admin/users").await.csrf();

    // Too short: the protocol's message, and nothing changes.
    let weak = browser
        .post(
            "/admin/users/tina/password",
            &[("password", "short"), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&weak.body, "user-error").is_some_and(|m| m.contains("shorter")),
        "{}",
        weak.body
    );
    ok(&mut tina, "auth.whoami", json!({})).await;

    let set = browser
        .post(
            "/admin/users/tina/password",
            &[("password", NEW_PASSWORD), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = browser
        .get(set.location().expect("back"))
        .await
        .expect(StatusCode::OK);
    assert!(
        text_of(&page.body, "notice").is_some_and(|m| m.contains("tina")),
        "{}",
        page.body
    );
    assert!(!logs_in(&server, "tina", PASSWORD).await);
    assert!(logs_in(&server, "tina", NEW_PASSWORD).await);
    // Her session from before ended.
    err(&mut tina, "auth.whoami", json!({}), "unauthenticated").await;

    // No such account: the protocol's not_found.
    browser
        .post(
            "/admin/users/nobody/password",
            &[("password", NEW_PASSWORD), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_changes_their_own_password_with_the_current_one() {
    let server = TestServer::start().await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let page = browser.get("/admin/users").await.expect(StatusCode::OK);
    let csrf = page.csrf();
    // Their own row asks for the current password.
    assert!(page.body.contains("name=\"old\""), "{}", page.body);
    let wrong = browser
        .post(
            "/admin/users/admin/password",
            &[
                ("old", "not the password"),
                ("password", NEW_PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert!(logs_in(&server, "admin", ADMIN_PASSWORD).await);

    browser
        .post(
            "/admin/users/admin/password",
            &[
                ("old", ADMIN_PASSWORD),
                ("password", NEW_PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert!(logs_in(&server, "admin", NEW_PASSWORD).await);
    // Every session of the account ended, this browser's too.
    let next = browser
        .get("/admin/users")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert!(
        next.location().is_some_and(|l| l.starts_with("/login")),
        "{:?}",
        next.location()
    );
}

#[tokio::test]
async fn a_grant_then_a_revoke_change_what_the_teacher_manages() {
    let server = TestServer::start().await;
    department(&server).await;
    assert!(
        !promotions_of(&server, "tina")
            .await
            .contains(&"P".to_owned())
    );
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let page = browser.get("/admin/grants").await.expect(StatusCode::OK);
    assert_accessible(&page);
    let csrf = page.csrf();
    let promotions = rows(&page.body, "grants");
    assert_eq!(promotions.len(), 1, "{}", page.body);
    assert!(promotions[0].contains("name=\"promotion\" value=\"P\""));
    // Teachers only are offered.
    assert!(promotions[0].contains("<option value=\"tina\""));
    assert!(!promotions[0].contains("<option value=\"ada\""));

    let grant = |action: &'static str, user: &'static str| {
        [("promotion", "P"), ("username", user), ("action", action)]
    };
    let mut form = grant("grant", "tina").to_vec();
    form.push(("csrf", &csrf));
    let granted = browser
        .post("/admin/grants", &form)
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = browser
        .get(granted.location().expect("back"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        text_of(&page.body, "notice").as_deref(),
        Some("tina may now manage P.")
    );
    assert!(
        promotions_of(&server, "tina")
            .await
            .contains(&"P".to_owned())
    );

    let mut form = grant("revoke", "tina").to_vec();
    form.push(("csrf", &csrf));
    browser
        .post("/admin/grants", &form)
        .await
        .expect(StatusCode::SEE_OTHER);
    assert!(
        !promotions_of(&server, "tina")
            .await
            .contains(&"P".to_owned())
    );

    // The protocol's refusals, inline: a student account, nobody, no
    // such promotion, an action that is neither.
    let mut admin = server.admin().await;
    for (fields, status, code) in [
        (
            grant("grant", "ada"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (grant("grant", "nobody"), StatusCode::NOT_FOUND, "not_found"),
        (
            [
                ("promotion", "Q"),
                ("username", "tina"),
                ("action", "grant"),
            ],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let mut form = fields.to_vec();
        form.push(("csrf", &csrf));
        let page = browser.post("/admin/grants", &form).await.expect(status);
        let message = err(
            &mut admin,
            "promotion.grant",
            json!({"name": fields[0].1, "username": fields[1].1}),
            code,
        )
        .await;
        assert_eq!(
            text_of(&page.body, "grant-error").as_deref(),
            Some(message.as_str()),
            "{}",
            page.body
        );
    }
    let mut form = grant("promote", "tina").to_vec();
    form.push(("csrf", &csrf));
    browser
        .post("/admin/grants", &form)
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(
        !promotions_of(&server, "tina")
            .await
            .contains(&"P".to_owned())
    );
}

#[tokio::test]
async fn the_audit_page_shows_recent_grade_changes_and_filters_them() {
    let server = TestServer::start().await;
    let ada = department(&server).await;
    let mut admin = server.admin().await;
    let bob = ok(
        &mut admin,
        "student.add",
        json!({"promotion": "P", "first_name": "Bob", "last_name": "Martin"}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    let grade = ok(
        &mut admin,
        "grade.add",
        json!({"student": ada, "subject": "Maths", "value": 12.5, "coefficient": 2, "label": "Midterm"}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    ok(
        &mut admin,
        "grade.update",
        json!({"id": grade, "value": 14}),
    )
    .await;
    ok(
        &mut admin,
        "grade.add",
        json!({"student": bob, "subject": "Physics", "value": "ABS"}),
    )
    .await;
    let entries = ok(&mut admin, "audit.list", json!({})).await["entries"].clone();
    let newest = &entries[0];

    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let page = browser.get("/admin/audit").await.expect(StatusCode::OK);
    assert_accessible(&page);
    let all = rows(&page.body, "audit");
    assert_eq!(all.len(), 3, "{}", page.body);
    // Newest first, with its seq, readable UTC time, who and what.
    let at = newest["at"].as_str().expect("a time");
    assert!(
        all[0].contains(&format!(">{}</th>", newest["id"])),
        "{}",
        all[0]
    );
    assert!(all[0].contains(&format!("datetime=\"{at}\"")), "{}", all[0]);
    assert!(
        all[0].contains(&at.replace('T', " ").replace('Z', " UTC")),
        "{}",
        all[0]
    );
    assert!(all[0].contains("<td>admin</td>"));
    assert!(all[0].contains("<code>grade.add</code>"));
    assert!(all[0].contains(&format!("student {bob}")), "{}", all[0]);
    assert!(all[0].contains("Physics ABS"), "{}", all[0]);
    // The update says what changed, from what to what.
    assert!(all[1].contains("<code>grade.update</code>"));
    assert!(all[1].contains("12.5 → 14"), "{}", all[1]);
    assert!(all[2].contains("– → Maths 12.5 ×2 (Midterm)"), "{}", all[2]);

    // Filters: one student, a limit, a promotion.
    let page = browser
        .get(&format!("/admin/audit?promotion=&student={ada}&limit="))
        .await
        .expect(StatusCode::OK);
    let only_ada = rows(&page.body, "audit");
    assert_eq!(only_ada.len(), 2, "{}", page.body);
    assert!(
        only_ada
            .iter()
            .all(|r| r.contains(&format!("student {ada}")))
    );
    assert!(page.body.contains(&format!(
        "name=\"student\" type=\"number\" inputmode=\"numeric\" value=\"{ada}\""
    )));
    let page = browser
        .get("/admin/audit?limit=1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(rows(&page.body, "audit").len(), 1);
    let page = browser
        .get("/admin/audit?promotion=P")
        .await
        .expect(StatusCode::OK);
    assert_eq!(rows(&page.body, "audit").len(), 3);
    assert!(page.body.contains("<option value=\"P\" selected>"));

    // The protocol's own refusals of a filter, inline.
    let page = browser
        .get("/admin/audit?limit=0")
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let message = err(
        &mut admin,
        "audit.list",
        json!({"limit": 0}),
        "invalid_value",
    )
    .await;
    assert_eq!(text_of(&page.body, "audit-error"), Some(message));
    browser
        .get("/admin/audit?promotion=Nowhere")
        .await
        .expect(StatusCode::NOT_FOUND);
    browser
        .get("/admin/audit?student=ada")
        .await
        .expect(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn checking_the_chain_reports_it_intact() {
    let server = TestServer::start().await;
    let ada = department(&server).await;
    let mut admin = server.admin().await;
    ok(
        &mut admin,
        "grade.add",
        json!({"student": ada, "subject": "Maths", "value": 15}),
    )
    .await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let page = browser.get("/admin/audit").await.expect(StatusCode::OK);
    assert!(!page.body.contains("id=\"chain-status\""));
    let csrf = page.csrf();
    let report = ok(&mut admin, "audit.verify", json!({})).await;
    assert_eq!(report["intact"], true);

    let checked = browser
        .post("/admin/audit/verify", &[("csrf", &csrf)])
        .await
        .expect(StatusCode::OK);
    assert!(
        checked
            .body
            .contains("<p id=\"chain-status\" role=\"status\""),
        "{}",
        checked.body
    );
    let status = text_of(&checked.body, "chain-status").expect("a status");
    assert!(status.contains("intact"), "{status}");
    assert!(
        status.contains(&format!("{} entries", report["entries"])),
        "{status}"
    );
    assert!(
        status.contains(&format!("seq {}", report["last_seq"])),
        "{status}"
    );
    // The page still lists the entries.
    assert_eq!(rows(&checked.body, "audit").len(), 1);

    // Without the form's token: refused.
    browser
        .post("/admin/audit/verify", &[])
        .await
        .expect(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn teachers_and_students_are_refused_every_admin_page_and_form() {
    let server = TestServer::start().await;
    department(&server).await;
    let mut admin = server.admin().await;
    // Tina manages P: even the audit of her own promotion is not here.
    ok(
        &mut admin,
        "promotion.grant",
        json!({"name": "P", "username": "tina"}),
    )
    .await;
    let before = usernames(&server).await;
    for who in ["tina", "ada"] {
        let mut browser = Browser::signed_in(&server, who, PASSWORD).await;
        let refused = browser
            .get("/admin/users")
            .await
            .expect(StatusCode::FORBIDDEN);
        // No admin link in their navigation; their own form token, from
        // the page's logout form.
        assert!(
            !refused.body.contains("href=\"/admin/"),
            "{who}: {}",
            refused.body
        );
        let csrf = refused.csrf();
        assert!(!csrf.is_empty());
        for path in [
            "/admin/users",
            "/admin/grants",
            "/admin/audit",
            "/admin/audit?promotion=P",
        ] {
            let reply = browser.get(path).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{who} GET {path}");
            assert!(reply.body.contains("forbidden"), "{who} GET {path}");
        }
        let posts: [(&str, Vec<(&str, &str)>); 7] = [
            (
                "/admin/users",
                vec![
                    ("username", "mallory"),
                    ("password", PASSWORD),
                    ("role", "admin"),
                ],
            ),
            ("/admin/users/admin/delete", vec![]),
            ("/admin/users/admin/delete", vec![("confirm", "yes")]),
            (
                "/admin/users/admin/password",
                vec![("password", NEW_PASSWORD)],
            ),
            (
                "/admin/users/tina/password",
                vec![("password", NEW_PASSWORD), ("old", PASSWORD)],
            ),
            (
                "/admin/grants",
                vec![
                    ("promotion", "P"),
                    ("username", "tina"),
                    ("action", "revoke"),
                ],
            ),
            ("/admin/audit/verify", vec![]),
        ];
        for (path, mut fields) in posts {
            fields.push(("csrf", &csrf));
            let reply = browser.post(path, &fields).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{who} POST {path}");
        }
    }
    // Nothing changed.
    assert_eq!(usernames(&server).await, before);
    assert!(logs_in(&server, "admin", ADMIN_PASSWORD).await);
    assert!(logs_in(&server, "tina", PASSWORD).await);
    assert!(
        promotions_of(&server, "tina")
            .await
            .contains(&"P".to_owned())
    );
}

#[tokio::test]
async fn a_post_without_the_form_token_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    department(&server).await;
    let before = usernames(&server).await;
    let mut browser = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let posts: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "/admin/users",
            vec![
                ("username", "mallory"),
                ("password", PASSWORD),
                ("role", "admin"),
            ],
        ),
        ("/admin/users/tina/delete", vec![("confirm", "yes")]),
        (
            "/admin/users/tina/password",
            vec![("password", NEW_PASSWORD)],
        ),
        (
            "/admin/grants",
            vec![
                ("promotion", "P"),
                ("username", "tina"),
                ("action", "grant"),
            ],
        ),
        ("/admin/audit/verify", vec![]),
    ];
    for (path, fields) in posts {
        for token in [None, Some(""), Some("0123456789abcdef0123456789abcdef")] {
            let mut form = fields.clone();
            form.extend(token.map(|t| ("csrf", t)));
            let reply = browser.post(path, &form).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "POST {path} {token:?}");
        }
    }
    assert_eq!(usernames(&server).await, before);
    assert!(logs_in(&server, "tina", PASSWORD).await);
    assert!(
        !promotions_of(&server, "tina")
            .await
            .contains(&"P".to_owned())
    );
}
