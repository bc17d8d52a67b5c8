//! The PostgreSQL writes, as the writer task ([`crate::writer`]) runs them:
//! on the batch's transaction, each inside its own savepoint. An error
//! returned here undoes the write's changes only.
//!
//! Each mirrors the SQLite backend's write of the same name, statement for
//! statement, so that both log the same entries and fail with the same
//! errors.

use gradebook_core::{Grade, Promotion, Student, User};

use gradebook_store::{
    Change, Diff, GradePatch, GradeSelection, GrantRecord, Home, NewGrade, NewStudent,
    PromotionPatch, PromotionRecord, SessionEnd, StoreError, StudentPatch, StudentRecord,
    UserRecord,
};

use crate::error::{Error, Result, is_constraint_violation, is_unique_violation};
use deadpool_postgres::Object;
use tokio_postgres::Row;

use crate::log::Batch;
use crate::writer::GradeJob;
use crate::{
    grade_from_row, no_grade, no_promotion, no_student, no_user, number_taken, role_from_db,
    student_from_row,
};
use gradebook_store::throttle::Strikes;

/// What a write is told (who, when, its UDP request), owned by the writer.
pub(crate) use gradebook_store::OwnedContext as Context;

/// Turns a unique-constraint violation into `conflict` with `message`.
fn conflict_on_unique(e: tokio_postgres::Error, message: impl FnOnce() -> String) -> Error {
    if is_unique_violation(&e) {
        StoreError::Conflict(message()).into()
    } else {
        Error::Postgres(e)
    }
}

async fn promotion_id(tx: &Batch, name: &str) -> Result<i64> {
    match tx
        .query_opt("SELECT id FROM promotions WHERE name = $1", &[&name])
        .await?
    {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(no_promotion(name).into()),
    }
}

/// A promotion as the log records it, by name.
async fn promotion_record(tx: &Batch, name: &str) -> Result<PromotionRecord> {
    match tx
        .query_opt(
            "SELECT id, name, year, description, created_by, publication, locked \
             FROM promotions WHERE name = $1",
            &[&name],
        )
        .await?
    {
        Some(r) => crate::promotion_from_row(&r),
        None => Err(no_promotion(name).into()),
    }
}

/// Reads a [`Home`] from `id, name, publication, locked`.
fn home_from_row(r: &tokio_postgres::Row) -> Result<Home> {
    Ok(Home {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        publication: gradebook_store::stored_publication(r.try_get(2)?)?,
        locked: r.try_get(3)?,
    })
}

/// The promotion named `name`.
async fn home(tx: &Batch, name: &str) -> Result<Home> {
    match tx
        .query_opt(
            "SELECT id, name, publication, locked FROM promotions WHERE name = $1",
            &[&name],
        )
        .await?
    {
        Some(r) => home_from_row(&r),
        None => Err(no_promotion(name).into()),
    }
}

/// The promotion of student `id`; `not_found` if there is no such student.
async fn home_of_student(tx: &Batch, id: i64) -> Result<Home> {
    match tx
        .query_opt(
            "SELECT p.id, p.name, p.publication, p.locked FROM students s \
             JOIN promotions p ON p.id = s.promotion_id WHERE s.id = $1",
            &[&id],
        )
        .await?
    {
        Some(r) => home_from_row(&r),
        None => Err(no_student(id).into()),
    }
}

async fn user_id(tx: &Batch, username: &str) -> Result<i64> {
    match tx
        .query_opt("SELECT id FROM users WHERE username = $1", &[&username])
        .await?
    {
        Some(r) => Ok(r.try_get(0)?),
        None => Err(no_user(username).into()),
    }
}

async fn student(tx: &Batch, id: i64) -> Result<Student> {
    match tx
        .query_opt(
            concat!(
                "SELECT ",
                student_columns!(),
                " FROM students s JOIN promotions p ON p.id = s.promotion_id \
                 WHERE s.id = $1"
            ),
            &[&id],
        )
        .await?
    {
        Some(r) => student_from_row(&r),
        None => Err(no_student(id).into()),
    }
}

async fn grade(tx: &Batch, id: i64) -> Result<Grade> {
    match tx
        .query_opt(
            concat!(
                "SELECT ",
                grade_columns!(),
                " FROM grades g WHERE g.id = $1"
            ),
            &[&id],
        )
        .await?
    {
        Some(r) => grade_from_row(&r),
        None => Err(no_grade(id).into()),
    }
}

