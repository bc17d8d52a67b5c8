//! The SQLite backend of gradebook's [`Store`]: one database file in WAL
//! mode with `synchronous=FULL`, one writer thread and a small pool of
//! readers, all through one driver, rusqlite.
//!
//! SQLite allows one writer at a time; giving writes their own connection,
//! on their own thread ([`writer`]), makes them queue instead of failing
//! with `SQLITE_BUSY` and lets them share commits, while readers ([`read`])
//! go on in parallel against the last committed state. The writes
//! themselves are in [`write`], the change log in [`log`], the schema's
//! migrations in [`migrate`]. Driver errors become
//! [`gradebook_store::StoreError`]s in [`error`]. The SQL uses `$1`
//! placeholders and standard statements so the PostgreSQL backend can share
//! it.

#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gradebook_core::{Coefficient, Grade, GradeValue, Promotion, Role, Student, User};
use gradebook_store::{
    AuditEntry, AuditFilter, ChainReport, ChangeRecord, Credentials, Follower, GradePatch,
    GradeSelection, NewGrade, NewStudent, PromotionPatch, PromotionRecord, Result, SessionRecord,
    Store, StoreError, StudentPatch, WriteContext,
};
use rusqlite::{Connection, OptionalExtension};

mod backup;
mod error;
mod export;
mod flush;
mod migrate;
mod read;
mod writer;

pub use backup::{BackupReport, backup};
pub use export::Export;
use read::Readers;
use writer::Writer;

/// How many reads may run at once, each on a connection of its own.
const READERS: usize = 4;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
}

// Column lists shared by several queries, each column named as the row
// readers below ask for it (grades, read by the million at start-up, by
// position: a query selects `grade_columns!` first). Macros rather than
// constants so that `concat!` builds each query as one static string.
macro_rules! grade_columns {
    () => {
        "g.id AS id, g.student_id AS student_id, g.subject AS subject, g.value AS value, \
         g.coefficient AS coefficient, g.label AS label, g.published AS published"
    };
}
macro_rules! student_columns {
    () => {
        "s.id AS id, s.first_name AS first_name, s.last_name AS last_name, \
         s.number AS number, s.email AS email, p.name AS promotion"
    };
}

// After the column macros, which they use.
mod log;
mod write;

use write::Context;

impl SqliteStore {
    /// Gives (`given`) or takes away a teacher's grant on a promotion.
    async fn grant(
        &self,
        name: &str,
        username: &str,
        given: bool,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        let (name, username) = (name.to_owned(), username.to_owned());
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::promotion_grant(tx, &name, &username, given, &ctx)
            })
            .await
    }

    /// Opens (creating if needed) the database file at `url`
    /// (`sqlite://path` or `sqlite:path`; not an in-memory database, which
    /// the writer's own connection would not see, and no options after a
    /// `?`) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty() && !p.contains('?') && !p.starts_with(":memory:"))
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "'{}' is not a database file's URL: use sqlite://PATH",
                    url.escape_debug()
                ))
            })?;
        Self::open(Path::new(path)).await
    }

    /// Opens (creating if needed) the database file at `path` and brings
    /// its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_flushing(path, flush::wal_flush).await
    }

    /// As [`SqliteStore::open`], the writer making commits durable with
    /// the flush that `flush` opens.
    async fn open_flushing(
        path: &Path,
        flush: impl FnOnce(&Path) -> std::io::Result<flush::Flush> + Send + 'static,
    ) -> Result<Self> {
        let path = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || -> error::Result<Self> {
            let mut conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // FULL: a commit is on disk before it returns, so an `ok` reply
            // survives a power cut, not only a crash of the server.
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(Duration::from_secs(10))?;
            migrate::run(&mut conn)?;
            drop(conn);
            // The writer opens its own connection, on a schema now up to
            // date; the readers open theirs as reads need them.
            let writer = Arc::new(Writer::open(&path, flush)?);
            Ok(SqliteStore {
                writer,
                readers: Readers::new(path, READERS),
            })
        })
        .await
        .map_err(|e| StoreError::Backend(format!("opening the database stopped: {e}")))?;
        Ok(opened?)
    }
}

/// A grade's row as stored: value and coefficient in integer codes.
#[derive(Debug)]
struct GradeRow {
    id: i64,
    student: i64,
    subject: String,
    value: i64,
    coefficient: i64,
    label: Option<String>,
    published: bool,
}

