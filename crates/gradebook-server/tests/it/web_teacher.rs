//! A teacher's pages of the web portal, in process (see `web.rs`): the
//! promotions a teacher sees, creating one, its table and its sorts, the
//! grade-entry grid, publication and locking, imports and exports. Data is
//! set up, and every change checked, over the protocol with the real
//! client: the pages must do exactly what the commands do.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gradebook_client::Client;
use serde_json::{Value, json};

use crate::common::web::{Browser, Reply, field_value};
use crate::common::{ADMIN_PASSWORD, TestServer, err, ok};

const PASSWORD: &str = "password-of-the-tests";

/// Creates user `username` with `role`.
async fn user(admin: &mut Client, username: &str, role: &str) {
    ok(
        admin,
        "user.create",
        json!({"username": username, "password": PASSWORD, "role": role}),
    )
    .await;
}

/// Creates a teacher and gives them `promotions`.
async fn teacher_of(admin: &mut Client, username: &str, promotions: &[&str]) {
    user(admin, username, "teacher").await;
    for p in promotions {
        ok(
            admin,
            "promotion.grant",
            json!({"name": p, "username": username}),
        )
        .await;
    }
}

/// Adds a student; returns their id.
async fn student(admin: &mut Client, promotion: &str, first: &str, last: &str) -> i64 {
    ok(
        admin,
        "student.add",
        json!({"promotion": promotion, "first_name": first, "last_name": last}),
    )
    .await["id"]
        .as_i64()
        .expect("an id")
}

/// Adds a grade; returns its id.
async fn grade(
    admin: &mut Client,
    student: i64,
    subject: &str,
    value: Value,
    coefficient: f64,
    label: &str,
) -> i64 {
    ok(
        admin,
        "grade.add",
        json!({"student": student, "subject": subject, "value": value,
               "coefficient": coefficient, "label": label}),
    )
    .await["id"]
        .as_i64()
        .expect("an id")
}

/// A student's grades, over the protocol.
async fn grades_of(admin: &mut Client, student: i64) -> Vec<Value> {
    ok(admin, "grade.list", json!({"student": student})).await["grades"]
        .as_array()
        .expect("grades")
        .clone()
}