/// Records the UDP request a write was made for, with its reply data, in
/// the write's savepoint (see [`gradebook_store::RequestKey`]). Called
/// last, once the result is known. On error the write is undone; a
/// duplicate is reported only after the batch commits, so the first copy,
/// and its recorded reply, is durable by then.
async fn record_request<T: serde::Serialize>(tx: &Batch, ctx: &Context, result: &T) -> Result<()> {
    let Some(row) = ctx.request_row(result)? else {
        return Ok(());
    };
    let inserted = tx
        .execute(
            "INSERT INTO udp_requests (session, request_id, at, reply) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (session, request_id) DO NOTHING",
            &[&row.session, &row.id, &ctx.at, &row.reply],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Duplicate.into());
    }
    Ok(())
}

/// The reply data of a write that returns nothing: `{}`.
fn nothing() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Logs the removal of each grade that `query` (keyed by `key`) selects,
/// under `command`, the command that takes them away: deleting a student or
/// a promotion leaves a trace of every grade it removed (protocol §4). Run
/// before the deletion, while the grades still name their promotion.
async fn log_grade_removals(
    tx: &mut Batch,
    ctx: &Context,
    command: &str,
    query: &'static str,
    key: i64,
) -> Result<()> {
    let rows = tx.query(query, &[&key]).await?;
    for row in rows {
        let g = grade_from_row(&row)?;
        tx.append(ctx, command, Change::Grade(Diff::removed(g)))
            .await?;
    }
    Ok(())
}

/// A student as the log records it.
async fn student_record(tx: &Batch, id: i64) -> Result<StudentRecord> {
    let promotion_id: i64 = match tx
        .query_opt("SELECT promotion_id FROM students WHERE id = $1", &[&id])
        .await?
    {
        Some(r) => r.try_get(0)?,
        None => return Err(no_student(id).into()),
    };
    Ok(StudentRecord {
        promotion_id,
        student: student(tx, id).await?,
    })
}

/// An account as the log records it.
async fn user_record(tx: &Batch, username: &str) -> Result<UserRecord> {
    let Some(r) = tx
        .query_opt(
            "SELECT id, role, student_id FROM users WHERE username = $1",
            &[&username],
        )
        .await?
    else {
        return Err(no_user(username).into());
    };
    let role: String = r.try_get(1)?;
    Ok(UserRecord {
        id: r.try_get(0)?,
        username: username.to_owned(),
        role: role_from_db(&role)?,
        student: r.try_get(2)?,
    })
}

const LINKED_IN_PROMOTION: &str = "SELECT u.username FROM users u \
     JOIN students s ON s.id = u.student_id WHERE s.promotion_id = $1 LIMIT 1";
const LINKED_TO_STUDENT: &str = "SELECT u.username FROM users u \
     JOIN students s ON s.id = u.student_id WHERE s.id = $1 LIMIT 1";

/// Refuses to delete students that a student account still points to.
async fn check_no_linked_account(tx: &Batch, query: &'static str, key: i64) -> Result<()> {
    match tx.query_opt(query, &[&key]).await? {
        Some(r) => {
            let u: String = r.try_get(0)?;
            Err(StoreError::Conflict(format!(
                "the account '{u}' is linked to this student: delete the account first"
            ))
            .into())
        }
        None => Ok(()),
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

// Accounts and sessions.

pub(crate) async fn user_create(
    tx: &mut Batch,
    user: &User,
    password_hash: &str,
    ctx: &Context,
) -> Result<User> {
    if let Some(id) = user.student {
        student(tx, id).await?;
    }
    let row = tx
        .query_opt(
            "INSERT INTO users (username, password_hash, role, student_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &user.username,
                &password_hash,
                &user.role.as_str(),
                &user.student,
                &ctx.at,
            ],
        )
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!(
                    "a user named '{}' already exists",
                    user.username.escape_debug()
                )
            })
        })?
        .ok_or_else(|| StoreError::Corrupt("an insert returned no id".into()))?;
    let record = UserRecord {
        id: row.try_get(0)?,
        username: user.username.clone(),
        role: user.role,
        student: user.student,
    };
    tx.append(ctx, "user.create", Change::User(Diff::added(record)))
        .await?;
    record_request(tx, ctx, user).await?;
    Ok(user.clone())
}