impl GradeRow {
    /// Reads the columns of `grade_columns!`, which every query reading
    /// grades selects first and in that order. By position: a lookup by
    /// name searches the column names for every value, which made loading
    /// 1,000,000 grades at start-up take twice as long.
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(GradeRow {
            id: r.get(0)?,
            student: r.get(1)?,
            subject: r.get(2)?,
            value: r.get(3)?,
            coefficient: r.get(4)?,
            label: r.get(5)?,
            published: r.get(6)?,
        })
    }

    /// The grade; a code no valid write stores means a corrupt row.
    fn into_grade(self) -> error::Result<Grade> {
        let GradeRow {
            id,
            student,
            subject,
            value,
            coefficient,
            label,
            published,
        } = self;
        let value = GradeValue::from_code(value)
            .ok_or_else(|| StoreError::Corrupt(format!("grade {id} has value code {value}")))?;
        let coefficient = Coefficient::from_hundredths(coefficient).map_err(|_| {
            StoreError::Corrupt(format!("grade {id} has coefficient {coefficient}"))
        })?;
        Ok(Grade {
            id,
            student,
            subject,
            value,
            coefficient,
            label,
            published,
        })
    }
}

/// Reads a promotion's record from `id, name, year, description,
/// created_by, publication, locked`.
fn promotion_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<error::Result<PromotionRecord>> {
    let (id, name, year, description, created_by) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
    let (publication, locked): (String, bool) = (r.get(5)?, r.get(6)?);
    Ok(gradebook_store::stored_publication(&publication)
        .map(|publication| PromotionRecord {
            id,
            name,
            year,
            description,
            created_by,
            publication,
            locked,
        })
        .map_err(Into::into))
}

/// Reads the columns of `student_columns!`.
fn student_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Student> {
    Ok(Student {
        id: r.get("id")?,
        first_name: r.get("first_name")?,
        last_name: r.get("last_name")?,
        number: r.get("number")?,
        email: r.get("email")?,
        promotion: r.get("promotion")?,
    })
}

/// Parses a role stored as text; a bad one means a corrupt row.
fn role_from_db(s: &str) -> std::result::Result<Role, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("unknown role '{s}' in the users table")))
}

