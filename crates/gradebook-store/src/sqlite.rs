//! The SQLite backend: one database file in WAL mode with
//! `synchronous=FULL`, one writer connection and a small pool of readers.
//!
//! SQLite allows one writer at a time; giving writes their own connection
//! makes them queue instead of failing with `SQLITE_BUSY`, and lets them
//! share commits ([`group`]), while readers go on in parallel against the
//! last committed state. The SQL uses
//! `$1` placeholders and standard statements so the PostgreSQL backend can
//! share it.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use gradebook_core::{Coefficient, Grade, GradeValue, Promotion, Student, User};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, SqliteConnection};

mod group;

use group::Writer;

use crate::{
    AuditEntry, AuditFilter, Credentials, GradePatch, NewGrade, NewStudent, PromotionGrades,
    Result, SessionRecord, Store, StoreError, StudentPatch, WriteContext, role_from_db,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: std::sync::Arc<Writer>,
    reader: SqlitePool,
}

type GradeRow = (i64, i64, String, i64, i64, Option<String>);
type StudentRow = (i64, String, String, Option<String>, Option<String>, String);
type PromotionRow = (String, Option<i64>, Option<String>, i64);

// Column lists shared by several queries. Macros rather than constants so
// that `concat!` builds each query as one static string: sqlx only runs
// queries it can see are not assembled from runtime text.
macro_rules! grade_columns {
    () => {
        "g.id, g.student_id, g.subject, g.value, g.coefficient, g.label"
    };
}
macro_rules! student_columns {
    () => {
        "s.id, s.first_name, s.last_name, s.number, s.email, p.name"
    };
}
macro_rules! promotion_columns {
    () => {
        "p.name, p.year, p.description, \
         (SELECT COUNT(*) FROM students s WHERE s.promotion_id = p.id)"
    };
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`)
    /// and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it returns, so an `ok` reply
            // survives a power cut, not only a crash of the server.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let mut conn = options.connect().await?;
        MIGRATOR.run(&mut conn).await?;
        let writer = Writer::new(conn);
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { writer, reader })
    }

    /// Opens the database file at `path`.
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        Self::connect(&format!("sqlite://{}", path.display())).await
    }
}

fn grade_from_row((id, student, subject, value, coefficient, label): GradeRow) -> Result<Grade> {
    let value = GradeValue::from_code(value)
        .ok_or_else(|| StoreError::Corrupt(format!("grade {id} has value code {value}")))?;
    let coefficient = Coefficient::from_hundredths(coefficient)
        .map_err(|_| StoreError::Corrupt(format!("grade {id} has coefficient {coefficient}")))?;
    Ok(Grade {
        id,
        student,
        subject,
        value,
        coefficient,
        label,
    })
}

fn student_from_row((id, first_name, last_name, number, email, promotion): StudentRow) -> Student {
    Student {
        id,
        first_name,
        last_name,
        number,
        email,
        promotion,
    }
}

fn promotion_from_row((name, year, description, students): PromotionRow) -> Promotion {
    Promotion {
        name,
        year,
        description,
        students: u64::try_from(students).unwrap_or(0),
    }
}

fn no_promotion(name: &str) -> StoreError {
    StoreError::NotFound(format!("no promotion named '{}'", name.escape_debug()))
}

fn no_student(id: i64) -> StoreError {
    StoreError::NotFound(format!("no student with id {id}"))
}

fn no_grade(id: i64) -> StoreError {
    StoreError::NotFound(format!("no grade with id {id}"))
}

fn no_user(username: &str) -> StoreError {
    StoreError::NotFound(format!("no user named '{}'", username.escape_debug()))
}

/// Turns a unique-constraint violation into `conflict` with `message`.
fn conflict_on_unique(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(e),
    }
}

async fn promotion_id(tx: &mut SqliteConnection, name: &str) -> Result<i64> {
    sqlx::query_scalar::<_, i64>("SELECT id FROM promotions WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| no_promotion(name))
}

async fn user_id(tx: &mut SqliteConnection, username: &str) -> Result<i64> {
    sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| no_user(username))
}

async fn student_in_tx(tx: &mut SqliteConnection, id: i64) -> Result<Student> {
    sqlx::query_as::<_, StudentRow>(concat!(
        "SELECT ",
        student_columns!(),
        " FROM students s JOIN promotions p ON p.id = s.promotion_id \
         WHERE s.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .map(student_from_row)
    .ok_or_else(|| no_student(id))
}

async fn grade_in_tx(tx: &mut SqliteConnection, id: i64) -> Result<Grade> {
    let row = sqlx::query_as::<_, GradeRow>(concat!(
        "SELECT ",
        grade_columns!(),
        " FROM grades g WHERE g.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| no_grade(id))?;
    grade_from_row(row)
}

/// Ends a write: records its UDP request (if any) and commits. A request
/// already executed undoes this copy's change and reports
/// [`StoreError::Duplicate`] only once the first copy is durable, so its
/// recorded reply can be read and sent.
async fn finish<T: serde::Serialize>(
    mut tx: group::WriteGuard,
    ctx: &WriteContext<'_>,
    result: &T,
) -> Result<()> {
    match record(&mut tx, ctx, result).await {
        Ok(()) => tx.commit().await,
        Err(StoreError::Duplicate) => {
            tx.undo_and_wait().await?;
            Err(StoreError::Duplicate)
        }
        Err(e) => Err(e),
    }
}

/// Records the UDP request a write was made for, with its reply data, in
/// the write's transaction (see [`crate::RequestKey`]). Called last, once
/// the result is known; on error the caller drops the transaction, which
/// rolls the change back.
async fn record<T: serde::Serialize>(
    tx: &mut SqliteConnection,
    ctx: &WriteContext<'_>,
    result: &T,
) -> Result<()> {
    let Some(key) = &ctx.request else {
        return Ok(());
    };
    let data = serde_json::to_value(result)
        .map_err(|e| StoreError::Corrupt(format!("unserialisable result: {e}")))?;
    if !(key.fits)(&data) {
        return Err(StoreError::TooLarge);
    }
    sqlx::query(
        "INSERT INTO udp_requests (session, request_id, at, reply) VALUES ($1, $2, $3, $4)",
    )
    .bind(key.session)
    .bind(key.id)
    .bind(ctx.at)
    .bind(data.to_string())
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
        _ => StoreError::Database(e),
    })?;
    Ok(())
}

/// The reply data of a write that returns nothing: `{}`.
fn nothing() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Records a grade change in the same transaction as the change itself.
async fn audit(
    tx: &mut SqliteConnection,
    by: &WriteContext<'_>,
    action: &str,
    old: Option<&Grade>,
    new: Option<&Grade>,
) -> Result<()> {
    let Some(grade) = new.or(old) else {
        return Ok(());
    };
    let to_json = |g: Option<&Grade>| g.and_then(|g| serde_json::to_string(g).ok());
    sqlx::query(
        "INSERT INTO audit (at, username, action, grade_id, student_id, promotion_id, \
         old_value, new_value) \
         VALUES ($1, $2, $3, $4, $5, (SELECT promotion_id FROM students WHERE id = $5), $6, $7)",
    )
    .bind(by.at)
    .bind(by.by)
    .bind(action)
    .bind(grade.id)
    .bind(grade.student)
    .bind(to_json(old))
    .bind(to_json(new))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

const LINKED_IN_PROMOTION: &str = "SELECT u.username FROM users u \
     JOIN students s ON s.id = u.student_id WHERE s.promotion_id = $1 LIMIT 1";
const LINKED_TO_STUDENT: &str = "SELECT u.username FROM users u \
     JOIN students s ON s.id = u.student_id WHERE s.id = $1 LIMIT 1";

/// Refuses to delete students that a student account still points to.
async fn check_no_linked_account(
    tx: &mut SqliteConnection,
    query: &'static str,
    key: i64,
) -> Result<()> {
    let linked: Option<String> = sqlx::query_scalar(query)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
    match linked {
        Some(u) => Err(StoreError::Conflict(format!(
            "the account '{u}' is linked to this student: delete the account first"
        ))),
        None => Ok(()),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn user_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn user_create(
        &self,
        user: &User,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<User> {
        let mut tx = self.writer.begin().await?;
        if let Some(student) = user.student {
            student_in_tx(&mut tx, student).await?;
        }
        sqlx::query(
            "INSERT INTO users (username, password_hash, role, student_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.username)
        .bind(password_hash)
        .bind(user.role.as_str())
        .bind(user.student)
        .bind(ctx.at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!(
                    "a user named '{}' already exists",
                    user.username.escape_debug()
                )
            })
        })?;
        finish(tx, &ctx, user).await?;
        Ok(user.clone())
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row: Option<(i64, String, String, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, username, password_hash, role, student_id FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|(user_id, username, password_hash, role, student)| {
            Ok(Credentials {
                user_id,
                user: User {
                    username,
                    role: role_from_db(&role)?,
                    student,
                },
                password_hash,
            })
        })
        .transpose()
    }

    async fn user_list(&self) -> Result<Vec<User>> {
        let rows: Vec<(String, String, Option<i64>)> =
            sqlx::query_as("SELECT username, role, student_id FROM users ORDER BY username")
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter()
            .map(|(username, role, student)| {
                Ok(User {
                    username,
                    role: role_from_db(&role)?,
                    student,
                })
            })
            .collect()
    }

    async fn user_delete(&self, username: &str, ctx: WriteContext<'_>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(no_user(username));
        }
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn user_set_password(
        &self,
        username: &str,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let id = user_id(&mut tx, username).await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn session_create(
        &self,
        token_hash: &[u8],
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    async fn session_get(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        type Row = (i64, String, String, Option<i64>, i64, i64, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT u.id, u.username, u.role, u.student_id, s.created_at, s.last_seen, \
             s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        row.map(
            |(user_id, username, role, student, created_at, last_seen, expires_at)| {
                Ok(SessionRecord {
                    user_id,
                    user: User {
                        username,
                        role: role_from_db(&role)?,
                        student,
                    },
                    created_at,
                    last_seen,
                    expires_at,
                })
            },
        )
        .transpose()
    }

    async fn session_touch(&self, token_hash: &[u8], now: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    async fn session_delete(&self, token_hash: &[u8], ctx: WriteContext<'_>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn sessions_purge(&self, now: i64, idle_before: i64) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen < $2")
            .bind(now)
            .bind(idle_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn promotion_create(
        &self,
        name: &str,
        year: Option<i64>,
        description: Option<&str>,
        created_by: Option<i64>,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO promotions (name, year, description, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(year)
        .bind(description)
        .bind(created_by)
        .bind(ctx.at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!("a promotion named '{}' already exists", name.escape_debug())
            })
        })?;
        let promotion = Promotion {
            name: name.to_owned(),
            year,
            description: description.map(str::to_owned),
            students: 0,
        };
        finish(tx, &ctx, &promotion).await?;
        Ok(promotion)
    }

    async fn promotion_list(&self, managed_by: Option<i64>) -> Result<Vec<Promotion>> {
        let rows: Vec<PromotionRow> = sqlx::query_as(concat!(
            "SELECT ",
            promotion_columns!(),
            " FROM promotions p WHERE $1 IS NULL OR p.created_by = $1 OR EXISTS \
             (SELECT 1 FROM grants g WHERE g.promotion_id = p.id AND g.user_id = $1) \
             ORDER BY p.name"
        ))
        .bind(managed_by)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(promotion_from_row).collect())
    }

    async fn can_manage(&self, promotion: &str, user_id: i64) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM promotions p WHERE p.name = $1 AND (p.created_by = $2 OR EXISTS \
             (SELECT 1 FROM grants g WHERE g.promotion_id = p.id AND g.user_id = $2))",
        )
        .bind(promotion)
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(found.is_some())
    }

    async fn promotion_get(&self, name: &str) -> Result<Promotion> {
        sqlx::query_as::<_, PromotionRow>(concat!(
            "SELECT ",
            promotion_columns!(),
            " FROM promotions p WHERE p.name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.reader)
        .await?
        .map(promotion_from_row)
        .ok_or_else(|| no_promotion(name))
    }

    async fn promotion_delete(&self, name: &str, force: bool, ctx: WriteContext<'_>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let id = promotion_id(&mut tx, name).await?;
        let students: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM students WHERE promotion_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if students > 0 && !force {
            return Err(StoreError::Conflict(format!(
                "promotion '{}' has {students} student(s): remove them first, or pass force",
                name.escape_debug()
            )));
        }
        check_no_linked_account(&mut tx, LINKED_IN_PROMOTION, id).await?;
        sqlx::query("DELETE FROM promotions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn promotion_grant(
        &self,
        name: &str,
        username: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let pid = promotion_id(&mut tx, name).await?;
        let uid = user_id(&mut tx, username).await?;
        sqlx::query(
            "INSERT INTO grants (promotion_id, user_id) VALUES ($1, $2) \
             ON CONFLICT (promotion_id, user_id) DO NOTHING",
        )
        .bind(pid)
        .bind(uid)
        .execute(&mut *tx)
        .await?;
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn promotion_revoke(
        &self,
        name: &str,
        username: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let pid = promotion_id(&mut tx, name).await?;
        let uid = user_id(&mut tx, username).await?;
        sqlx::query("DELETE FROM grants WHERE promotion_id = $1 AND user_id = $2")
            .bind(pid)
            .bind(uid)
            .execute(&mut *tx)
            .await?;
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn promotion_grades(&self, name: &str) -> Result<PromotionGrades> {
        // One read transaction, so students and grades come from the same
        // committed state.
        let mut tx = self.reader.begin().await?;
        let promotion = sqlx::query_as::<_, PromotionRow>(concat!(
            "SELECT ",
            promotion_columns!(),
            " FROM promotions p WHERE p.name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .map(promotion_from_row)
        .ok_or_else(|| no_promotion(name))?;
        let students: Vec<StudentRow> = sqlx::query_as(concat!(
            "SELECT ",
            student_columns!(),
            " FROM students s JOIN promotions p ON p.id = s.promotion_id \
             WHERE p.name = $1 ORDER BY s.last_name, s.first_name, s.id"
        ))
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        let grades: Vec<GradeRow> = sqlx::query_as(concat!(
            "SELECT ",
            grade_columns!(),
            " FROM grades g JOIN students s ON s.id = g.student_id \
             JOIN promotions p ON p.id = s.promotion_id WHERE p.name = $1 ORDER BY g.id"
        ))
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PromotionGrades {
            promotion,
            students: students.into_iter().map(student_from_row).collect(),
            grades: grades
                .into_iter()
                .map(grade_from_row)
                .collect::<Result<_>>()?,
        })
    }

    async fn student_add(
        &self,
        promotion: &str,
        student: &NewStudent,
        ctx: WriteContext<'_>,
    ) -> Result<Student> {
        let mut tx = self.writer.begin().await?;
        let pid = promotion_id(&mut tx, promotion).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO students (promotion_id, first_name, last_name, number, email, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(pid)
        .bind(&student.first_name)
        .bind(&student.last_name)
        .bind(&student.number)
        .bind(&student.email)
        .bind(ctx.at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, || number_taken(student.number.as_deref())))?;
        let s = Student {
            id,
            first_name: student.first_name.clone(),
            last_name: student.last_name.clone(),
            number: student.number.clone(),
            email: student.email.clone(),
            promotion: promotion.to_owned(),
        };
        finish(tx, &ctx, &s).await?;
        Ok(s)
    }

    async fn student_list(&self, promotion: &str) -> Result<Vec<Student>> {
        let mut tx = self.reader.begin().await?;
        promotion_id(&mut tx, promotion).await?;
        let rows: Vec<StudentRow> = sqlx::query_as(concat!(
            "SELECT ",
            student_columns!(),
            " FROM students s JOIN promotions p ON p.id = s.promotion_id \
             WHERE p.name = $1 ORDER BY s.last_name, s.first_name, s.id"
        ))
        .bind(promotion)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(student_from_row).collect())
    }

    async fn student_get(&self, id: i64) -> Result<Student> {
        let mut tx = self.reader.begin().await?;
        let s = student_in_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(s)
    }

    async fn student_update(
        &self,
        id: i64,
        patch: &StudentPatch,
        ctx: WriteContext<'_>,
    ) -> Result<Student> {
        let mut tx = self.writer.begin().await?;
        let mut s = student_in_tx(&mut tx, id).await?;
        let pid = match &patch.promotion {
            Some(p) => Some(promotion_id(&mut tx, p).await?),
            None => None,
        };
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
        if let Some(p) = &patch.promotion {
            s.promotion = p.clone();
        }
        sqlx::query(
            "UPDATE students SET first_name = $1, last_name = $2, number = $3, email = $4, \
             promotion_id = COALESCE($5, promotion_id) WHERE id = $6",
        )
        .bind(&s.first_name)
        .bind(&s.last_name)
        .bind(&s.number)
        .bind(&s.email)
        .bind(pid)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, || number_taken(s.number.as_deref())))?;
        finish(tx, &ctx, &s).await?;
        Ok(s)
    }

    async fn student_remove(&self, id: i64, ctx: WriteContext<'_>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        student_in_tx(&mut tx, id).await?;
        check_no_linked_account(&mut tx, LINKED_TO_STUDENT, id).await?;
        sqlx::query("DELETE FROM students WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn grade_add(&self, grade: &NewGrade, ctx: WriteContext<'_>) -> Result<Grade> {
        let mut tx = self.writer.begin().await?;
        student_in_tx(&mut tx, grade.student).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO grades (student_id, subject, value, coefficient, label, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(grade.student)
        .bind(&grade.subject)
        .bind(grade.value.to_code())
        .bind(i64::from(grade.coefficient.hundredths()))
        .bind(&grade.label)
        .bind(ctx.at)
        .fetch_one(&mut *tx)
        .await?;
        let g = Grade {
            id,
            student: grade.student,
            subject: grade.subject.clone(),
            value: grade.value,
            coefficient: grade.coefficient,
            label: grade.label.clone(),
        };
        audit(&mut tx, &ctx, "grade.add", None, Some(&g)).await?;
        finish(tx, &ctx, &g).await?;
        Ok(g)
    }

    async fn grade_get(&self, id: i64) -> Result<Grade> {
        let mut tx = self.reader.begin().await?;
        let g = grade_in_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(g)
    }

    async fn grade_update(
        &self,
        id: i64,
        patch: &GradePatch,
        ctx: WriteContext<'_>,
    ) -> Result<Grade> {
        let mut tx = self.writer.begin().await?;
        let old = grade_in_tx(&mut tx, id).await?;
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
        sqlx::query(
            "UPDATE grades SET subject = $1, value = $2, coefficient = $3, label = $4 WHERE id = $5",
        )
        .bind(&g.subject)
        .bind(g.value.to_code())
        .bind(i64::from(g.coefficient.hundredths()))
        .bind(&g.label)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, &ctx, "grade.update", Some(&old), Some(&g)).await?;
        finish(tx, &ctx, &g).await?;
        Ok(g)
    }

    async fn grade_delete(&self, id: i64, ctx: WriteContext<'_>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let old = grade_in_tx(&mut tx, id).await?;
        sqlx::query("DELETE FROM grades WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, &ctx, "grade.delete", Some(&old), None).await?;
        finish(tx, &ctx, &nothing()).await?;
        Ok(())
    }

    async fn grade_list(&self, student: i64) -> Result<Vec<Grade>> {
        let mut tx = self.reader.begin().await?;
        student_in_tx(&mut tx, student).await?;
        let rows: Vec<GradeRow> = sqlx::query_as(concat!(
            "SELECT ",
            grade_columns!(),
            " FROM grades g WHERE g.student_id = $1 ORDER BY g.id"
        ))
        .bind(student)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(grade_from_row).collect()
    }

    async fn audit_list(&self, filter: AuditFilter<'_>) -> Result<Vec<AuditEntry>> {
        type Row = (
            i64,
            i64,
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<String>,
        );
        let mut tx = self.reader.begin().await?;
        let promotion = match filter.promotion {
            Some(name) => Some(promotion_id(&mut tx, name).await?),
            None => None,
        };
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, at, username, action, grade_id, student_id, old_value, new_value \
             FROM audit WHERE ($1 IS NULL OR promotion_id = $1) \
             AND ($2 IS NULL OR student_id = $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(promotion)
        .bind(filter.student)
        .bind(i64::from(filter.limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let parse = |id: i64, s: Option<String>| -> Result<Option<Grade>> {
            s.map(|s| {
                serde_json::from_str(&s)
                    .map_err(|e| StoreError::Corrupt(format!("audit entry {id}: {e}")))
            })
            .transpose()
        };
        rows.into_iter()
            .map(|(id, at, by, action, grade, student, old, new)| {
                Ok(AuditEntry {
                    id,
                    at,
                    by,
                    action,
                    grade,
                    student,
                    old: parse(id, old)?,
                    new: parse(id, new)?,
                })
            })
            .collect()
    }

    async fn request_reply(&self, session: &[u8], id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT reply FROM udp_requests WHERE session = $1 AND request_id = $2",
        )
        .bind(session)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn requests_purge(&self, before: i64) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query("DELETE FROM udp_requests WHERE at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

fn number_taken(number: Option<&str>) -> String {
    match number {
        Some(n) => format!(
            "a student with number '{}' already exists",
            n.escape_debug()
        ),
        None => "this student conflicts with an existing one".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestKey;
    use gradebook_core::Role;

    async fn store_with_student() -> (tempfile::TempDir, SqliteStore, i64) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("opens");
        let admin = User {
            username: "admin".into(),
            role: Role::Admin,
            student: None,
        };
        let ctx = WriteContext::new("admin", 1);
        store.user_create(&admin, "hash", ctx).await.expect("user");
        store
            .promotion_create("P", None, None, None, ctx)
            .await
            .expect("promotion");
        let s = store
            .student_add(
                "P",
                &NewStudent {
                    first_name: "A".into(),
                    last_name: "B".into(),
                    number: None,
                    email: None,
                },
                ctx,
            )
            .await
            .expect("student");
        (dir, store, s.id)
    }

    fn grade(student: i64) -> NewGrade {
        NewGrade {
            student,
            subject: "Maths".into(),
            value: GradeValue::parse_mark("ABS").expect("a mark"),
            coefficient: Coefficient::default(),
            label: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_commits_and_failures_undo_only_themselves() {
        let (dir, store, student) = store_with_student().await;
        let mut tasks = Vec::new();
        for i in 0..300i64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Every third write names a student that does not exist.
                let target = if i % 3 == 0 { 9999 } else { student };
                store
                    .grade_add(&grade(target), WriteContext::new("admin", i))
                    .await
                    .is_ok()
            }));
        }
        let mut acknowledged = 0;
        for t in tasks {
            if t.await.expect("task") {
                acknowledged += 1;
            }
        }
        assert_eq!(acknowledged, 200);
        assert_eq!(store.grade_list(student).await.expect("list").len(), 200);
        // Durable: a fresh store on the same file sees them all.
        store.close().await;
        let again = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("reopens");
        assert_eq!(again.grade_list(student).await.expect("list").len(), 200);
        let audit = again
            .audit_list(AuditFilter {
                promotion: None,
                student: Some(student),
                limit: 1000,
            })
            .await
            .expect("audit");
        assert_eq!(audit.len(), 200, "one audit entry per acknowledged write");
    }

    #[tokio::test]
    async fn a_request_key_is_recorded_with_its_write_and_only_once() {
        let (_dir, store, student) = store_with_student().await;
        let fits = |_: &serde_json::Value| true;
        let ctx = WriteContext {
            by: "admin",
            at: 10,
            request: Some(RequestKey {
                session: b"session",
                id: "7",
                fits: &fits,
            }),
        };
        let g = store.grade_add(&grade(student), ctx).await.expect("adds");
        let recorded = store
            .request_reply(b"session", "7")
            .await
            .expect("reads")
            .expect("recorded");
        let recorded: Grade = serde_json::from_str(&recorded).expect("the grade's JSON");
        assert_eq!(recorded, g);
        // The same key again: rolled back, nothing added.
        let again = store.grade_add(&grade(student), ctx).await;
        assert!(matches!(again, Err(StoreError::Duplicate)), "{again:?}");
        assert_eq!(store.grade_list(student).await.expect("lists").len(), 1);
        // Another id, or another session, is another request.
        let other = WriteContext {
            request: Some(RequestKey {
                session: b"other",
                id: "7",
                fits: &fits,
            }),
            ..ctx
        };
        store.grade_add(&grade(student), other).await.expect("adds");
        assert_eq!(store.grade_list(student).await.expect("lists").len(), 2);
        // Writes that return nothing record `{}`.
        let delete = WriteContext {
            request: Some(RequestKey {
                session: b"session",
                id: "\"d\"",
                fits: &fits,
            }),
            ..ctx
        };
        store.grade_delete(g.id, delete).await.expect("deletes");
        assert_eq!(
            store
                .request_reply(b"session", "\"d\"")
                .await
                .expect("reads")
                .as_deref(),
            Some("{}")
        );
        assert_eq!(store.requests_purge(11).await.expect("purges"), 3);
        assert_eq!(
            store.request_reply(b"session", "7").await.expect("reads"),
            None
        );
    }

    #[tokio::test]
    async fn a_result_that_does_not_fit_rolls_the_write_back() {
        let (_dir, store, student) = store_with_student().await;
        let fits = |_: &serde_json::Value| false;
        let ctx = WriteContext {
            by: "admin",
            at: 10,
            request: Some(RequestKey {
                session: b"session",
                id: "1",
                fits: &fits,
            }),
        };
        let r = store.grade_add(&grade(student), ctx).await;
        assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
        assert!(store.grade_list(student).await.expect("lists").is_empty());
        let r = store.promotion_create("Q", None, None, None, ctx).await;
        assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
        assert!(store.promotion_get("Q").await.is_err());
        assert_eq!(
            store.request_reply(b"session", "1").await.expect("reads"),
            None
        );
    }
}