pub(crate) async fn user_delete(tx: &mut Batch, username: &str, ctx: &Context) -> Result<()> {
    let old = user_record(tx, username).await?;
    tx.execute("DELETE FROM users WHERE id = $1", &[&old.id])
        .await?;
    tx.append(ctx, "user.delete", Change::User(Diff::removed(old)))
        .await?;
    record_request(tx, ctx, &nothing()).await
}

pub(crate) async fn user_set_password(
    tx: &mut Batch,
    username: &str,
    password_hash: &str,
    ctx: &Context,
) -> Result<()> {
    let user = user_record(tx, username).await?;
    tx.execute(
        "UPDATE users SET password_hash = $1 WHERE id = $2",
        &[&password_hash, &user.id],
    )
    .await?;
    tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user.id])
        .await?;
    // The entry says that the password changed, never what to.
    let change = Diff::updated(user.clone(), user);
    tx.append(ctx, "user.password", Change::User(change))
        .await?;
    record_request(tx, ctx, &nothing()).await
}

pub(crate) async fn session_create(
    tx: &mut Batch,
    token_hash: &[u8],
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at) \
         VALUES ($1, $2, $3, $3, $4)",
        &[&token_hash, &user_id, &now, &expires_at],
    )
    .await?;
    Ok(())
}

pub(crate) async fn session_touch(tx: &mut Batch, token_hash: &[u8], now: i64) -> Result<()> {
    tx.execute(
        "UPDATE sessions SET last_seen = $1 WHERE token_hash = $2",
        &[&now, &token_hash],
    )
    .await?;
    Ok(())
}

pub(crate) async fn session_delete(tx: &mut Batch, token_hash: &[u8], ctx: &Context) -> Result<()> {
    let user = tx
        .query_opt(
            "DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id",
            &[&token_hash],
        )
        .await?;
    // Logged, so that every server sharing the data drops it too.
    if let Some(row) = user {
        let end = SessionEnd {
            user: row.try_get(0)?,
            token_sha256: hex(token_hash),
        };
        tx.append(ctx, "auth.logout", Change::Session(Diff::removed(end)))
            .await?;
    }
    record_request(tx, ctx, &nothing()).await
}

/// Bytes in lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn sessions_purge(tx: &mut Batch, now: i64, idle_before: i64) -> Result<u64> {
    Ok(tx
        .execute(
            "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen < $2",
            &[&now, &idle_before],
        )
        .await?)
}

// Promotions.

pub(crate) async fn promotion_create(
    tx: &mut Batch,
    promotion: Promotion,
    created_by: Option<i64>,
    ctx: &Context,
) -> Result<Promotion> {
    let row = tx
        .query_opt(
            "INSERT INTO promotions (name, year, description, created_by, created_at, \
             publication) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &promotion.name,
                &promotion.year,
                &promotion.description,
                &created_by,
                &ctx.at,
                &promotion.publication.as_str(),
            ],
        )
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!(
                    "a promotion named '{}' already exists",
                    promotion.name.escape_debug()
                )
            })
        })?
        .ok_or_else(|| StoreError::Corrupt("an insert returned no id".into()))?;
    let record = PromotionRecord {
        id: row.try_get(0)?,
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
    )
    .await?;
    record_request(tx, ctx, &promotion).await?;
    Ok(promotion)
}