/// An account's row (`username`, `role`, `student_id`).
fn user_from_row(r: &rusqlite::Row<'_>) -> error::Result<User> {
    Ok(User {
        username: r.get("username")?,
        role: role_from_db(&r.get::<_, String>("role")?)?,
        student: r.get("student_id")?,
    })
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

#[async_trait]
impl Store for SqliteStore {
    async fn user_count(&self) -> Result<u64> {
        self.readers
            .read(|conn| {
                let n: i64 = conn
                    .prepare_cached("SELECT COUNT(*) FROM users")?
                    .query_row([], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    async fn user_create(
        &self,
        user: &User,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<User> {
        let (user, hash, ctx) = (user.clone(), password_hash.to_owned(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::user_create(tx, &user, &hash, &ctx)
            })
            .await
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let username = username.to_owned();
        self.readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, username, password_hash, role, student_id FROM users \
                     WHERE username = $1",
                )?;
                let mut rows = stmt.query([&username])?;
                let Some(r) = rows.next()? else {
                    return Ok(None);
                };
                Ok(Some(Credentials {
                    user_id: r.get("id")?,
                    user: user_from_row(r)?,
                    password_hash: r.get("password_hash")?,
                }))
            })
            .await
    }

    async fn user_list(&self) -> Result<Vec<User>> {
        self.readers
            .read(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT username, role, student_id FROM users ORDER BY username",
                )?;
                let mut rows = stmt.query([])?;
                let mut users = Vec::new();
                while let Some(r) = rows.next()? {
                    users.push(user_from_row(r)?);
                }
                Ok(users)
            })
            .await
    }

    async fn user_delete(&self, username: &str, ctx: WriteContext<'_>) -> Result<()> {
        let (username, ctx) = (username.to_owned(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::user_delete(tx, &username, &ctx)
            })
            .await
    }

    async fn user_set_password(
        &self,
        username: &str,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        let (username, hash) = (username.to_owned(), password_hash.to_owned());
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::user_set_password(tx, &username, &hash, &ctx)
            })
            .await
    }

    async fn session_create(
        &self,
        token_hash: &[u8],
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let token_hash = token_hash.to_vec();
        self.writer
            .run(move |tx| write::session_create(tx, &token_hash, user_id, now, expires_at))
            .await
    }

    async fn session_get(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        let token_hash = token_hash.to_vec();
        self.readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT u.id AS user_id, u.username AS username, u.role AS role, \
                     u.student_id AS student_id, s.created_at AS created_at, \
                     s.last_seen AS last_seen, s.expires_at AS expires_at \
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                )?;
                let mut rows = stmt.query([&token_hash])?;
                let Some(r) = rows.next()? else {
                    return Ok(None);
                };
                Ok(Some(SessionRecord {
                    user_id: r.get("user_id")?,
                    user: user_from_row(r)?,
                    created_at: r.get("created_at")?,
                    last_seen: r.get("last_seen")?,
                    expires_at: r.get("expires_at")?,
                }))
            })
            .await
    }

    async fn session_touch(&self, token_hash: &[u8], now: i64) -> Result<()> {
        let token_hash = token_hash.to_vec();
        self.writer
            .run(move |tx| write::session_touch(tx, &token_hash, now))
            .await
    }

    async fn session_delete(&self, token_hash: &[u8], ctx: WriteContext<'_>) -> Result<()> {
        let (token_hash, ctx) = (token_hash.to_vec(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::session_delete(tx, &token_hash, &ctx)
            })
            .await
    }

    async fn sessions_purge(&self, now: i64, idle_before: i64) -> Result<u64> {
        self.writer
            .run(move |tx| write::sessions_purge(tx, now, idle_before))
            .await
    }

    async fn promotion_create(
        &self,
        promotion: &Promotion,
        created_by: Option<i64>,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion> {
        let promotion = Promotion {
            students: 0,
            locked: false,
            ..promotion.clone()
        };
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::promotion_create(tx, &promotion, created_by, &ctx)
            })
            .await
    }

    async fn promotion_update(
        &self,
        name: &str,
        patch: &PromotionPatch,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion> {
        let (name, patch, ctx) = (name.to_owned(), patch.clone(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::promotion_update(tx, &name, &patch, &ctx)
            })
            .await
    }

    async fn promotion_lock(
        &self,
        name: &str,
        locked: bool,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion> {
        let (name, ctx) = (name.to_owned(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::promotion_lock(tx, &name, locked, &ctx)
            })
            .await
    }

    async fn grades_publish(
        &self,
        promotion: &str,
        selection: &GradeSelection,
        published: bool,
        ctx: WriteContext<'_>,
    ) -> Result<u64> {
        let (promotion, selection) = (promotion.to_owned(), selection.clone());
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::grades_publish(tx, &promotion, &selection, published, &ctx)
            })
            .await
    }

    async fn promotion_delete(&self, name: &str, force: bool, ctx: WriteContext<'_>) -> Result<()> {
        let (name, ctx) = (name.to_owned(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::promotion_delete(tx, &name, force, &ctx)
            })
            .await
    }

    async fn promotion_grant(
        &self,
        name: &str,
        username: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        self.grant(name, username, true, ctx).await
    }

    async fn promotion_revoke(
        &self,
        name: &str,
        username: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        self.grant(name, username, false, ctx).await
    }

    async fn student_add(
        &self,
        promotion: &str,
        student: &NewStudent,
        ctx: WriteContext<'_>,
    ) -> Result<Student> {
        let (promotion, student) = (promotion.to_owned(), student.clone());
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::student_add(tx, &promotion, &student, &ctx)
            })
            .await
    }

    async fn student_update(
        &self,
        id: i64,
        patch: &StudentPatch,
        ctx: WriteContext<'_>,
    ) -> Result<Student> {
        let (patch, ctx) = (patch.clone(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::student_update(tx, id, &patch, &ctx)
            })
            .await
    }

    async fn student_remove(&self, id: i64, ctx: WriteContext<'_>) -> Result<()> {
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| write::student_remove(tx, id, &ctx))
            .await
    }

    async fn grade_add(&self, grade: &NewGrade, ctx: WriteContext<'_>) -> Result<Grade> {
        let (grade, ctx) = (grade.clone(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| write::grade_add(tx, &grade, &ctx))
            .await
    }

    async fn import_students(
        &self,
        promotion: &str,
        students: Vec<(u64, NewStudent)>,
        ctx: WriteContext<'_>,
    ) -> Result<u64> {
        let (promotion, ctx) = (promotion.to_owned(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::import_students(tx, &promotion, &students, &ctx)
            })
            .await
    }

    async fn import_grades(
        &self,
        grades: Vec<(u64, NewGrade)>,
        ctx: WriteContext<'_>,
    ) -> Result<u64> {
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::import_grades(tx, &grades, &ctx)
            })
            .await
    }

    async fn grade_update(
        &self,
        id: i64,
        patch: &GradePatch,
        ctx: WriteContext<'_>,
    ) -> Result<Grade> {
        let (patch, ctx) = (patch.clone(), Context::new(&ctx));
        self.writer
            .run_queued(ctx.queued(), move |tx| {
                write::grade_update(tx, id, &patch, &ctx)
            })
            .await
    }

    async fn grade_delete(&self, id: i64, ctx: WriteContext<'_>) -> Result<()> {
        let ctx = Context::new(&ctx);
        self.writer
            .run_queued(ctx.queued(), move |tx| write::grade_delete(tx, id, &ctx))
            .await
    }

    async fn audit_list(&self, filter: AuditFilter<'_>) -> Result<Vec<AuditEntry>> {
        let promotion = filter.promotion.map(str::to_owned);
        let (student, limit) = (filter.student, i64::from(filter.limit));
        // Committed entries not yet on disk stay out: their writes are
        // not answered yet, and could still be lost.
        let durable = self.writer.durable_seq();
        self.readers
            .read(move |conn| {
                // One read transaction: the promotion and its entries come
                // from the same committed state.
                let tx = conn.transaction()?;
                let promotion = match &promotion {
                    Some(name) => Some(
                        tx.prepare_cached("SELECT id FROM promotions WHERE name = $1")?
                            .query_row([name], |r| r.get::<_, i64>(0))
                            .optional()?
                            .ok_or_else(|| no_promotion(name))?,
                    ),
                    None => None,
                };
                // With a promotion, its entries come from the index on
                // (promotion_id, seq), newest first; otherwise the log is
                // read from its end (a student's entries have no index of
                // their own: it would cost every write a page).
                // (?1, the promotion, is NULL in the second; ?N is the Nth value
                // whatever the order the SQL names them in.)
                let mut stmt = tx.prepare_cached(match promotion {
                    Some(_) => {
                        "SELECT seq, at, username, command, grade_id, student_id, old, new \
                         FROM changes WHERE promotion_id = ?1 AND seq <= ?4 AND kind = 'grade' \
                         AND (?2 IS NULL OR student_id = ?2) ORDER BY seq DESC LIMIT ?3"
                    }
                    None => {
                        "SELECT seq, at, username, command, grade_id, student_id, old, new \
                         FROM changes WHERE ?1 IS NULL AND seq <= ?4 AND kind = 'grade' \
                         AND (?2 IS NULL OR student_id = ?2) ORDER BY seq DESC LIMIT ?3"
                    }
                })?;
                let mut rows = stmt.query(rusqlite::params![promotion, student, limit, durable])?;
                let mut entries = Vec::new();
                while let Some(r) = rows.next()? {
                    let id: i64 = r.get("seq")?;
                    let parse = |column: &str| -> error::Result<Option<Grade>> {
                        let text: Option<String> = r.get(column)?;
                        Ok(text
                            .map(|s| serde_json::from_str(&s))
                            .transpose()
                            .map_err(|e| StoreError::Corrupt(format!("audit entry {id}: {e}")))?)
                    };
                    entries.push(AuditEntry {
                        id,
                        at: r.get("at")?,
                        by: r.get("username")?,
                        action: r.get("command")?,
                        grade: r.get("grade_id")?,
                        student: r.get("student_id")?,
                        old: parse("old")?,
                        new: parse("new")?,
                    });
                }
                Ok(entries)
            })
            .await
    }

    async fn follow(&self, follower: std::sync::Arc<dyn Follower>) -> Result<()> {
        // On the writer thread, between batches: no batch falls between the
        // snapshot and the first one the follower receives.
        self.writer
            .exclusive(move |conn, state| {
                follower.load(log::snapshot(conn, state.head)?);
                state.follower = Some(follower);
                Ok(())
            })
            .await
    }

    async fn verify_log(&self) -> Result<ChainReport> {
        // On a reader's connection, in one read transaction: a long log is
        // checked against one committed state without holding up writes.
        self.readers
            .read(|conn| {
                let tx = conn.transaction()?;
                log::verify(&tx)
            })
            .await
    }

    async fn changes_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<(ChangeRecord, Option<i64>)>> {
        self.readers
            .read(move |conn| log::after(conn, seq, limit))
            .await
    }

    async fn login_wait(&self, keys: &[String], now: i64) -> Result<Option<i64>> {
        let keys = keys.to_vec();
        self.readers
            .read(move |conn| {
                let mut longest = None;
                for key in &keys {
                    let until: Option<Option<i64>> = conn
                        .prepare_cached("SELECT blocked_until FROM login_failures WHERE key = $1")?
                        .query_row([key], |r| r.get(0))
                        .optional()?;
                    let wait = until
                        .flatten()
                        .filter(|u| *u > now)
                        .map(|u| (u - now).max(1));
                    longest = longest.max(wait);
                }
                Ok(longest)
            })
            .await
    }

    async fn login_failed(&self, keys: &[String], now: i64) -> Result<()> {
        let keys = keys.to_vec();
        self.writer
            .run(move |tx| write::login_failed(tx, &keys, now))
            .await
    }

    async fn login_succeeded(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.writer
            .run(move |tx| write::login_succeeded(tx, &key))
            .await
    }

    async fn login_failures_purge(&self, now: i64) -> Result<u64> {
        self.writer
            .run(move |tx| write::login_failures_purge(tx, now))
            .await
    }

    async fn request_reply(&self, session: &[u8], id: &str) -> Result<Option<String>> {
        let (session, id) = (session.to_vec(), id.to_owned());
        self.readers
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT reply FROM udp_requests WHERE session = $1 AND request_id = $2",
                    )?
                    .query_row(rusqlite::params![session, id], |r| r.get("reply"))
                    .optional()?)
            })
            .await
    }

    async fn requests_purge(&self, before: i64) -> Result<u64> {
        self.writer
            .run(move |tx| write::requests_purge(tx, before))
            .await
    }

    async fn close(&self) {
        self.readers.close();
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
    use gradebook_core::Role;
    use gradebook_store::RequestKey;

    /// A store in a temporary directory (kept alive by the first element),
    /// the path of its database file, and the id of its one student.
    async fn store_with_student() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore, i64) {
        store_with_student_flushing(flush::wal_flush).await
    }

    /// As [`store_with_student`], commits made durable by `flush`.
    async fn store_with_student_flushing(
        flush: impl FnOnce(&Path) -> std::io::Result<flush::Flush> + Send + 'static,
    ) -> (tempfile::TempDir, std::path::PathBuf, SqliteStore, i64) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open_flushing(&path, flush)
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
            .promotion_create(&Promotion::new("P"), None, ctx)
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
        (dir, path, store, s.id)
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
        let (_dir, path, store, student) = store_with_student().await;
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
        assert_eq!(grades_of(&path, student), 200);
        // Durable: a fresh store on the same file sees them all.
        store.close().await;
        let again = SqliteStore::open(&path).await.expect("reopens");
        assert_eq!(grades_of(&path, student), 200);
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
        let (_dir, path, store, student) = store_with_student().await;
        let fits: gradebook_store::Fits = std::sync::Arc::new(|_: &serde_json::Value| true);
        let ctx = WriteContext {
            by: "admin",
            at: 10,
            queued: None,
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
        assert_eq!(grades_of(&path, student), 1);
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
        assert_eq!(grades_of(&path, student), 2);
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
    async fn reads_see_accounts_sessions_and_fail_once_closed() {
        let (_dir, _path, store, _student) = store_with_student().await;
        let admin = store
            .user_credentials("admin")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(admin.user.role, Role::Admin);
        assert_eq!(admin.password_hash, "hash");
        assert!(
            store
                .user_credentials("nobody")
                .await
                .expect("reads")
                .is_none()
        );
        store
            .session_create(b"token", admin.user_id, 10, 100)
            .await
            .expect("creates");
        let s = store
            .session_get(b"token")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(
            (s.user.username.as_str(), s.created_at, s.expires_at),
            ("admin", 10, 100)
        );
        assert!(store.session_get(b"other").await.expect("reads").is_none());
        assert_eq!(store.user_count().await.expect("counts"), 1);
        assert_eq!(store.user_list().await.expect("lists"), [admin.user]);
        let unknown = store
            .audit_list(AuditFilter {
                promotion: Some("nope"),
                student: None,
                limit: 10,
            })
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound(_))),
            "{unknown:?}"
        );
        store.close().await;
        let closed = store.user_count().await;
        assert!(matches!(closed, Err(StoreError::Closed)), "{closed:?}");
    }

    #[tokio::test]
    async fn only_a_database_file_url_opens() {
        for url in [
            "sqlite::memory:",
            "sqlite://",
            "sqlite://t.db?mode=rwc",
            "postgres://x",
        ] {
            let r = SqliteStore::connect(url).await;
            assert!(matches!(r, Err(StoreError::Backend(_))), "{url}");
        }
    }

    #[tokio::test]
    async fn a_result_that_does_not_fit_rolls_the_write_back() {
        let (_dir, path, store, student) = store_with_student().await;
        let fits: gradebook_store::Fits = std::sync::Arc::new(|_: &serde_json::Value| false);
        let ctx = WriteContext {
            by: "admin",
            at: 10,
            queued: None,
            request: Some(RequestKey {
                session: b"session",
                id: "1",
                fits: &fits,
            }),
        };
        let r = store.grade_add(&grade(student), ctx).await;
        assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
        assert_eq!(grades_of(&path, student), 0);
        let r = store
            .promotion_create(&Promotion::new("Q"), None, ctx)
            .await;
        assert!(matches!(r, Err(StoreError::TooLarge)), "{r:?}");
        assert_eq!(
            count(
                &path,
                "SELECT COUNT(*) FROM promotions WHERE name = $1",
                "Q"
            ),
            0
        );
        assert_eq!(
            store.request_reply(b"session", "1").await.expect("reads"),
            None
        );
    }

    /// A database written before ids were protected: the newest student and
    /// grade were deleted (the audit log still names them), and another
    /// student deleted left no row at all. After the migration, new ids
    /// start above every id that was ever given or mentioned, and the data
    /// is all there.
    #[tokio::test]
    async fn the_migration_keeps_the_data_and_gives_no_old_id_again() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("old.db");
        // The old layout, as sqlx left it: migrations 1 and 2 applied and
        // recorded in `_sqlx_migrations`, no `schema_migrations`.
        let conn = raw(&path);
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .expect("sets up");
        conn.execute_batch(crate::migrate::tests::SQLX_TABLE)
            .expect("sqlx's table");
        for (version, description, sql) in [
            (1, "init", include_str!("../migrations/0001_init.sql")),
            (
                2,
                "udp requests",
                include_str!("../migrations/0002_udp_requests.sql"),
            ),
        ] {
            conn.execute_batch(sql).expect("an old migration");
            conn.execute(
                "INSERT INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES ($1, $2, 1, x'00', 1)",
                rusqlite::params![version, description],
            )
            .expect("records it");
        }
        conn.execute_batch(
            "INSERT INTO users VALUES (1, 'admin', 'hash', 'admin', NULL, 0);
             INSERT INTO promotions VALUES (1, 'P', NULL, NULL, 1, 0);
             INSERT INTO students VALUES (1, 1, 'A', 'B', NULL, NULL, 0);
             INSERT INTO students VALUES (2, 1, 'C', 'D', NULL, NULL, 0);
             INSERT INTO grades VALUES (1, 1, 'S', 1200, 100, NULL, 0);
             INSERT INTO audit VALUES (1, 0, 'admin', 'grade.add', 1, 1, 1, NULL, NULL);
             INSERT INTO audit VALUES (2, 0, 'admin', 'grade.add', 7, 5, 1, NULL, NULL);",
        )
        .expect("old rows");
        // Student 2 is deleted: a plain INTEGER PRIMARY KEY would give 2
        // again, and the audit's student 5 and grade 7 are long gone.
        conn.execute("DELETE FROM students WHERE id = 2", [])
            .expect("deletes");
        drop(conn);

        let store = SqliteStore::open(&path).await.expect("migrates");
        // Versions 1 and 2 were taken as applied, 3 and 4 ran.
        assert_eq!(
            count(
                &path,
                "SELECT COUNT(*) FROM schema_migrations WHERE version <= $1",
                4
            ),
            4
        );
        assert_eq!(grades_of(&path, 1), 1);
        assert_eq!(
            count(
                &path,
                "SELECT COUNT(*) FROM students WHERE first_name = $1",
                "A"
            ),
            1
        );
        let ctx = WriteContext::new("admin", 1);
        let s = store
            .student_add(
                "P",
                &NewStudent {
                    first_name: "E".into(),
                    last_name: "F".into(),
                    number: None,
                    email: None,
                },
                ctx,
            )
            .await
            .expect("adds");
        assert_eq!(s.id, 6, "above student 5, named by the audit log");
        let g = store.grade_add(&grade(s.id), ctx).await.expect("adds");
        assert_eq!(g.id, 8, "above grade 7, named by the audit log");
        let p = store
            .promotion_create(&Promotion::new("Q"), None, ctx)
            .await
            .expect("creates");
        assert_eq!(p.name, "Q");
        // Foreign keys still hold after the rebuild: a grade for a student
        // who does not exist is refused.
        assert!(store.grade_add(&grade(99), ctx).await.is_err());
        // And cascades still run: removing the student removes its grades.
        store.student_remove(s.id, ctx).await.expect("removes");
        assert_eq!(
            count(&path, "SELECT COUNT(*) FROM grades WHERE id = $1", g.id),
            0
        );
        // The audit entries moved into the change log, first in it, and
        // were sealed into the chain with the entries written since.
        let audit = store
            .audit_list(AuditFilter {
                promotion: None,
                student: None,
                limit: 100,
            })
            .await
            .expect("audit");
        let seqs: Vec<i64> = audit.iter().map(|e| e.id).collect();
        assert_eq!(&seqs[seqs.len() - 2..], [2, 1]);
        assert_eq!(audit[audit.len() - 1].grade, 1);
        let report = store.verify_log().await.expect("verifies");
        assert_eq!(report.problem, None);
        assert!(report.entries > 2, "{report:?}");
        store.close().await;
        // Opened again, there is nothing left to migrate.
        let again = SqliteStore::open(&path).await.expect("reopens");
        assert_eq!(again.verify_log().await.expect("verifies").problem, None);
        again.close().await;
    }

    /// Opens the database file at `path` with a plain connection.
    fn raw(path: &std::path::Path) -> rusqlite::Connection {
        rusqlite::Connection::open(path).expect("opens")
    }

    /// What `sql` (a `SELECT COUNT(*)` with one parameter) counts, through
    /// a connection of its own: only what was committed.
    fn count(path: &std::path::Path, sql: &str, key: impl rusqlite::ToSql) -> i64 {
        raw(path)
            .query_row(sql, [key], |r| r.get(0))
            .expect("counts")
    }

    /// How many grades the student has.
    fn grades_of(path: &std::path::Path, student: i64) -> i64 {
        count(
            path,
            "SELECT COUNT(*) FROM grades WHERE student_id = $1",
            student,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_shows_in_the_audit_log_only_once_it_is_on_disk() {
        let (flush, go) = flush::gated();
        // The set-up's three writes (account, promotion, student), one
        // flush each.
        for _ in 0..3 {
            go.send(Ok(())).expect("flushes");
        }
        let (_dir, path, store, student) = store_with_student_flushing(flush).await;
        let audit = || {
            store.audit_list(AuditFilter {
                promotion: None,
                student: Some(student),
                limit: 10,
            })
        };
        let writing = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .grade_add(&grade(student), WriteContext::new("admin", 2))
                    .await
            }
        });
        // Committed (another connection sees the row), not yet flushed.
        for _ in 0..400 {
            if grades_of(&path, student) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(grades_of(&path, student), 1);
        assert!(audit().await.expect("audit").is_empty());
        assert!(!writing.is_finished(), "answered before its flush");
        go.send(Ok(())).expect("flushes");
        let added = writing.await.expect("task").expect("added");
        let entries = audit().await.expect("audit");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].grade, added.id);
    }

    #[tokio::test]
    async fn every_write_is_logged_in_order_and_reaches_the_follower_after_its_snapshot() {
        let (_dir, _path, store, student) = store_with_student().await;
        #[derive(Default)]
        struct Recorder {
            snapshot: std::sync::Mutex<Option<gradebook_store::Snapshot>>,
            received: std::sync::Mutex<Vec<gradebook_store::ChangeRecord>>,
        }
        impl Follower for Recorder {
            fn load(&self, snapshot: gradebook_store::Snapshot) {
                *self.snapshot.lock().expect("lock") = Some(snapshot);
            }
            fn apply(&self, batch: &[gradebook_store::ChangeRecord]) {
                self.received.lock().expect("lock").extend_from_slice(batch);
            }
        }
        let recorder = std::sync::Arc::new(Recorder::default());
        store.follow(recorder.clone()).await.expect("follows");
        let snapshot = recorder
            .snapshot
            .lock()
            .expect("lock")
            .clone()
            .expect("loaded");
        assert_eq!(snapshot.students.len(), 1);
        assert_eq!(snapshot.promotions.len(), 1);
        // The admin account, the promotion and the student came before.
        assert_eq!(snapshot.seq, 3);

        let ctx = WriteContext::new("admin", 5);
        let g = store.grade_add(&grade(student), ctx).await.expect("adds");
        let patch = GradePatch {
            coefficient: Some(Coefficient::from_hundredths(200).expect("2")),
            ..GradePatch::default()
        };
        store
            .grade_update(g.id, &patch, ctx)
            .await
            .expect("updates");
        store.student_remove(student, ctx).await.expect("removes");
        // A failing write logs nothing.
        assert!(store.grade_delete(g.id, ctx).await.is_err());

        let received = recorder.received.lock().expect("lock").clone();
        let seqs: Vec<i64> = received.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [4, 5, 6, 7]);
        let commands: Vec<&str> = received.iter().map(|r| r.command.as_str()).collect();
        assert_eq!(
            commands,
            [
                "grade.add",
                "grade.update",
                "student.remove",
                "student.remove"
            ]
        );
        assert!(
            matches!(&received[2].change, gradebook_store::Change::Grade(d) if d.new.is_none())
        );
        assert!(
            matches!(&received[3].change, gradebook_store::Change::Student(d) if d.new.is_none())
        );

        // What was logged is what is stored.
        let report = store.verify_log().await.expect("verifies");
        assert_eq!(
            (report.entries, report.last_seq, report.problem),
            (7, 7, None)
        );
        store.close().await;
    }

    #[tokio::test]
    async fn an_edited_or_deleted_entry_breaks_the_chain() {
        let (_dir, path, store, student) = store_with_student().await;
        let ctx = WriteContext::new("admin", 5);
        for _ in 0..3 {
            store.grade_add(&grade(student), ctx).await.expect("adds");
        }
        assert_eq!(store.verify_log().await.expect("verifies").problem, None);

        let conn = raw(&path);
        conn.execute("UPDATE changes SET username = 'mallory' WHERE seq = 5", [])
            .expect("edits");
        let p = store.verify_log().await.expect("verifies").problem;
        assert_eq!(p.map(|p| p.seq), Some(5));
        conn.execute("UPDATE changes SET username = 'admin' WHERE seq = 5", [])
            .expect("restores");
        assert_eq!(store.verify_log().await.expect("verifies").problem, None);

        conn.execute("DELETE FROM changes WHERE seq = 6", [])
            .expect("deletes the last");
        let p = store.verify_log().await.expect("verifies").problem;
        assert_eq!(p.map(|p| p.seq), Some(6));
        conn.execute("DELETE FROM changes WHERE seq = 2", [])
            .expect("deletes one in the middle");
        let p = store.verify_log().await.expect("verifies").problem;
        assert_eq!(p.map(|p| p.seq), Some(2));
        store.close().await;
    }

    #[tokio::test]
    async fn an_entry_stripped_of_its_hash_is_reported_not_sealed_again_at_start_up() {
        let (_dir, path, store, student) = store_with_student().await;
        let ctx = WriteContext::new("admin", 5);
        for _ in 0..3 {
            store.grade_add(&grade(student), ctx).await.expect("adds");
        }
        store.close().await;

        // Only the entries moved over from the old audit table, first in
        // the log, ever lack a hash; start-up seals those once. An entry
        // edited and stripped of its hash later is tampering: the next
        // start-up must leave it for the check to find, not hash it and
        // everything after it anew.
        raw(&path)
            .execute(
                "UPDATE changes SET username = 'mallory', hash = NULL WHERE seq = 4",
                [],
            )
            .expect("edits");
        let store = SqliteStore::open(&path).await.expect("reopens");
        let p = store.verify_log().await.expect("verifies").problem;
        assert_eq!(p.map(|p| p.seq), Some(4));
        store.close().await;
    }
}
