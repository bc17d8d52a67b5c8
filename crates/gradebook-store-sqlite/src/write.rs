//! The SQLite writes, as the writer thread ([`crate::writer`]) runs them:
//! synchronous, on the batch's transaction, each inside its own savepoint.
//! An error returned here undoes the write's changes only.
//!
//! Placeholders are `$1`, `$2`… as in the reads. SQLite numbers them by
//! first appearance, and every statement here names them in increasing
//! order, so positional parameters bind as numbered.

use gradebook_core::{Grade, Promotion, Student, User};
use rusqlite::{OptionalExtension, Transaction, params};

use gradebook_store::{
    Change, Diff, GradePatch, GradeSelection, GrantRecord, Home, NewGrade, NewStudent,
    PromotionPatch, PromotionRecord, SessionEnd, StoreError, StudentPatch, StudentRecord,
    UserRecord,
};

use crate::error::{Error, Result, is_unique_violation};
use crate::log::Tx;
use crate::{
    GradeRow, no_grade, no_promotion, no_student, no_user, number_taken, role_from_db,
    student_from_row,
};
use gradebook_store::throttle::Strikes;

/// What a write is told (who, when, its UDP request), owned by the writer.
pub(crate) use gradebook_store::OwnedContext as Context;

/// Turns a unique-constraint violation into `conflict` with `message`.
fn conflict_on_unique(e: rusqlite::Error, message: impl FnOnce() -> String) -> Error {
    if is_unique_violation(&e) {
        StoreError::Conflict(message()).into()
    } else {
        Error::Sqlite(e)
    }
}

fn promotion_id(tx: &Transaction<'_>, name: &str) -> Result<i64> {
    tx.prepare_cached("SELECT id FROM promotions WHERE name = $1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| no_promotion(name).into())
}

/// A promotion as the log records it, by name.
fn promotion_record(tx: &Transaction<'_>, name: &str) -> Result<PromotionRecord> {
    tx.prepare_cached(
        "SELECT id, name, year, description, created_by, publication, locked \
         FROM promotions WHERE name = $1",
    )?
    .query_row([name], crate::promotion_from_row)
    .optional()?
    .ok_or_else(|| no_promotion(name))?
}

/// Reads a [`Home`] from `id, name, publication, locked`.
fn home_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Home>> {
    let (id, name, publication, locked): (i64, String, String, bool) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
    Ok(gradebook_store::stored_publication(&publication)
        .map(|publication| Home {
            id,
            name,
            publication,
            locked,
        })
        .map_err(Into::into))
}

/// The promotion named `name`.
fn home(tx: &Transaction<'_>, name: &str) -> Result<Home> {
    tx.prepare_cached("SELECT id, name, publication, locked FROM promotions WHERE name = $1")?
        .query_row([name], home_from_row)
        .optional()?
        .ok_or_else(|| no_promotion(name))?
}

/// The promotion of student `id`; `not_found` if there is no such student.
fn home_of_student(tx: &Transaction<'_>, id: i64) -> Result<Home> {
    tx.prepare_cached(
        "SELECT p.id, p.name, p.publication, p.locked FROM students s \
         JOIN promotions p ON p.id = s.promotion_id WHERE s.id = $1",
    )?
    .query_row([id], home_from_row)
    .optional()?
    .ok_or_else(|| no_student(id))?
}

fn user_id(tx: &Transaction<'_>, username: &str) -> Result<i64> {
    tx.prepare_cached("SELECT id FROM users WHERE username = $1")?
        .query_row([username], |r| r.get(0))
        .optional()?
        .ok_or_else(|| no_user(username).into())
}

fn student(tx: &Transaction<'_>, id: i64) -> Result<Student> {
    tx.prepare_cached(concat!(
        "SELECT ",
        student_columns!(),
        " FROM students s JOIN promotions p ON p.id = s.promotion_id \
         WHERE s.id = $1"
    ))?
    .query_row([id], student_from_row)
    .optional()?
    .ok_or_else(|| no_student(id).into())
}

fn grade(tx: &Transaction<'_>, id: i64) -> Result<Grade> {
    let row = tx
        .prepare_cached(concat!(
            "SELECT ",
            grade_columns!(),
            " FROM grades g WHERE g.id = $1"
        ))?
        .query_row([id], GradeRow::read)
        .optional()?
        .ok_or_else(|| no_grade(id))?;
    row.into_grade()
}

/// Records the UDP request a write was made for, with its reply data, in
/// the write's savepoint (see [`gradebook_store::RequestKey`]). Called last, once the
/// result is known. On error the write is undone; a duplicate is reported
/// only after the batch commits, so the first copy, and its recorded reply,
/// is durable by then.
fn record_request<T: serde::Serialize>(
    tx: &Transaction<'_>,
    ctx: &Context,
    result: &T,
) -> Result<()> {
    let Some(row) = ctx.request_row(result)? else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO udp_requests (session, request_id, at, reply) VALUES ($1, $2, $3, $4)",
    )?
    .execute(params![row.session, row.id, ctx.at, row.reply])
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Duplicate.into()
        } else {
            Error::Sqlite(e)
        }
    })?;
    Ok(())
}