pub(crate) async fn promotion_delete(
    tx: &mut Batch,
    name: &str,
    force: bool,
    ctx: &Context,
) -> Result<()> {
    let old = promotion_record(tx, name).await?;
    if old.locked {
        return Err(gradebook_store::locked(name).into());
    }
    let id = old.id;
    let students = tx
        .query(
            "SELECT id FROM students WHERE promotion_id = $1 ORDER BY id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<Vec<i64>, _>>()?;
    if !students.is_empty() && !force {
        return Err(StoreError::Conflict(format!(
            "promotion '{}' has {} student(s): remove them first, or pass force",
            name.escape_debug(),
            students.len()
        ))
        .into());
    }
    check_no_linked_account(tx, LINKED_IN_PROMOTION, id).await?;
    const COMMAND: &str = "promotion.delete";
    log_grade_removals(
        tx,
        ctx,
        COMMAND,
        concat!(
            "SELECT ",
            grade_columns!(),
            " FROM grades g JOIN students s ON s.id = g.student_id \
             WHERE s.promotion_id = $1 ORDER BY g.id"
        ),
        id,
    )
    .await?;
    for student in students {
        let record = student_record(tx, student).await?;
        tx.append(ctx, COMMAND, Change::Student(Diff::removed(record)))
            .await?;
    }
    tx.execute("DELETE FROM promotions WHERE id = $1", &[&id])
        .await?;
    tx.append(ctx, COMMAND, Change::Promotion(Diff::removed(old)))
        .await?;
    record_request(tx, ctx, &nothing()).await
}

/// The promotion as clients see it, from its record.
async fn promotion_reply(tx: &Batch, record: &PromotionRecord) -> Result<Promotion> {
    let students: i64 = tx
        .query_opt(
            "SELECT COUNT(*) FROM students WHERE promotion_id = $1",
            &[&record.id],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    Ok(gradebook_store::promotion_of_record(record, students))
}

/// Writes a promotion's changed record and logs it under `command`; a
/// record unchanged is neither written nor logged.
async fn promotion_save(
    tx: &mut Batch,
    old: PromotionRecord,
    new: PromotionRecord,
    command: &str,
    ctx: &Context,
) -> Result<Promotion> {
    if new != old {
        tx.execute(
            "UPDATE promotions SET year = $1, description = $2, publication = $3, locked = $4 \
             WHERE id = $5",
            &[
                &new.year,
                &new.description,
                &new.publication.as_str(),
                &new.locked,
                &new.id,
            ],
        )
        .await?;
        tx.append(
            ctx,
            command,
            Change::Promotion(Diff::updated(old, new.clone())),
        )
        .await?;
    }
    let promotion = promotion_reply(tx, &new).await?;
    record_request(tx, ctx, &promotion).await?;
    Ok(promotion)
}

pub(crate) async fn promotion_update(
    tx: &mut Batch,
    name: &str,
    patch: &PromotionPatch,
    ctx: &Context,
) -> Result<Promotion> {
    let old = promotion_record(tx, name).await?;
    let new = patch.apply(&old);
    promotion_save(tx, old, new, "promotion.update", ctx).await
}

pub(crate) async fn promotion_lock(
    tx: &mut Batch,
    name: &str,
    locked: bool,
    ctx: &Context,
) -> Result<Promotion> {
    let old = promotion_record(tx, name).await?;
    let new = PromotionRecord {
        locked,
        ..old.clone()
    };
    let command = if locked {
        "promotion.lock"
    } else {
        "promotion.unlock"
    };
    promotion_save(tx, old, new, command, ctx).await
}

pub(crate) async fn grades_publish(
    tx: &mut Batch,
    promotion: &str,
    selection: &GradeSelection,
    published: bool,
    ctx: &Context,
) -> Result<u64> {
    let home = home(tx, promotion).await?.unlocked()?;
    let grades = tx
        .query(
            concat!(
                "SELECT ",
                grade_columns!(),
                " FROM grades g JOIN students s ON s.id = g.student_id \
                 WHERE s.promotion_id = $1 ORDER BY g.id"
            ),
            &[&home.id],
        )
        .await?
        .iter()
        .map(grade_from_row)
        .collect::<Result<Vec<_>>>()?;
    let chosen = selection.choose(&grades, promotion)?;
    let command = if published {
        "grade.publish"
    } else {
        "grade.unpublish"
    };
    let mut changed = 0;
    for old in chosen.into_iter().filter(|g| g.published != published) {
        tx.execute(
            "UPDATE grades SET published = $1 WHERE id = $2",
            &[&published, &old.id],
        )
        .await?;
        let new = Grade {
            published,
            ..old.clone()
        };
        tx.append(ctx, command, Change::Grade(Diff::updated(old, new)))
            .await?;
        changed += 1;
    }
    record_request(tx, ctx, &gradebook_core::Changed { changed }).await?;
    Ok(changed)
}

/// Grants a promotion to a teacher (`given`) or takes the grant away; a
/// grant already as asked changes nothing and logs nothing.
pub(crate) async fn promotion_grant(
    tx: &mut Batch,
    name: &str,
    username: &str,
    given: bool,
    ctx: &Context,
) -> Result<()> {
    let grant = GrantRecord {
        promotion: promotion_id(tx, name).await?,
        user: user_id(tx, username).await?,
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
    let changed = tx.execute(sql, &[&grant.promotion, &grant.user]).await?;
    if changed > 0 {
        let diff = if given {
            Diff::added(grant)
        } else {
            Diff::removed(grant)
        };
        tx.append(ctx, command, Change::Grant(diff)).await?;
    }
    record_request(tx, ctx, &nothing()).await
}

// Students.

/// Inserts a student into promotion `pid` and gives back its record.
async fn insert_student(
    tx: &Batch,
    pid: i64,
    promotion: &str,
    new: &NewStudent,
    ctx: &Context,
) -> std::result::Result<StudentRecord, tokio_postgres::Error> {
    let rows = tx
        .query(
            "INSERT INTO students (promotion_id, first_name, last_name, number, email, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &pid,
                &new.first_name,
                &new.last_name,
                &new.number,
                &new.email,
                &ctx.at,
            ],
        )
        .await?;
    // An insert without a conflict returns exactly one row.
    let id: i64 = match rows.first() {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
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

pub(crate) async fn student_add(
    tx: &mut Batch,
    promotion: &str,
    new: &NewStudent,
    ctx: &Context,
) -> Result<Student> {
    let pid = home(tx, promotion).await?.unlocked()?.id;
    let record = insert_student(tx, pid, promotion, new, ctx)
        .await
        .map_err(|e| conflict_on_unique(e, || number_taken(new.number.as_deref())))?;
    let s = record.student.clone();
    tx.append(ctx, "student.add", Change::Student(Diff::added(record)))
        .await?;
    record_request(tx, ctx, &s).await?;
    Ok(s)
}

pub(crate) async fn student_update(
    tx: &mut Batch,
    id: i64,
    patch: &StudentPatch,
    ctx: &Context,
) -> Result<Student> {
    let old = student_record(tx, id).await?;
    home_of_student(tx, id).await?.unlocked()?;
    let mut new = old.clone();
    if let Some(p) = &patch.promotion {
        new.promotion_id = home(tx, p).await?.unlocked()?.id;
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
    tx.execute(
        "UPDATE students SET first_name = $1, last_name = $2, number = $3, email = $4, \
         promotion_id = $5 WHERE id = $6",
        &[
            &s.first_name,
            &s.last_name,
            &s.number,
            &s.email,
            &new.promotion_id,
            &id,
        ],
    )
    .await
    .map_err(|e| conflict_on_unique(e, || number_taken(s.number.as_deref())))?;
    let s = new.student.clone();
    tx.append(
        ctx,
        "student.update",
        Change::Student(Diff::updated(old, new)),
    )
    .await?;
    record_request(tx, ctx, &s).await?;
    Ok(s)
}

pub(crate) async fn student_remove(tx: &mut Batch, id: i64, ctx: &Context) -> Result<()> {
    let old = student_record(tx, id).await?;
    home_of_student(tx, id).await?.unlocked()?;
    check_no_linked_account(tx, LINKED_TO_STUDENT, id).await?;
    const COMMAND: &str = "student.remove";
    log_grade_removals(
        tx,
        ctx,
        COMMAND,
        concat!(
            "SELECT ",
            grade_columns!(),
            " FROM grades g WHERE g.student_id = $1 ORDER BY g.id"
        ),
        id,
    )
    .await?;
    tx.execute("DELETE FROM students WHERE id = $1", &[&id])
        .await?;
    tx.append(ctx, COMMAND, Change::Student(Diff::removed(old)))
        .await?;
    record_request(tx, ctx, &nothing()).await
}

// Grades.

/// Inserts a grade (its student exists) and gives it back with its id.
async fn insert_grade(
    tx: &Batch,
    new: &NewGrade,
    published: bool,
    ctx: &Context,
) -> std::result::Result<Grade, tokio_postgres::Error> {
    let rows = tx
        .query(
            "INSERT INTO grades (student_id, subject, value, coefficient, label, created_at, \
             published) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &new.student,
                &new.subject,
                &new.value.to_code(),
                &i64::from(new.coefficient.hundredths()),
                &new.label,
                &ctx.at,
                &published,
            ],
        )
        .await?;
    // An insert that did not fail returns exactly one row.
    let id: i64 = match rows.first() {
        Some(r) => r.try_get(0)?,
        None => 0,
    };
    Ok(added_grade(new, id, published))
}

/// Adds a grade if its student exists and its promotion is not locked, in
/// one statement that also reads the promotion (what the log records, its
/// lock, its publication mode): no row, no student; a locked promotion
/// adds nothing and says so.
const ADD_GRADE: &str = "WITH s AS (SELECT st.id, st.promotion_id, p.name, p.locked, \
     p.publication = 'immediate' AS published \
     FROM students st JOIN promotions p ON p.id = st.promotion_id WHERE st.id = $1), \
     g AS (INSERT INTO grades (student_id, subject, value, coefficient, label, created_at, \
     published) SELECT id, $2, $3, $4, $5, $6, published FROM s WHERE NOT locked RETURNING id) \
     SELECT g.id, s.promotion_id, s.name, s.locked, s.published FROM s LEFT JOIN g ON TRUE";

pub(crate) async fn grade_add(tx: &mut Batch, new: &NewGrade, ctx: &Context) -> Result<Grade> {
    let Some(row) = tx
        .query_opt(
            ADD_GRADE,
            &[
                &new.student,
                &new.subject,
                &new.value.to_code(),
                &i64::from(new.coefficient.hundredths()),
                &new.label,
                &ctx.at,
            ],
        )
        .await?
    else {
        return Err(no_student(new.student).into());
    };
    if row.try_get::<_, bool>(3)? {
        return Err(gradebook_store::locked(&row.try_get::<_, String>(2)?).into());
    }
    tx.know_promotion(new.student, row.try_get(1)?);
    let g = added_grade(new, row.try_get(0)?, row.try_get(4)?);
    tx.append(ctx, "grade.add", Change::Grade(Diff::added(g.clone())))
        .await?;
    record_request(tx, ctx, &g).await?;
    Ok(g)
}

/// The grade `new` once stored under `id`.
fn added_grade(new: &NewGrade, id: i64, published: bool) -> Grade {
    Grade {
        id,
        student: new.student,
        subject: new.subject.clone(),
        value: new.value,
        coefficient: new.coefficient,
        label: new.label.clone(),
        published,
    }
}

/// Adds the grades of a run of `grade.add`s, those whose student exists
/// and whose promotion is not locked, in one statement; their ids are
/// drawn in the run's order, as if each had been added alone. Input rows
/// are numbered (`n`) so that each comes back to its write: the rows'
/// order out of an `INSERT` is not promised. A grade of a locked
/// promotion comes back with `locked` and is not added.
const ADD_GRADES: &str = "WITH found AS ( \
       SELECT nextval((SELECT pg_get_serial_sequence('grades', 'id')::regclass)) AS id, f.* \
       FROM ( \
         SELECT i.n, i.student_id, s.promotion_id, p.name, p.locked, \
                p.publication = 'immediate' AS published, i.subject, i.value, \
                i.coefficient, i.label, i.created_at \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], \
                     $6::bigint[]) \
              WITH ORDINALITY AS i (student_id, subject, value, coefficient, label, created_at, n) \
         JOIN students s ON s.id = i.student_id \
         JOIN promotions p ON p.id = s.promotion_id \
         ORDER BY i.n \
       ) f \
     ), added AS ( \
       INSERT INTO grades (id, student_id, subject, value, coefficient, label, created_at, \
                           published) \
       OVERRIDING SYSTEM VALUE \
       SELECT id, student_id, subject, value, coefficient, label, created_at, published \
       FROM found WHERE NOT locked \
     ) \
     SELECT n, id, promotion_id, name, locked, published FROM found";
// The `ORDER BY` sits in a subquery, below `nextval`: the planner keeps
// such a subquery whole, so ids are drawn in the sorted order (a `nextval`
// beside the `ORDER BY` would be computed before the sort). The sequence
// is looked up once (an uncorrelated subquery), not once a row. A locked
// promotion's grade draws an id it never uses: ids may have gaps, never
// repeats.

/// Why a run of grades ([`add_grades`]) did not go as one statement.
#[derive(Debug)]
pub(crate) enum RunFailed {
    /// The statement (or what the run logs) failed: nothing of the run is
    /// kept once its savepoint is rolled back, and its writes can go one
    /// at a time.
    Statement(Error),
    /// The transaction itself failed (its savepoint could not be opened).
    Batch(Error),
}

/// Adds `grades`, plain `grade.add`s in the order they came (no UDP
/// request to record), with [`ADD_GRADES`], after `open` (the statements
/// that open the run's savepoint) in the same round trip; the rows it
/// returns are for [`log_grades`]. Both are sent when the future is first
/// polled, once the statement is prepared.
pub(crate) async fn insert_grades(
    client: &Object,
    open: &str,
    grades: &[&GradeJob],
) -> std::result::Result<Vec<Row>, RunFailed> {
    let stmt = client
        .prepare_cached(ADD_GRADES)
        .await
        .map_err(|e| RunFailed::Batch(e.into()))?;
    let student: Vec<i64> = grades.iter().map(|g| g.new.student).collect();
    let subject: Vec<&str> = grades.iter().map(|g| g.new.subject.as_str()).collect();
    let value: Vec<i64> = grades.iter().map(|g| g.new.value.to_code()).collect();
    let coefficient: Vec<i64> = grades
        .iter()
        .map(|g| i64::from(g.new.coefficient.hundredths()))
        .collect();
    let label: Vec<Option<&str>> = grades.iter().map(|g| g.new.label.as_deref()).collect();
    let at: Vec<i64> = grades.iter().map(|g| g.ctx.at).collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&student, &subject, &value, &coefficient, &label, &at];
    let (opened, rows) = tokio::join!(
        biased;
        client.batch_execute(open),
        client.query(&stmt, &params),
    );
    opened.map_err(|e| RunFailed::Batch(e.into()))?;
    rows.map_err(|e| RunFailed::Statement(e.into()))
}

/// What [`ADD_GRADES`] says of one write of the run.
#[derive(Debug, Clone)]
struct RunRow {
    id: i64,
    promotion: i64,
    name: String,
    locked: bool,
    published: bool,
}

/// Logs each grade that [`insert_grades`] added (its `rows`), and gives
/// each write of the run its result: its grade, `not_found` if its
/// student does not exist, or `locked` (both changed nothing).
pub(crate) async fn log_grades(
    tx: &mut Batch,
    rows: &[Row],
    grades: &[&GradeJob],
) -> std::result::Result<Vec<Result<Grade>>, RunFailed> {
    let mut found: Vec<Option<RunRow>> = vec![None; grades.len()];
    for row in rows {
        let read = || -> Result<(usize, RunRow)> {
            let n: i64 = row.try_get(0)?;
            let n = usize::try_from(n - 1)
                .ok()
                .filter(|n| *n < found.len())
                .ok_or_else(|| StoreError::Corrupt(format!("grade {n} of a run came back")))?;
            Ok((
                n,
                RunRow {
                    id: row.try_get(1)?,
                    promotion: row.try_get(2)?,
                    name: row.try_get(3)?,
                    locked: row.try_get(4)?,
                    published: row.try_get(5)?,
                },
            ))
        };
        let (n, run_row) = read().map_err(RunFailed::Statement)?;
        found[n] = Some(run_row);
    }
    let mut results = Vec::with_capacity(grades.len());
    for (job, found) in grades.iter().zip(found) {
        let Some(row) = found else {
            results.push(Err(no_student(job.new.student).into()));
            continue;
        };
        if row.locked {
            results.push(Err(gradebook_store::locked(&row.name).into()));
            continue;
        }
        tx.next_write();
        tx.know_promotion(job.new.student, row.promotion);
        let g = added_grade(&job.new, row.id, row.published);
        tx.append(&job.ctx, "grade.add", Change::Grade(Diff::added(g.clone())))
            .await
            .map_err(RunFailed::Statement)?;
        results.push(Ok(g));
    }
    Ok(results)
}

pub(crate) async fn grade_update(
    tx: &mut Batch,
    id: i64,
    patch: &GradePatch,
    ctx: &Context,
) -> Result<Grade> {
    let old = grade(tx, id).await?;
    home_of_student(tx, old.student).await?.unlocked()?;
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
    tx.execute(
        "UPDATE grades SET subject = $1, value = $2, coefficient = $3, label = $4 WHERE id = $5",
        &[
            &g.subject,
            &g.value.to_code(),
            &i64::from(g.coefficient.hundredths()),
            &g.label,
            &id,
        ],
    )
    .await?;
    tx.append(
        ctx,
        "grade.update",
        Change::Grade(Diff::updated(old, g.clone())),
    )
    .await?;
    record_request(tx, ctx, &g).await?;
    Ok(g)
}

pub(crate) async fn grade_delete(tx: &mut Batch, id: i64, ctx: &Context) -> Result<()> {
    let old = grade(tx, id).await?;
    home_of_student(tx, old.student).await?.unlocked()?;
    tx.execute("DELETE FROM grades WHERE id = $1", &[&id])
        .await?;
    tx.append(ctx, "grade.delete", Change::Grade(Diff::removed(old)))
        .await?;
    record_request(tx, ctx, &nothing()).await
}

// Imports: every row in the one savepoint of the write, so a failing row
// undoes them all.

pub(crate) async fn import_students(
    tx: &mut Batch,
    promotion: &str,
    students: &[(u64, NewStudent)],
    ctx: &Context,
) -> Result<u64> {
    let pid = home(tx, promotion).await?.unlocked()?.id;
    for (line, s) in students {
        let record = insert_student(tx, pid, promotion, s, ctx)
            .await
            .map_err(|e| {
                conflict_on_unique(e, || {
                    format!("line {line}: {}", number_taken(s.number.as_deref()))
                })
            })?;
        tx.append(ctx, "student.add", Change::Student(Diff::added(record)))
            .await?;
    }
    let added = count(students.len());
    record_request(tx, ctx, &nothing()).await?;
    Ok(added)
}

pub(crate) async fn import_grades(
    tx: &mut Batch,
    grades: &[(u64, NewGrade)],
    ctx: &Context,
) -> Result<u64> {
    let mut homes: std::collections::HashMap<i64, Home> = std::collections::HashMap::new();
    for (line, new) in grades {
        let home = match homes.get(&new.student) {
            Some(h) => h.clone(),
            None => {
                let h = match home_of_student(tx, new.student).await {
                    Err(Error::Store(StoreError::NotFound(_))) => {
                        return Err(StoreError::Conflict(format!(
                            "line {line}: student {} was removed during the import",
                            new.student
                        ))
                        .into());
                    }
                    other => other?.unlocked()?,
                };
                homes.insert(new.student, h.clone());
                h
            }
        };
        let published = home.publication.publishes_new_grades();
        let g = insert_grade(tx, new, published, ctx).await.map_err(|e| {
            if is_constraint_violation(&e) {
                // The student was removed since the import was checked.
                StoreError::Conflict(format!(
                    "line {line}: student {} was removed during the import",
                    new.student
                ))
                .into()
            } else {
                Error::Postgres(e)
            }
        })?;
        tx.append(ctx, "grade.add", Change::Grade(Diff::added(g)))
            .await?;
    }
    let added = count(grades.len());
    record_request(tx, ctx, &nothing()).await?;
    Ok(added)
}

// UDP requests.

pub(crate) async fn requests_purge(tx: &mut Batch, before: i64) -> Result<u64> {
    Ok(tx
        .execute("DELETE FROM udp_requests WHERE at < $1", &[&before])
        .await?)
}

// Login throttling (no change-log entry: failures are not data).

pub(crate) async fn login_failed(tx: &mut Batch, keys: &[String], now: i64) -> Result<()> {
    for key in keys {
        // Locks the key's row: two servers counting at once add up.
        let previous = match tx
            .query_opt(
                "SELECT window_start, count, blocked_until FROM login_failures \
                 WHERE key = $1 FOR UPDATE",
                &[key],
            )
            .await?
        {
            Some(r) => Some(Strikes {
                window_start: r.try_get(0)?,
                count: r.try_get(1)?,
                blocked_until: r.try_get(2)?,
            }),
            None => None,
        };
        let s = Strikes::after_failure(previous, now);
        tx.execute(
            "INSERT INTO login_failures (key, window_start, count, blocked_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
             window_start = excluded.window_start, count = excluded.count, \
             blocked_until = excluded.blocked_until",
            &[key, &s.window_start, &s.count, &s.blocked_until],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn login_succeeded(tx: &mut Batch, key: &str) -> Result<()> {
    tx.execute("DELETE FROM login_failures WHERE key = $1", &[&key])
        .await?;
    Ok(())
}

pub(crate) async fn login_failures_purge(tx: &mut Batch, now: i64) -> Result<u64> {
    let before = now - 16 * gradebook_store::throttle::WINDOW;
    Ok(tx
        .execute(
            "DELETE FROM login_failures WHERE COALESCE(blocked_until, window_start) < $1",
            &[&before],
        )
        .await?)
}