/// `text` as askama writes it in a page.
fn html(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// An attribute's value as the browser reads it.
fn unhtml(text: &str) -> String {
    text.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

/// The part of `body` from `<table id="{id}"` to its end.
fn table<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id} in {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</table>").expect("the table ends")]
}

/// The students of the table, in the order shown (their ids).
fn order(body: &str) -> Vec<i64> {
    table(body, "students")
        .split("data-student=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect()
}

/// The role="alert" text of a page.
fn alert(body: &str) -> String {
    let after = body
        .split("role=\"alert\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no alert in {body}"));
    after.split("</p>").next().unwrap_or_default().to_owned()
}

/// Follows a redirect.
async fn follow(browser: &mut Browser, reply: &Reply) -> Reply {
    let to = reply
        .location()
        .unwrap_or_else(|| panic!("not a redirect: {} {}", reply.status, reply.body))
        .to_owned();
    browser.get(&to).await
}

/// Posts a multipart form (the import's) with one file, or none when
/// `file_name` is empty.
async fn post_file(
    browser: &mut Browser,
    path: &str,
    fields: &[(&str, &str)],
    file_name: &str,
    file: &[u8],
) -> Reply {
    let boundary = "gradebook-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    // No file name: no file part at all.
    if !file_name.is_empty() {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let session = browser.cookie("gradebook_session").unwrap_or_default();
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header(header::COOKIE, format!("gradebook_session={session}"))
        .body(Body::from(body))
        .expect("a request");
    browser.send(request).await
}

#[tokio::test]
async fn a_teacher_sees_only_their_promotions_and_an_admin_sees_all() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    for name in ["Mine", "R&T 1/2", "Theirs"] {
        ok(&mut admin, "promotion.create", json!({ "name": name })).await;
    }
    teacher_of(&mut admin, "tina", &["Mine", "R&T 1/2"]).await;

    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;
    // A teacher's home is the list of their promotions.
    assert_eq!(tina.get("/").await.location(), Some("/promotions"));
    let page = tina.get("/promotions").await.expect(StatusCode::OK);
    let list = table(&page.body, "promotions");
    assert!(list.contains("href=\"/promotions/Mine\""), "{list}");
    // Names are percent-encoded in links, a slash too.
    assert!(
        list.contains("href=\"/promotions/R%26T%201%2F2\">R&#38;T 1/2</a>"),
        "{list}"
    );
    assert!(!list.contains("Theirs"), "{list}");
    let theirs = tina
        .get("/promotions/R%26T%201%2F2")
        .await
        .expect(StatusCode::OK);
    assert!(theirs.body.contains("<h1>R&#38;T 1/2"), "{}", theirs.body);

    // Another teacher's promotion: the protocol's refusal, as over TCP.
    let mut tcp = server.connect().await;
    tcp.login("tina", PASSWORD).await.expect("logs in");
    let message = err(
        &mut tcp,
        "promotion.show",
        json!({"name": "Theirs"}),
        "forbidden",
    )
    .await;
    let refused = tina
        .get("/promotions/Theirs")
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(refused.body.contains(&html(&message)), "{}", refused.body);
    for path in [
        "/promotions/Theirs/grid?subject=Maths",
        "/promotions/Theirs/export.csv",
        "/promotions/Nowhere",
    ] {
        let reply = tina.get(path).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            reply.body
        );
    }

    let mut root = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let page = root.get("/promotions").await.expect(StatusCode::OK);
    for name in ["Mine", "R&#38;T 1/2", "Theirs"] {
        assert!(table(&page.body, "promotions").contains(name), "{name}");
    }
    // An admin is told a promotion does not exist.
    root.get("/promotions/Nowhere")
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_teacher_creates_a_promotion_and_adds_students_through_the_forms() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    user(&mut admin, "tina", "teacher").await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;
    let form = tina.get("/promotions").await.expect(StatusCode::OK);
    assert!(
        form.body
            .contains("<form id=\"create-promotion\" method=\"post\" action=\"/promotions\"")
    );
    let csrf = form.csrf();

    let created = tina
        .post(
            "/promotions",
            &[
                ("name", "RT1 2026"),
                ("year", "2026"),
                ("description", "First year"),
                ("publication", "manual"),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(created.location(), Some("/promotions/RT1%202026"));
    let page = follow(&mut tina, &created).await.expect(StatusCode::OK);
    assert!(page.body.contains("Promotion created."), "{}", page.body);
    // The message is shown once.
    let again = tina.get("/promotions/RT1%202026").await;
    assert!(!again.body.contains("Promotion created."));
    let shown = ok(&mut admin, "promotion.show", json!({"name": "RT1 2026"})).await;
    assert_eq!(shown["year"], 2026);
    assert_eq!(shown["publication"], "manual");
    assert_eq!(shown["description"], "First year");
    // The creator manages it: it is in their list.
    let list = tina.get("/promotions").await;
    assert!(table(&list.body, "promotions").contains("RT1 2026"));

    // The same name again: the protocol's conflict, inline, the typed
    // values kept.
    let conflict = tina
        .post(
            "/promotions",
            &[("name", "RT1 2026"), ("year", "2027"), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert!(
        alert(&conflict.body).contains("conflict"),
        "{}",
        conflict.body
    );
    assert_eq!(field_value(&conflict.body, "year").as_deref(), Some("2027"));
    let bad_year = tina
        .post(
            "/promotions",
            &[("name", "X"), ("year", "soon"), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(alert(&bad_year.body).contains("whole number"));
    let mut tcp = server.connect().await;
    tcp.login("tina", PASSWORD).await.expect("logs in");
    let message = err(
        &mut tcp,
        "promotion.create",
        json!({"name": "Y", "year": 12}),
        "invalid_value",
    )
    .await;
    let bad = tina
        .post(
            "/promotions",
            &[("name", "Y"), ("year", "12"), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(alert(&bad.body).contains(&html(&message)), "{}", bad.body);

    // Students.
    let added = tina
        .post(
            "/promotions/RT1%202026/students",
            &[
                ("first_name", "Ada"),
                ("last_name", "Lovelace"),
                ("number", "2026001"),
                ("email", "ada@example.org"),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = follow(&mut tina, &added).await.expect(StatusCode::OK);
    assert!(page.body.contains("Student added."));
    assert!(table(&page.body, "students").contains("Lovelace Ada"));
    let students = ok(&mut admin, "student.list", json!({"promotion": "RT1 2026"})).await;
    assert_eq!(students["students"][0]["number"], "2026001");
    assert_eq!(students["students"][0]["email"], "ada@example.org");
    // The same number again: refused inline with the protocol's words.
    let twice = tina
        .post(
            "/promotions/RT1%202026/students",
            &[
                ("first_name", "Bob"),
                ("last_name", "Byron"),
                ("number", "2026001"),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::CONFLICT);
    assert!(alert(&twice.body).contains("conflict"));
    assert_eq!(
        field_value(&twice.body, "first_name").as_deref(),
        Some("Bob")
    );
    let students = ok(&mut admin, "student.list", json!({"promotion": "RT1 2026"})).await;
    assert_eq!(students["students"].as_array().map(Vec::len), Some(1));
}

/// Promotion `P`: Ada (Maths 16 ×2, Physics 8), Bob (Maths 10, Physics
/// 14), Cyd (Maths 12), Dee (no grade). Returns the four ids.
async fn ranked_promotion(admin: &mut Client) -> [i64; 4] {
    ok(admin, "promotion.create", json!({"name": "P"})).await;
    let ada = student(admin, "P", "Ada", "Avery").await;
    let bob = student(admin, "P", "Bob", "Baker").await;
    let cyd = student(admin, "P", "Cyd", "Carter").await;
    let dee = student(admin, "P", "Dee", "Dalton").await;
    grade(admin, ada, "Maths", json!(16), 2.0, "Exam").await;
    grade(admin, ada, "Physics", json!(8), 1.0, "Lab").await;
    grade(admin, bob, "Maths", json!(10), 2.0, "Exam").await;
    grade(admin, bob, "Physics", json!(14), 1.0, "Lab").await;
    grade(admin, cyd, "Maths", json!(12), 2.0, "Exam").await;
    [ada, bob, cyd, dee]
}

#[tokio::test]
async fn the_table_shows_averages_and_ranks_in_every_order() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    let [ada, bob, cyd, dee] = ranked_promotion(&mut admin).await;
    teacher_of(&mut admin, "tina", &["P"]).await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;

    // Averages: Ada 40/3 = 13.33, Bob 34/3 = 11.33, Cyd 12, Dee none.
    let page = tina.get("/promotions/P").await.expect(StatusCode::OK);
    let students = table(&page.body, "students");
    assert_eq!(order(&page.body), [ada, cyd, bob, dee]);
    assert!(students.contains("13.33"), "{students}");
    assert!(students.contains("11.33"));
    // One column per subject, with the student's average in it.
    assert!(students.contains("Maths</a>") && students.contains("Physics</a>"));
    assert!(
        students.contains("<td class=\"num\">16.00</td>"),
        "{students}"
    );
    // The current order is marked.
    assert!(
        students
            .contains("aria-sort=\"ascending\"><a href=\"/promotions/P?sort=rank&#38;dir=desc\""),
        "{students}"
    );
    // Promotion figures in the footer, as promotion.average says.
    let average = ok(&mut admin, "promotion.average", json!({"name": "P"})).await;
    let expected = format!("{:.2}", average["average"].as_f64().expect("an average"));
    assert!(students.contains(&format!("id=\"promotion-average\">{expected}")));
    // Evaluations are listed with links to their grid.
    let evaluations = table(&page.body, "evaluations");
    assert!(
        evaluations.contains("/promotions/P/grid?subject=Maths&#38;label=Exam&#38;coefficient=2"),
        "{evaluations}"
    );

    for (query, expected, marked) in [
        (
            "?sort=rank&dir=desc",
            vec![bob, cyd, ada, dee],
            "descending",
        ),
        ("?sort=name", vec![ada, bob, cyd, dee], "ascending"),
        (
            "?sort=name&dir=desc",
            vec![dee, cyd, bob, ada],
            "descending",
        ),
        ("?sort=average", vec![bob, cyd, ada, dee], "ascending"),
        (
            "?sort=average&dir=desc",
            vec![ada, cyd, bob, dee],
            "descending",
        ),
        (
            "?sort=subject:Maths&dir=desc",
            vec![ada, cyd, bob, dee],
            "descending",
        ),
        (
            "?sort=subject:Physics",
            vec![ada, bob, cyd, dee],
            "ascending",
        ),
        (
            "?sort=subject%3APhysics&dir=desc",
            vec![bob, ada, cyd, dee],
            "descending",
        ),
    ] {
        let page = tina
            .get(&format!("/promotions/P{query}"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(order(&page.body), expected, "{query}");
        let marks = table(&page.body, "students").matches("aria-sort=").count();
        assert_eq!(marks, 1, "{query}");
        assert!(
            page.body.contains(&format!("aria-sort=\"{marked}\"")),
            "{query}"
        );
    }

    // French: decimal commas.
    tina.language = Some("fr");
    let page = tina.get("/promotions/P").await.expect(StatusCode::OK);
    assert!(table(&page.body, "students").contains("13,33"));
    assert!(page.body.contains("lang=\"fr\""));
}

/// Promotion `G` (immediate) with Ada, Bob and Cyd; teacher `tina`.
async fn grid_promotion(server: &TestServer) -> (Client, Browser, [i64; 3]) {
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "G"})).await;
    let ada = student(&mut admin, "G", "Ada", "Avery").await;
    let bob = student(&mut admin, "G", "Bob", "Baker").await;
    let cyd = student(&mut admin, "G", "Cyd", "Carter").await;
    teacher_of(&mut admin, "tina", &["G"]).await;
    let tina = Browser::signed_in(server, "tina", PASSWORD).await;
    (admin, tina, [ada, bob, cyd])
}

/// The grid's form as a browser would post it: every field of the page,
/// with `cells` typed in.
fn grid_form(page: &str, cells: &[(i64, &str)]) -> Vec<(String, String)> {
    let form = &page[page.find("<form id=\"grid\"").expect("the grid form")..];
    let form = &form[..form.find("</form>").expect("its end")];
    let mut fields = Vec::new();
    for tag in form.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let attr = |name: &str| {
            let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            Some(tag[at..].split('"').next()?.to_owned())
        };
        let Some(name) = attr("name") else { continue };
        let typed = cells
            .iter()
            .find(|(id, _)| name == format!("grade-{id}"))
            .map(|(_, v)| (*v).to_owned());
        let value = typed.or_else(|| attr("value")).unwrap_or_default();
        fields.push((name, unhtml(&value)));
    }
    fields
}

async fn post_grid(browser: &mut Browser, fields: &[(String, String)]) -> Reply {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post("/promotions/G/grid", &pairs).await
}

#[tokio::test]
async fn the_grid_saves_a_column_in_one_post() {
    let server = TestServer::start().await;
    let (mut admin, mut tina, [ada, bob, cyd]) = grid_promotion(&server).await;
    let page = tina
        .get("/promotions/G/grid?subject=Networks&label=Midterm&coefficient=2")
        .await
        .expect(StatusCode::OK);
    // The contract of the page.
    assert!(
        page.body
            .contains("<form id=\"grid\" method=\"post\" action=\"/promotions/G/grid\"")
    );
    assert!(
        page.body
            .contains("<script src=\"/static/grid.js\" defer></script>")
    );
    for id in [ada, bob, cyd] {
        assert!(
            page.body.contains(&format!(
                "name=\"grade-{id}\" id=\"grade-{id}\" data-student=\"{id}\" inputmode=\"decimal\""
            )),
            "{}",
            page.body
        );
        assert!(page.body.contains(&format!("<label for=\"grade-{id}\">")));
    }
    assert_eq!(
        field_value(&page.body, "subject").as_deref(),
        Some("Networks")
    );
    assert_eq!(field_value(&page.body, "label").as_deref(), Some("Midterm"));
    assert_eq!(field_value(&page.body, "coefficient").as_deref(), Some("2"));
    assert!(page.body.contains("id=\"grid-status\" role=\"status\""));
    // Its script is a file of its own (the CSP forbids inline scripts and
    // styles).
    assert!(!page.body.contains("<script>") && !page.body.contains("style=\""));
    let script = tina.get("/static/grid.js").await.expect(StatusCode::OK);
    assert!(script.body.contains("ArrowDown") && script.body.contains("paste"));

    let fields = grid_form(&page.body, &[(ada, "14,5"), (bob, "abs"), (cyd, "12.25")]);
    let saved = post_grid(&mut tina, &fields)
        .await
        .expect(StatusCode::SEE_OTHER);
    let shown = follow(&mut tina, &saved).await.expect(StatusCode::OK);
    assert!(shown.body.contains("3 grades saved."), "{}", shown.body);
    assert_eq!(
        field_value(&shown.body, &format!("grade-{ada}")).as_deref(),
        Some("14.5")
    );
    assert_eq!(
        field_value(&shown.body, &format!("grade-{bob}")).as_deref(),
        Some("ABS")
    );

    for (id, value) in [(ada, json!(14.5)), (bob, json!("ABS")), (cyd, json!(12.25))] {
        let grades = grades_of(&mut admin, id).await;
        assert_eq!(grades.len(), 1, "{grades:?}");
        assert_eq!(grades[0]["value"], value);
        assert_eq!(grades[0]["coefficient"], 2.0);
        assert_eq!(grades[0]["subject"], "Networks");
        assert_eq!(grades[0]["label"], "Midterm");
    }

    // Saving the same page again changes nothing.
    let again = post_grid(&mut tina, &grid_form(&shown.body, &[])).await;
    let again = follow(&mut tina, &again).await;
    assert!(again.body.contains("0 grades saved."), "{}", again.body);
    assert_eq!(grades_of(&mut admin, ada).await.len(), 1);

    // In French the grid writes decimal commas.
    tina.language = Some("fr");
    let fr = tina
        .get("/promotions/G/grid?subject=Networks&label=Midterm")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        field_value(&fr.body, &format!("grade-{ada}")).as_deref(),
        Some("14,5")
    );
    // Opened without a coefficient, the column's own is used.
    assert_eq!(field_value(&fr.body, "coefficient").as_deref(), Some("2"));
}

#[tokio::test]
async fn an_invalid_cell_is_refused_inline_while_the_others_are_saved() {
    let server = TestServer::start().await;
    let (mut admin, mut tina, [ada, bob, cyd]) = grid_promotion(&server).await;
    let page = tina
        .get("/promotions/G/grid?subject=Maths&label=Quiz&coefficient=1")
        .await
        .expect(StatusCode::OK);
    let fields = grid_form(&page.body, &[(ada, "45"), (bob, "abc"), (cyd, "13")]);
    let reply = post_grid(&mut tina, &fields)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    // The protocol's own words for each refused cell.
    let too_high = err(
        &mut admin,
        "grade.add",
        json!({"student": ada, "subject": "Maths", "value": 45}),
        "invalid_value",
    )
    .await;
    let not_a_grade = err(
        &mut admin,
        "grade.add",
        json!({"student": bob, "subject": "Maths", "value": "abc"}),
        "invalid_value",
    )
    .await;
    for (id, typed, message) in [(ada, "45", &too_high), (bob, "abc", &not_a_grade)] {
        assert!(
            reply.body.contains(&format!(
                "aria-invalid=\"true\" aria-describedby=\"error-{id}\""
            )),
            "{}",
            reply.body
        );
        assert!(
            reply.body.contains(&format!(
                "<span id=\"error-{id}\" class=\"error\">{}</span>",
                html(message)
            )),
            "{}",
            reply.body
        );
        // What was typed is kept.
        assert_eq!(
            field_value(&reply.body, &format!("grade-{id}")).as_deref(),
            Some(typed)
        );
        assert!(grades_of(&mut admin, id).await.is_empty());
    }
    assert!(!reply.body.contains(&format!("error-{cyd}")));
    // The valid cell is saved, and the page says so.
    let saved = grades_of(&mut admin, cyd).await;
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0]["value"], 13.0);
    let status = reply
        .body
        .split("id=\"grid-status\" role=\"status\">")
        .nth(1)
        .unwrap_or_default();
    assert!(
        status.starts_with("Cells saved: 1; cells refused: 2."),
        "{status}"
    );

    // Corrected and saved again: only the two refused cells change.
    let fields = grid_form(&reply.body, &[(ada, "15"), (bob, "EXC")]);
    post_grid(&mut tina, &fields)
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(grades_of(&mut admin, ada).await[0]["value"], 15.0);
    assert_eq!(grades_of(&mut admin, bob).await[0]["value"], "EXC");
    assert_eq!(grades_of(&mut admin, cyd).await.len(), 1);
}

#[tokio::test]
async fn the_grid_updates_and_deletes_existing_grades() {
    let server = TestServer::start().await;
    let (mut admin, mut tina, [ada, bob, cyd]) = grid_promotion(&server).await;
    let a = grade(&mut admin, ada, "Maths", json!(10), 3.0, "Exam").await;
    let b = grade(&mut admin, bob, "Maths", json!(11), 3.0, "Exam").await;
    let c = grade(&mut admin, cyd, "Maths", json!(12), 3.0, "Exam").await;
    // Another column of the same subject is left alone.
    let other = grade(&mut admin, ada, "Maths", json!(9), 1.0, "Quiz").await;

    let page = tina
        .get("/promotions/G/grid?subject=Maths&label=Exam")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        field_value(&page.body, &format!("grade-{ada}")).as_deref(),
        Some("10")
    );
    assert_eq!(field_value(&page.body, "coefficient").as_deref(), Some("3"));
    let fields = grid_form(&page.body, &[(ada, "17,75"), (bob, ""), (cyd, "12")]);
    let saved = post_grid(&mut tina, &fields)
        .await
        .expect(StatusCode::SEE_OTHER);
    let shown = follow(&mut tina, &saved).await;
    assert!(shown.body.contains("2 grades saved."), "{}", shown.body);

    let ada_grades = grades_of(&mut admin, ada).await;
    let exam = ada_grades
        .iter()
        .find(|g| g["id"] == a)
        .expect("updated in place");
    assert_eq!(exam["value"], 17.75);
    assert_eq!(exam["coefficient"], 3.0);
    assert!(
        ada_grades
            .iter()
            .any(|g| g["id"] == other && g["value"] == 9.0)
    );
    assert!(
        grades_of(&mut admin, bob)
            .await
            .iter()
            .all(|g| g["id"] != b)
    );
    let cyd_grades = grades_of(&mut admin, cyd).await;
    assert_eq!(cyd_grades.len(), 1);
    assert_eq!(cyd_grades[0]["id"], c);
    // The audit log has one update and one delete by tina.
    let audit = ok(&mut admin, "audit.list", json!({"promotion": "G"})).await;
    let by_tina: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["by"] == "tina")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(by_tina.len(), 2, "{by_tina:?}");
    assert!(by_tina.contains(&"grade.update") && by_tina.contains(&"grade.delete"));

    // A grade entered elsewhere after the page was shown is not deleted by
    // the page's empty cell.
    let page = tina
        .get("/promotions/G/grid?subject=Maths&label=Exam")
        .await
        .expect(StatusCode::OK);
    let meanwhile = grade(&mut admin, bob, "Maths", json!(8), 3.0, "Exam").await;
    post_grid(&mut tina, &grid_form(&page.body, &[]))
        .await
        .expect(StatusCode::SEE_OTHER);
    assert!(
        grades_of(&mut admin, bob)
            .await
            .iter()
            .any(|g| g["id"] == meanwhile)
    );
}

#[tokio::test]
async fn publishing_unpublishing_locking_and_unlocking_from_the_pages() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(
        &mut admin,
        "promotion.create",
        json!({"name": "M", "publication": "manual"}),
    )
    .await;
    let ada = student(&mut admin, "M", "Ada", "Avery").await;
    let bob = student(&mut admin, "M", "Bob", "Baker").await;
    grade(&mut admin, ada, "Maths", json!(12), 1.0, "Exam").await;
    grade(&mut admin, bob, "Maths", json!(14), 1.0, "Exam").await;
    grade(&mut admin, ada, "Physics", json!(9), 1.0, "Lab").await;
    teacher_of(&mut admin, "tina", &["M"]).await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;
    let page = tina.get("/promotions/M").await.expect(StatusCode::OK);
    assert!(
        page.body
            .contains("id=\"publication-mode\">Grades published by hand")
    );
    let csrf = page.csrf();
    let published = |grades: &[Value]| grades.iter().filter(|g| g["published"] == true).count();

    let reply = tina
        .post(
            "/promotions/M/publish",
            &[("subject", "Maths"), ("label", ""), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), Some("/promotions/M"));
    let page = follow(&mut tina, &reply).await;
    assert!(page.body.contains("2 grades published."), "{}", page.body);
    assert_eq!(published(&grades_of(&mut admin, ada).await), 1);
    assert_eq!(published(&grades_of(&mut admin, bob).await), 1);

    let reply = tina
        .post(
            "/promotions/M/unpublish",
            &[("subject", ""), ("label", "Exam"), ("csrf", &csrf)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = follow(&mut tina, &reply).await;
    assert!(
        page.body.contains("2 grades hidden again."),
        "{}",
        page.body
    );
    assert_eq!(published(&grades_of(&mut admin, ada).await), 0);

    // From the grid: "publish this column" comes back to the grid.
    let grid = tina
        .get("/promotions/M/grid?subject=Physics&label=Lab")
        .await
        .expect(StatusCode::OK);
    assert!(
        grid.body.contains(
            "<form id=\"publish-column\" method=\"post\" action=\"/promotions/M/publish\""
        )
    );
    let back = unhtml(&field_value(&grid.body, "back").expect("a way back"));
    let reply = tina
        .post(
            "/promotions/M/publish",
            &[
                ("subject", "Physics"),
                ("label", "Lab"),
                ("back", &back),
                ("csrf", &csrf),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), Some(back.as_str()));
    let grid = follow(&mut tina, &reply).await;
    assert!(grid.body.contains("1 grade published."), "{}", grid.body);

    // Lock: the promotion's grades can no longer change, from the grid
    // either.
    let reply = tina
        .post("/promotions/M/lock", &[("csrf", &csrf)])
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = follow(&mut tina, &reply).await;
    assert!(page.body.contains("The promotion is locked."));
    assert!(page.body.contains("id=\"locked-state\">Locked"));
    let shown = ok(&mut admin, "promotion.show", json!({"name": "M"})).await;
    assert_eq!(shown["locked"], true);
    let grid = tina
        .get("/promotions/M/grid?subject=Maths&label=Exam")
        .await
        .expect(StatusCode::OK);
    let fields = grid_form(&grid.body, &[(ada, "20")]);
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = tina
        .post("/promotions/M/grid", &pairs)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let exam = grades_of(&mut admin, ada).await[0]["id"].clone();
    let locked = err(
        &mut admin,
        "grade.update",
        json!({"id": exam, "value": 20}),
        "locked",
    )
    .await;
    assert!(
        alert(&refused.body).contains("<code>locked</code>"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(&html(&locked)), "{}", refused.body);
    assert_eq!(grades_of(&mut admin, ada).await[0]["value"], 12.0);
    // Publishing is a change too.
    let refused = tina
        .post("/promotions/M/publish", &[("csrf", &csrf)])
        .await
        .expect(StatusCode::CONFLICT);
    assert!(alert(&refused.body).contains("locked"));

    // Only an admin unlocks: the teacher gets the protocol's refusal.
    let refused = tina
        .post("/promotions/M/unlock", &[("csrf", &csrf)])
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(alert(&refused.body).contains("<code>forbidden</code>"));
    let mut root = Browser::signed_in(&server, "admin", ADMIN_PASSWORD).await;
    let root_csrf = root.get("/promotions/M").await.csrf();
    let reply = root
        .post("/promotions/M/unlock", &[("csrf", &root_csrf)])
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = follow(&mut root, &reply).await;
    assert!(page.body.contains("The promotion is unlocked."));
    let shown = ok(&mut admin, "promotion.show", json!({"name": "M"})).await;
    assert_eq!(shown["locked"], false);
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(
        &mut admin,
        "promotion.create",
        json!({"name": "C", "publication": "manual"}),
    )
    .await;
    let ada = student(&mut admin, "C", "Ada", "Avery").await;
    grade(&mut admin, ada, "Maths", json!(12), 1.0, "Exam").await;
    teacher_of(&mut admin, "tina", &["C"]).await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;
    let grade_field = format!("grade-{ada}");
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/promotions", vec![("name", "Sneaky")]),
        ("/promotions/C/publish", vec![("subject", "Maths")]),
        ("/promotions/C/lock", vec![]),
        (
            "/promotions/C/students",
            vec![("first_name", "Eve"), ("last_name", "X")],
        ),
        (
            "/promotions/C/grid",
            vec![
                ("subject", "Maths"),
                ("label", "Exam"),
                (grade_field.as_str(), "2"),
            ],
        ),
    ];
    for (path, mut fields) in attempts {
        for csrf in [None, Some("0123456789abcdef0123456789abcdef")] {
            if let Some(t) = csrf {
                fields.push(("csrf", t));
            }
            let reply = tina.post(path, &fields).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{path}: {}",
                reply.body
            );
        }
    }
    let import = post_file(
        &mut tina,
        "/promotions/C/import",
        &[("kind", "students"), ("action", "commit")],
        "s.csv",
        b"first_name,last_name\nEve,X\n",
    )
    .await;
    assert_eq!(import.status, StatusCode::FORBIDDEN, "{}", import.body);

    let list = ok(&mut admin, "promotion.list", json!({})).await;
    assert_eq!(list["promotions"].as_array().map(Vec::len), Some(1));
    let shown = ok(&mut admin, "promotion.show", json!({"name": "C"})).await;
    assert_eq!(shown["locked"], false);
    assert_eq!(shown["students"].as_array().map(Vec::len), Some(1));
    let grades = grades_of(&mut admin, ada).await;
    assert_eq!(grades[0]["value"], 12.0);
    assert_eq!(grades[0]["published"], false);
}

#[tokio::test]
async fn a_student_is_refused_every_teacher_page() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "S"})).await;
    let ada = student(&mut admin, "S", "Ada", "Avery").await;
    ok(
        &mut admin,
        "user.create",
        json!({"username": "ada", "password": PASSWORD, "role": "student", "student": ada}),
    )
    .await;
    let mut browser = Browser::signed_in(&server, "ada", PASSWORD).await;
    for path in [
        "/promotions",
        "/promotions/S",
        "/promotions/S?sort=name",
        "/promotions/S/grid?subject=Maths",
        "/promotions/S/import",
        "/promotions/S/export.csv",
    ] {
        let reply = browser.get(path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(reply.body.contains("forbidden"), "{path}");
    }
    let csrf = browser.get("/me").await.csrf();
    let reply = browser
        .post(
            "/promotions/S/students",
            &[("first_name", "Eve"), ("last_name", "X"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let shown = ok(&mut admin, "promotion.show", json!({"name": "S"})).await;
    assert_eq!(shown["students"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn an_import_preview_writes_nothing_and_a_commit_writes() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "I"})).await;
    teacher_of(&mut admin, "tina", &["I"]).await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;
    let form = tina
        .get("/promotions/I/import")
        .await
        .expect(StatusCode::OK);
    assert!(form.body.contains(
        "<form id=\"import\" method=\"post\" action=\"/promotions/I/import\" enctype=\"multipart/form-data\""
    ));
    assert!(form.body.contains("name=\"action\" value=\"preview\""));
    assert!(form.body.contains("name=\"action\" value=\"commit\""));
    let csrf = form.csrf();
    let count = |v: &Value| v["students"].as_array().map_or(0, Vec::len);

    let students = "nom;prénom;numéro\nAvery;Ada;1001\nBaker;Bob;1002\n";
    let preview = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("kind", "students"), ("action", "preview")],
        "students.csv",
        students.as_bytes(),
    )
    .await
    .expect(StatusCode::OK);
    let report = table(&preview.body, "import-preview");
    assert!(
        report.contains("Avery") && report.contains("Baker"),
        "{report}"
    );
    assert!(
        preview.body.contains("id=\"import-added\">2<"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("Nothing was changed."));
    assert_eq!(
        count(&ok(&mut admin, "student.list", json!({"promotion": "I"})).await),
        0
    );

    // The preview's page imports what it showed without the file again.
    assert!(preview.body.contains("<form id=\"import-commit\""));
    let open = field_value(&preview.body, "import").expect("the open import");
    let committed = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("import", &open), ("action", "commit")],
        "",
        b"",
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        committed.body.contains("The import was written."),
        "{}",
        committed.body
    );
    assert!(
        committed.body.contains("id=\"import-added\">2<"),
        "{}",
        committed.body
    );
    let list = ok(&mut admin, "student.list", json!({"promotion": "I"})).await;
    assert_eq!(count(&list), 2);
    // Once: the import is closed by its commit (to a teacher, an import
    // that is not theirs to commit is forbidden, whatever the reason).
    let again = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("import", &open), ("action", "commit")],
        "",
        b"",
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    assert!(
        alert(&again.body).contains("no such target"),
        "{}",
        again.body
    );
    // The same file sent again adds nothing.
    let twice = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("kind", "students"), ("action", "commit")],
        "students.csv",
        students.as_bytes(),
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        twice.body.contains("id=\"import-added\">0<"),
        "{}",
        twice.body
    );
    assert_eq!(
        count(&ok(&mut admin, "student.list", json!({"promotion": "I"})).await),
        2
    );

    // Grades, with a bad line: the preview lists it with the protocol's
    // message; the commit refuses the whole file.
    let grades =
        "number,subject,value,coefficient,label\n1001,Maths,15,2,Exam\n1002,Maths,45,2,Exam\n";
    let preview = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("kind", "grades"), ("action", "preview")],
        "grades.csv",
        grades.as_bytes(),
    )
    .await
    .expect(StatusCode::OK);
    let report = table(&preview.body, "import-preview");
    assert!(
        report.contains("class=\"bad-line\" data-line=\"3\""),
        "{report}"
    );
    assert!(report.contains("data-line=\"2\""), "{report}");
    let bad_line = report.split("data-line=\"3\"").nth(1).unwrap_or_default();
    assert!(bad_line.contains("class=\"error\""), "{bad_line}");
    assert!(preview.body.contains("id=\"import-bad\">1<"));
    let ada = list["students"][0]["id"].as_i64().expect("an id");
    let bob = list["students"][1]["id"].as_i64().expect("an id");
    assert!(grades_of(&mut admin, ada).await.is_empty());

    let refused = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("kind", "grades"), ("action", "commit")],
        "grades.csv",
        grades.as_bytes(),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        alert(&refused.body).contains("nothing was changed"),
        "{}",
        refused.body
    );
    assert!(table(&refused.body, "import-preview").contains("data-line=\"3\""));
    assert!(grades_of(&mut admin, ada).await.is_empty());

    // With "import the good lines", the good one is written.
    let partial = post_file(
        &mut tina,
        "/promotions/I/import",
        &[
            ("csrf", &csrf),
            ("kind", "grades"),
            ("action", "commit"),
            ("skip_bad", "on"),
        ],
        "grades.csv",
        grades.as_bytes(),
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        partial.body.contains("id=\"import-added\">1<"),
        "{}",
        partial.body
    );
    let written = grades_of(&mut admin, ada).await;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["value"], 15.0);
    assert_eq!(written[0]["coefficient"], 2.0);
    assert!(grades_of(&mut admin, bob).await.is_empty());

    // A file that is not a table, and a header the server does not know.
    let unreadable = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("kind", "students"), ("action", "preview")],
        "broken.xlsx",
        b"PK\x03\x04 not really a workbook",
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(alert(&unreadable.body).contains("broken.xlsx"));
    let unknown = post_file(
        &mut tina,
        "/promotions/I/import",
        &[("csrf", &csrf), ("kind", "students"), ("action", "preview")],
        "odd.csv",
        b"first_name,last_name,shoe_size\nA,B,42\n",
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        alert(&unknown.body).contains("shoe_size"),
        "{}",
        unknown.body
    );
}