/// The reply data of a write that returns nothing: `{}`.
fn nothing() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Logs the removal of each grade that `query` (keyed by `key`) selects,
/// grades of promotion `promotion`, under `command`, the command that takes
/// them away: deleting a student or a promotion leaves a trace of every
/// grade it removed (protocol §4). Run before the deletion.
fn log_grade_removals(
    tx: &Tx<'_>,
    ctx: &Context,
    command: &str,
    (query, key): (&'static str, i64),
    promotion: i64,
) -> Result<()> {
    let rows = tx
        .prepare_cached(query)?
        .query_map([key], GradeRow::read)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for row in rows {
        tx.append_grade(ctx, command, Diff::removed(row.into_grade()?), promotion)?;
    }
    Ok(())
}

/// A student as the log records it.
fn student_record(tx: &Transaction<'_>, id: i64) -> Result<StudentRecord> {
    let promotion_id = tx
        .prepare_cached("SELECT promotion_id FROM students WHERE id = $1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| no_student(id))?;
    Ok(StudentRecord {
        promotion_id,
        student: student(tx, id)?,
    })
}

/// An account as the log records it.
fn user_record(tx: &Transaction<'_>, username: &str) -> Result<UserRecord> {
    let (id, role, student): (i64, String, Option<i64>) = tx
        .prepare_cached("SELECT id, role, student_id FROM users WHERE username = $1")?
        .query_row([username], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or_else(|| no_user(username))?;
    Ok(UserRecord {
        id,
        username: username.to_owned(),
        role: role_from_db(&role)?,
        student,
    })
}

const LINKED_IN_PROMOTION: &str = "SELECT u.username FROM users u \
     JOIN students s ON s.id = u.student_id WHERE s.promotion_id = $1 LIMIT 1";
const LINKED_TO_STUDENT: &str = "SELECT u.username FROM users u \
     JOIN students s ON s.id = u.student_id WHERE s.id = $1 LIMIT 1";

/// Refuses to delete students that a student account still points to.
fn check_no_linked_account(tx: &Transaction<'_>, query: &'static str, key: i64) -> Result<()> {
    let linked: Option<String> = tx
        .prepare_cached(query)?
        .query_row([key], |r| r.get(0))
        .optional()?;
    match linked {
        Some(u) => Err(StoreError::Conflict(format!(
            "the account '{u}' is linked to this student: delete the account first"
        ))
        .into()),
        None => Ok(()),
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

// Accounts and sessions.

pub(crate) fn user_create(
    tx: &Tx<'_>,
    user: &User,
    password_hash: &str,
    ctx: &Context,
) -> Result<User> {
    if let Some(id) = user.student {
        student(tx, id)?;
    }
    tx.prepare_cached(
        "INSERT INTO users (username, password_hash, role, student_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )?
    .execute(params![
        user.username,
        password_hash,
        user.role.as_str(),
        user.student,
        ctx.at
    ])
    .map_err(|e| {
        conflict_on_unique(e, || {
            format!(
                "a user named '{}' already exists",
                user.username.escape_debug()
            )
        })
    })?;
    let record = UserRecord {
        id: tx.last_insert_rowid(),
        username: user.username.clone(),
        role: user.role,
        student: user.student,
    };
    tx.append(ctx, "user.create", Change::User(Diff::added(record)))?;
    record_request(tx, ctx, user)?;
    Ok(user.clone())
}

pub(crate) fn user_delete(tx: &Tx<'_>, username: &str, ctx: &Context) -> Result<()> {
    let old = user_record(tx, username)?;
    tx.prepare_cached("DELETE FROM users WHERE id = $1")?
        .execute([old.id])?;
    tx.append(ctx, "user.delete", Change::User(Diff::removed(old)))?;
    record_request(tx, ctx, &nothing())
}

pub(crate) fn user_set_password(
    tx: &Tx<'_>,
    username: &str,
    password_hash: &str,
    ctx: &Context,
) -> Result<()> {
    let user = user_record(tx, username)?;
    tx.prepare_cached("UPDATE users SET password_hash = $1 WHERE id = $2")?
        .execute(params![password_hash, user.id])?;
    tx.prepare_cached("DELETE FROM sessions WHERE user_id = $1")?
        .execute([user.id])?;
    // The entry says that the password changed, never what to.
    let change = Diff::updated(user.clone(), user);
    tx.append(ctx, "user.password", Change::User(change))?;
    record_request(tx, ctx, &nothing())
}

pub(crate) fn session_create(
    tx: &Tx<'_>,
    token_hash: &[u8],
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at) \
         VALUES ($1, $2, $3, $3, $4)",
    )?
    .execute(params![token_hash, user_id, now, expires_at])?;
    Ok(())
}

pub(crate) fn session_touch(tx: &Tx<'_>, token_hash: &[u8], now: i64) -> Result<()> {
    tx.prepare_cached("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2")?
        .execute(params![now, token_hash])?;
    Ok(())
}

pub(crate) fn session_delete(tx: &Tx<'_>, token_hash: &[u8], ctx: &Context) -> Result<()> {
    let user: Option<i64> = tx
        .prepare_cached("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id")?
        .query_row([token_hash], |r| r.get(0))
        .optional()?;
    // Logged, so that every server sharing the data drops it too.
    if let Some(user) = user {
        let end = SessionEnd {
            user,
            token_sha256: hex::encode(token_hash),
        };
        tx.append(ctx, "auth.logout", Change::Session(Diff::removed(end)))?;
    }
    record_request(tx, ctx, &nothing())
}

pub(crate) fn sessions_purge(tx: &Tx<'_>, now: i64, idle_before: i64) -> Result<u64> {
    let deleted = tx
        .prepare_cached("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen < $2")?
        .execute([now, idle_before])?;
    Ok(count(deleted))
}

// Promotions.

pub(crate) fn promotion_create(
    tx: &Tx<'_>,
    promotion: &Promotion,
    created_by: Option<i64>,
    ctx: &Context,
) -> Result<Promotion> {
    tx.prepare_cached(
        "INSERT INTO promotions (name, year, description, created_by, created_at, publication) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )?
    .execute(params![
        promotion.name,
        promotion.year,
        promotion.description,
        created_by,
        ctx.at,
        promotion.publication.as_str(),
    ])
    .map_err(|e| {
        conflict_on_unique(e, || {
            format!(
                "a promotion named '{}' already exists",
                promotion.name.escape_debug()
            )
        })
    })?;
    let record = PromotionRecord {
        id: tx.last_insert_rowid(),
        name: promotion.name.clone(),
        year: promotion.year,
        description: promotion.description.clone(),
        created_by,
        publication: promotion.publication,
        locked: false,
    };
    tx.append(
        ctx,
        "promotion.create",
        Change::Promotion(Diff::added(record)),
    )?;
    record_request(tx, ctx, promotion)?;
    Ok(promotion.clone())
}

pub(crate) fn promotion_delete(tx: &Tx<'_>, name: &str, force: bool, ctx: &Context) -> Result<()> {
    let old = promotion_record(tx, name)?;
    if old.locked {
        return Err(gradebook_store::locked(name).into());
    }
    let id = old.id;
    let students: Vec<i64> = tx
        .prepare_cached("SELECT id FROM students WHERE promotion_id = $1 ORDER BY id")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if !students.is_empty() && !force {
        return Err(StoreError::Conflict(format!(
            "promotion '{}' has {} student(s): remove them first, or pass force",
            name.escape_debug(),
            students.len()
        ))
        .into());
    }
    check_no_linked_account(tx, LINKED_IN_PROMOTION, id)?;
    const COMMAND: &str = "promotion.delete";
    log_grade_removals(
        tx,
        ctx,
        COMMAND,
        (
            concat!(
                "SELECT ",
                grade_columns!(),
                " FROM grades g JOIN students s ON s.id = g.student_id \
                 WHERE s.promotion_id = $1 ORDER BY g.id"
            ),
            id,
        ),
        id,
    )?;
    for student in students {
        let record = student_record(tx, student)?;
        tx.append(ctx, COMMAND, Change::Student(Diff::removed(record)))?;
    }
    tx.prepare_cached("DELETE FROM promotions WHERE id = $1")?
        .execute([id])?;
    tx.append(ctx, COMMAND, Change::Promotion(Diff::removed(old)))?;
    record_request(tx, ctx, &nothing())
}

/// The promotion as clients see it, from its record.
fn promotion_reply(tx: &Transaction<'_>, record: &PromotionRecord) -> Result<Promotion> {
    let students: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM students WHERE promotion_id = $1")?
        .query_row([record.id], |r| r.get(0))?;
    Ok(gradebook_store::promotion_of_record(record, students))
}

/// Writes a promotion's changed record and logs it under `command`; a
/// record unchanged is neither written nor logged.
fn promotion_save(
    tx: &Tx<'_>,
    old: PromotionRecord,
    new: PromotionRecord,
    command: &str,
    ctx: &Context,
) -> Result<Promotion> {
    if new != old {
        tx.prepare_cached(
            "UPDATE promotions SET year = $1, description = $2, publication = $3, locked = $4 \
             WHERE id = $5",
        )?
        .execute(params![
            new.year,
            new.description,
            new.publication.as_str(),
            new.locked,
            new.id
        ])?;
        tx.append(
            ctx,
            command,
            Change::Promotion(Diff::updated(old, new.clone())),
        )?;
    }
    let promotion = promotion_reply(tx, &new)?;
    record_request(tx, ctx, &promotion)?;
    Ok(promotion)
}

pub(crate) fn promotion_update(
    tx: &Tx<'_>,
    name: &str,
    patch: &PromotionPatch,
    ctx: &Context,
) -> Result<Promotion> {
    let old = promotion_record(tx, name)?;
    let new = patch.apply(&old);
    promotion_save(tx, old, new, "promotion.update", ctx)
}

pub(crate) fn promotion_lock(
    tx: &Tx<'_>,
    name: &str,
    locked: bool,
    ctx: &Context,
) -> Result<Promotion> {
    let old = promotion_record(tx, name)?;
    let new = PromotionRecord {
        locked,
        ..old.clone()
    };
    let command = if locked {
        "promotion.lock"
    } else {
        "promotion.unlock"
    };
    promotion_save(tx, old, new, command, ctx)
}

pub(crate) fn grades_publish(
    tx: &Tx<'_>,
    promotion: &str,
    selection: &GradeSelection,
    published: bool,
    ctx: &Context,
) -> Result<u64> {
    let home = home(tx, promotion)?.unlocked()?;
    let rows = tx
        .prepare_cached(concat!(
            "SELECT ",
            grade_columns!(),
            " FROM grades g JOIN students s ON s.id = g.student_id \
             WHERE s.promotion_id = $1 ORDER BY g.id"
        ))?
        .query_map([home.id], GradeRow::read)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let grades = rows
        .into_iter()
        .map(GradeRow::into_grade)
        .collect::<Result<Vec<_>>>()?;
    let chosen = selection.choose(&grades, promotion)?;
    let command = if published {
        "grade.publish"
    } else {
        "grade.unpublish"
    };
    let mut changed = 0;
    for old in chosen.into_iter().filter(|g| g.published != published) {
        tx.prepare_cached("UPDATE grades SET published = $1 WHERE id = $2")?
            .execute(params![published, old.id])?;
        let new = Grade {
            published,
            ..old.clone()
        };
        tx.append_grade(ctx, command, Diff::updated(old.clone(), new), home.id)?;
        changed += 1;
    }
    record_request(tx, ctx, &gradebook_core::Changed { changed })?;
    Ok(changed)
}

/// Grants a promotion to a teacher (`given`) or takes the grant away; a
/// grant already as asked changes nothing and logs nothing.
pub(crate) fn promotion_grant(
    tx: &Tx<'_>,
    name: &str,
    username: &str,
    given: bool,
    ctx: &Context,
) -> Result<()> {
    let grant = GrantRecord {
        promotion: promotion_id(tx, name)?,
        user: user_id(tx, username)?,
    };
    let (sql, command) = if given {
        (
            "INSERT INTO grants (promotion_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (promotion_id, user_id) DO NOTHING",
            "promotion.grant",
        )
    } else {
        (
            "DELETE FROM grants WHERE promotion_id = $1 AND user_id = $2",
            "promotion.revoke",
        )
    };
    let changed = tx
        .prepare_cached(sql)?
        .execute([grant.promotion, grant.user])?;
    if changed > 0 {
        let diff = if given {
            Diff::added(grant)
        } else {
            Diff::removed(grant)
        };
        tx.append(ctx, command, Change::Grant(diff))?;
    }
    record_request(tx, ctx, &nothing())
}

// Students.

/// Inserts a student into promotion `pid` and gives back its record.
fn insert_student(
    tx: &Tx<'_>,
    pid: i64,
    promotion: &str,
    new: &NewStudent,
    ctx: &Context,
) -> rusqlite::Result<StudentRecord> {
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO students (promotion_id, first_name, last_name, number, email, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )?
        .query_row(
            params![
                pid,
                new.first_name,
                new.last_name,
                new.number,
                new.email,
                ctx.at
            ],
            |r| r.get(0),
        )?;
    Ok(StudentRecord {
        promotion_id: pid,
        student: Student {
            id,
            first_name: new.first_name.clone(),
            last_name: new.last_name.clone(),
            number: new.number.clone(),
            email: new.email.clone(),
            promotion: promotion.to_owned(),
        },
    })
}

pub(crate) fn student_add(
    tx: &Tx<'_>,
    promotion: &str,
    new: &NewStudent,
    ctx: &Context,
) -> Result<Student> {
    let pid = home(tx, promotion)?.unlocked()?.id;
    let record = insert_student(tx, pid, promotion, new, ctx)
        .map_err(|e| conflict_on_unique(e, || number_taken(new.number.as_deref())))?;
    let s = record.student.clone();
    tx.append(ctx, "student.add", Change::Student(Diff::added(record)))?;
    record_request(tx, ctx, &s)?;
    Ok(s)
}

pub(crate) fn student_update(
    tx: &Tx<'_>,
    id: i64,
    patch: &StudentPatch,
    ctx: &Context,
) -> Result<Student> {
    let old = student_record(tx, id)?;
    home_of_student(tx, id)?.unlocked()?;
    let mut new = old.clone();
    if let Some(p) = &patch.promotion {
        new.promotion_id = home(tx, p)?.unlocked()?.id;
        new.student.promotion = p.clone();
    }
    let s = &mut new.student;
    if let Some(v) = &patch.first_name {
        s.first_name = v.clone();
    }
    if let Some(v) = &patch.last_name {
        s.last_name = v.clone();
    }
    if let Some(v) = &patch.number {
        s.number = v.clone();
    }
    if let Some(v) = &patch.email {
        s.email = v.clone();
    }
    tx.prepare_cached(
        "UPDATE students SET first_name = $1, last_name = $2, number = $3, email = $4, \
         promotion_id = $5 WHERE id = $6",
    )?
    .execute(params![
        s.first_name,
        s.last_name,
        s.number,
        s.email,
        new.promotion_id,
        id
    ])
    .map_err(|e| conflict_on_unique(e, || number_taken(s.number.as_deref())))?;
    let s = new.student.clone();
    tx.append(
        ctx,
        "student.update",
        Change::Student(Diff::updated(old, new)),
    )?;
    record_request(tx, ctx, &s)?;
    Ok(s)
}

pub(crate) fn student_remove(tx: &Tx<'_>, id: i64, ctx: &Context) -> Result<()> {
    let old = student_record(tx, id)?;
    home_of_student(tx, id)?.unlocked()?;
    check_no_linked_account(tx, LINKED_TO_STUDENT, id)?;
    const COMMAND: &str = "student.remove";
    log_grade_removals(
        tx,
        ctx,
        COMMAND,
        (
            concat!(
                "SELECT ",
                grade_columns!(),
                " FROM grades g WHERE g.student_id = $1 ORDER BY g.id"
            ),
            id,
        ),
        old.promotion_id,
    )?;
    tx.prepare_cached("DELETE FROM students WHERE id = $1")?
        .execute([id])?;
    tx.append(ctx, COMMAND, Change::Student(Diff::removed(old)))?;
    record_request(tx, ctx, &nothing())
}

// Grades.

/// Inserts a grade (its student exists) and gives it back with its id.
fn insert_grade(
    tx: &Tx<'_>,
    new: &NewGrade,
    published: bool,
    ctx: &Context,
) -> rusqlite::Result<Grade> {
    tx.prepare_cached(
        "INSERT INTO grades (student_id, subject, value, coefficient, label, created_at, \
         published) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )?
    .execute(params![
        new.student,
        new.subject,
        new.value.to_code(),
        i64::from(new.coefficient.hundredths()),
        new.label,
        ctx.at,
        published
    ])?;
    Ok(Grade {
        id: tx.last_insert_rowid(),
        student: new.student,
        subject: new.subject.clone(),
        value: new.value,
        coefficient: new.coefficient,
        label: new.label.clone(),
        published,
    })
}

pub(crate) fn grade_add(tx: &Tx<'_>, new: &NewGrade, ctx: &Context) -> Result<Grade> {
    let home = home_of_student(tx, new.student)?.unlocked()?;
    let g = insert_grade(tx, new, home.publication.publishes_new_grades(), ctx)?;
    tx.append_grade(ctx, "grade.add", Diff::added(g.clone()), home.id)?;
    record_request(tx, ctx, &g)?;
    Ok(g)
}

pub(crate) fn grade_update(
    tx: &Tx<'_>,
    id: i64,
    patch: &GradePatch,
    ctx: &Context,
) -> Result<Grade> {
    let old = grade(tx, id)?;
    let home = home_of_student(tx, old.student)?.unlocked()?;
    let mut g = old.clone();
    if let Some(v) = patch.value {
        g.value = v;
    }
    if let Some(c) = patch.coefficient {
        g.coefficient = c;
    }
    if let Some(s) = &patch.subject {
        g.subject = s.clone();
    }
    if let Some(l) = &patch.label {
        g.label = l.clone();
    }
    tx.prepare_cached(
        "UPDATE grades SET subject = $1, value = $2, coefficient = $3, label = $4 WHERE id = $5",
    )?
    .execute(params![
        g.subject,
        g.value.to_code(),
        i64::from(g.coefficient.hundredths()),
        g.label,
        id
    ])?;
    tx.append_grade(ctx, "grade.update", Diff::updated(old, g.clone()), home.id)?;
    record_request(tx, ctx, &g)?;
    Ok(g)
}

pub(crate) fn grade_delete(tx: &Tx<'_>, id: i64, ctx: &Context) -> Result<()> {
    let old = grade(tx, id)?;
    let home = home_of_student(tx, old.student)?.unlocked()?;
    tx.prepare_cached("DELETE FROM grades WHERE id = $1")?
        .execute([id])?;
    tx.append_grade(ctx, "grade.delete", Diff::removed(old), home.id)?;
    record_request(tx, ctx, &nothing())
}

// Imports: every row in the one savepoint of the write, so a failing row
// undoes them all.

pub(crate) fn import_students(
    tx: &Tx<'_>,
    promotion: &str,
    students: &[(u64, NewStudent)],
    ctx: &Context,
) -> Result<u64> {
    let pid = home(tx, promotion)?.unlocked()?.id;
    for (line, s) in students {
        let record = insert_student(tx, pid, promotion, s, ctx).map_err(|e| {
            conflict_on_unique(e, || {
                format!("line {line}: {}", number_taken(s.number.as_deref()))
            })
        })?;
        tx.append(ctx, "student.add", Change::Student(Diff::added(record)))?;
    }
    let added = count(students.len());
    record_request(tx, ctx, &nothing())?;
    Ok(added)
}

pub(crate) fn import_grades(tx: &Tx<'_>, grades: &[(u64, NewGrade)], ctx: &Context) -> Result<u64> {
    let mut homes: std::collections::HashMap<i64, Home> = std::collections::HashMap::new();
    for (line, new) in grades {
        let home = match homes.get(&new.student) {
            Some(h) => h.clone(),
            None => {
                let h = home_of_student(tx, new.student)
                    .map_err(|e| match e {
                        Error::Store(StoreError::NotFound(_)) => StoreError::Conflict(format!(
                            "line {line}: student {} was removed during the import",
                            new.student
                        ))
                        .into(),
                        other => other,
                    })?
                    .unlocked()?;
                homes.insert(new.student, h.clone());
                h
            }
        };
        let published = home.publication.publishes_new_grades();
        let g = insert_grade(tx, new, published, ctx).map_err(|e| match e.sqlite_error_code() {
            // The student was removed since the import was checked.
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(format!(
                "line {line}: student {} was removed during the import",
                new.student
            ))
            .into(),
            _ => Error::Sqlite(e),
        })?;
        tx.append_grade(ctx, "grade.add", Diff::added(g), home.id)?;
    }
    let added = count(grades.len());
    record_request(tx, ctx, &nothing())?;
    Ok(added)
}

// UDP requests.

pub(crate) fn requests_purge(tx: &Tx<'_>, before: i64) -> Result<u64> {
    let deleted = tx
        .prepare_cached("DELETE FROM udp_requests WHERE at < $1")?
        .execute([before])?;
    Ok(count(deleted))
}

// Login throttling (no change-log entry: failures are not data).

pub(crate) fn login_failed(tx: &Tx<'_>, keys: &[String], now: i64) -> Result<()> {
    for key in keys {
        let previous = tx
            .prepare_cached(
                "SELECT window_start, count, blocked_until FROM login_failures WHERE key = $1",
            )?
            .query_row([key], |r| {
                Ok(Strikes {
                    window_start: r.get(0)?,
                    count: r.get(1)?,
                    blocked_until: r.get(2)?,
                })
            })
            .optional()?;
        let s = Strikes::after_failure(previous, now);
        tx.prepare_cached(
            "INSERT INTO login_failures (key, window_start, count, blocked_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
             window_start = excluded.window_start, count = excluded.count, \
             blocked_until = excluded.blocked_until",
        )?
        .execute(params![key, s.window_start, s.count, s.blocked_until])?;
    }
    Ok(())
}

pub(crate) fn login_succeeded(tx: &Tx<'_>, key: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM login_failures WHERE key = $1")?
        .execute([key])?;
    Ok(())
}

pub(crate) fn login_failures_purge(tx: &Tx<'_>, now: i64) -> Result<u64> {
    let deleted = tx
        .prepare_cached(
            "DELETE FROM login_failures WHERE COALESCE(blocked_until, window_start) < $1",
        )?
        .execute([now - 16 * gradebook_store::throttle::WINDOW])?;
    Ok(count(deleted))
}