#[tokio::test]
async fn an_upload_is_bounded_by_the_server_s_import_limit() {
    let limits = gradebook_server::Limits {
        max_import_bytes: 4096,
        ..gradebook_server::Limits::default()
    };
    let server = TestServer::start_with(gradebook_server::TlsMode::Off, limits).await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "L"})).await;
    teacher_of(&mut admin, "tina", &["L"]).await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;
    let csrf = tina.get("/promotions/L/import").await.csrf();
    let mut file = b"first_name,last_name\n".to_vec();
    while file.len() < 200 * 1024 {
        file.extend_from_slice(b"Ada,Lovelace\n");
    }
    let reply = post_file(
        &mut tina,
        "/promotions/L/import",
        &[("csrf", &csrf), ("kind", "students"), ("action", "commit")],
        "big.csv",
        &file,
    )
    .await
    .expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(alert(&reply.body).contains("too_large"), "{}", reply.body);
    let list = ok(&mut admin, "student.list", json!({"promotion": "L"})).await;
    assert_eq!(list["students"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn an_xlsx_workbook_is_imported() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "X"})).await;
    teacher_of(&mut admin, "tina", &["X"]).await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;
    let csrf = tina.get("/promotions/X/import").await.csrf();

    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, text) in ["Prénom", "Nom", "Numéro"].iter().enumerate() {
        sheet.write_string(0, col as u16, *text).expect("a header");
    }
    sheet.write_string(1, 0, "Élodie").expect("a cell");
    sheet.write_string(1, 1, "Lefèvre").expect("a cell");
    sheet.write_number(1, 2, 2026017.0).expect("a cell");
    let bytes = book.save_to_buffer().expect("a workbook");

    let preview = post_file(
        &mut tina,
        "/promotions/X/import",
        &[("csrf", &csrf), ("kind", "students"), ("action", "preview")],
        "class.xlsx",
        &bytes,
    )
    .await
    .expect(StatusCode::OK);
    assert!(table(&preview.body, "import-preview").contains("Lefèvre"));
    let list = ok(&mut admin, "student.list", json!({"promotion": "X"})).await;
    assert_eq!(list["students"].as_array().map(Vec::len), Some(0));
    post_file(
        &mut tina,
        "/promotions/X/import",
        &[("csrf", &csrf), ("kind", "students"), ("action", "commit")],
        "class.xlsx",
        &bytes,
    )
    .await
    .expect(StatusCode::OK);
    let list = ok(&mut admin, "student.list", json!({"promotion": "X"})).await;
    assert_eq!(list["students"][0]["last_name"], "Lefèvre");
    assert_eq!(list["students"][0]["number"], "2026017");
}

#[tokio::test]
async fn the_export_is_the_promotion_as_csv() {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    ok(&mut admin, "promotion.create", json!({"name": "Réseaux 1"})).await;
    let ada = student(&mut admin, "Réseaux 1", "Ada", "Avery").await;
    let bob = student(&mut admin, "Réseaux 1", "Bob", "Baker").await;
    grade(&mut admin, ada, "Maths", json!(14.5), 2.0, "Exam").await;
    grade(&mut admin, ada, "Physics", json!("ABS"), 1.0, "Lab").await;
    teacher_of(&mut admin, "tina", &["Réseaux 1"]).await;
    let mut tina = Browser::signed_in(&server, "tina", PASSWORD).await;

    let page = tina
        .get("/promotions/R%C3%A9seaux%201")
        .await
        .expect(StatusCode::OK);
    assert!(
        page.body
            .contains("href=\"/promotions/R%C3%A9seaux%201/export.csv\"")
    );
    let csv = tina
        .get("/promotions/R%C3%A9seaux%201/export.csv")
        .await
        .expect(StatusCode::OK);
    let h = |name: &str| {
        csv.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(h("content-type").starts_with("text/csv"));
    assert!(
        h("content-disposition").starts_with("attachment;"),
        "{}",
        h("content-disposition")
    );
    assert!(h("content-disposition").contains("filename*=UTF-8''R%C3%A9seaux%201.csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    let expected = [
        "student,last_name,first_name,number,email,subject,value,coefficient,label".to_owned(),
        format!("{ada},Avery,Ada,,,Maths,14.5,2,Exam"),
        format!("{ada},Avery,Ada,,,Physics,ABS,1,Lab"),
        format!("{bob},Baker,Bob,,,,,,"),
    ];
    assert_eq!(
        lines,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Sorted by name: Avery before Baker whatever the ids.
    let fr = tina
        .get("/promotions/R%C3%A9seaux%201/export.csv?format=fr")
        .await
        .expect(StatusCode::OK);
    assert!(
        fr.body.starts_with("\u{feff}student;last_name"),
        "{}",
        fr.body
    );
    assert!(fr.body.contains(";Maths;14,5;2;Exam"));
}
