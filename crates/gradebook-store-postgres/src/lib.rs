//! The PostgreSQL backend of gradebook's [`gradebook_store::Store`].
//!
//! One driver, tokio-postgres, with connections from deadpool pools. Writes
//! go to one writer task ([`writer`]: group commit, like the SQLite
//! backend's writer thread, on a pool of one connection of its own); reads
//! take a connection of the readers' pool each. The writes themselves are
//! in [`write`], the change log in [`log`], the schema's migrations in
//! [`migrate`]. Driver errors become [`gradebook_store::StoreError`]s in
//! [`error`]: none of the driver's types, and no SQL, reaches a client.
//!
//! Behaviour, as seen through the trait, is the SQLite backend's: the same
//! errors and messages, the same order of lists, the same change-log
//! entries and hash chain, the same at-most-once UDP requests. After each
//! committed batch that appended to the change log, the batch's
//! transaction has run `NOTIFY gradebook_changes, '<last seq>'`, for other
//! servers tailing the log ([`PostgresStore::changes_after`]).

#![forbid(unsafe_code)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use gradebook_core::{Coefficient, Grade, GradeValue, Promotion, Role, Student, User};
use gradebook_store::{
    AuditEntry, AuditFilter, ChainReport, ChangeRecord, Credentials, Follower, GradePatch,
    GradeSelection, NewGrade, NewStudent, PromotionPatch, PromotionRecord, Result, SessionRecord,
    Store, StoreError, StudentPatch, WriteContext,
};
use tokio_postgres::{IsolationLevel, NoTls, Row};

mod error;
mod import;
mod migrate;
mod tail;
#[cfg(feature = "testing")]
pub mod testing;
mod writer;

// Column lists shared by several queries, each column named as the row
// readers below ask for it (grades by position: a query selects
// `grade_columns!` first). Macros rather than constants so that `concat!`
// builds each query as one static string.
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

pub use import::Import;
use tail::{Barrier, Delivery};
use write::Context;
use writer::{BoxFuture, Writer};

/// How many reads may run at once, each on a connection of its own.
const READERS: usize = 8;

/// How long a read or write waits for a connection before the storage is
/// reported unavailable.
const WAIT: Duration = Duration::from_secs(10);

/// The PostgreSQL store. Clones share the same pools and writer.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    writer: Arc<Writer>,
    readers: Pool,
    /// The one door to the follower (the writer's batches, the tail's).
    delivery: Arc<Delivery>,
    /// Where linearizable reads wait.
    barrier: Arc<Barrier>,
    /// The connection settings, for the tail's own connection.
    config: tokio_postgres::Config,
    /// The tail, once a follower follows.
    tail: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Runs a write on the writer task, telling the context's `queued` once it
/// is queued: `write!(self, ctx, |tx| write::f(tx, …, &ctx))`, where the
/// body is an expression of a future borrowing `tx` and what the closure
/// owns.
macro_rules! write {
    ($self:ident, $ctx:ident, |$tx:ident| $body:expr) => {{
        let queued = $ctx.queued();
        $self
            .writer
            .run_queued(queued, move |$tx| -> BoxFuture<'_, error::Result<_>> {
                Box::pin(async move { $body.await })
            })
            .await
    }};
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or
    /// `postgresql://…`, e.g. `postgres://user@127.0.0.1:5432/db` or
    /// `postgres://user@/db?host=/path/to/socket/dir`), brings its schema up
    /// to date and returns a ready store. An unreachable server is
    /// [`StoreError::Unavailable`]; a URL that is not PostgreSQL's,
    /// [`StoreError::Backend`]; a schema that cannot be brought up to date,
    /// [`StoreError::Migrate`].
    pub async fn connect(url: &str) -> Result<Self> {
        let config = parse_url(url)?;
        let readers = pool(&config, READERS)?;
        let writers = pool(&config, 1)?;
        let head = {
            let mut client = writers.get().await.map_err(error::from_pool)?;
            migrate::run(&mut client).await?;
            log::head(&client).await?
        };
        let delivery = Arc::new(Delivery::new(&config)?);
        Ok(PostgresStore {
            writer: Arc::new(Writer::start(writers, head, delivery.clone())),
            readers,
            delivery,
            barrier: Arc::new(Barrier::new()),
            config,
            tail: Arc::default(),
        })
    }

    /// The committed change-log entries after `seq`, at most `limit` of
    /// them (none if `limit` is 0 or less), in seq order: what another
    /// server tailing the log (woken by `NOTIFY gradebook_changes`) applies.
    pub async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<ChangeRecord>> {
        let client = self.reader().await?;
        Ok(log::after(&client, seq, limit).await?)
    }

    /// A connection from the readers' pool.
    async fn reader(&self) -> Result<Object> {
        self.readers.get().await.map_err(error::from_pool)
    }

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
        write!(self, ctx, |tx| write::promotion_grant(
            tx, &name, &username, given, &ctx
        ))
    }

    /// Runs `write`, which tells no one it is queued (session bookkeeping).
    async fn bookkeeping<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut log::Batch) -> BoxFuture<'a, error::Result<T>> + Send + 'static,
    {
        self.writer.run(write).await
    }
}

/// The driver's configuration for `url`; an error that never quotes the
/// URL, which may hold a password.
fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Backend(
            "not a PostgreSQL database's URL: use postgres://USER@HOST:PORT/DATABASE".into(),
        ));
    }
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        StoreError::Backend(format!("the PostgreSQL database's URL does not parse: {e}"))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(WAIT);
    }
    if config.get_application_name().is_none() {
        config.application_name("gradebook");
    }
    Ok(config)
}

/// A pool of at most `size` connections to the database `config` names.
fn pool(config: &tokio_postgres::Config, size: usize) -> Result<Pool> {
    build_pool(pool_builder(config, size))
}

/// A pool's settings before it is built, for a pool that needs more (a
/// hook run on each new connection, say).
fn pool_builder(config: &tokio_postgres::Config, size: usize) -> deadpool_postgres::PoolBuilder {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(WAIT))
        .recycle_timeout(Some(WAIT))
}

fn build_pool(builder: deadpool_postgres::PoolBuilder) -> Result<Pool> {
    builder
        .build()
        .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))
}

/// Reads the columns of `grade_columns!`, which every query reading grades
/// selects first and in that order; a code no valid write stores means a
/// corrupt row.
fn grade_from_row(r: &Row) -> error::Result<Grade> {
    let id: i64 = r.try_get(0)?;
    let value: i64 = r.try_get(3)?;
    let coefficient: i64 = r.try_get(4)?;
    let value = GradeValue::from_code(value)
        .ok_or_else(|| StoreError::Corrupt(format!("grade {id} has value code {value}")))?;
    let coefficient = Coefficient::from_hundredths(coefficient)
        .map_err(|_| StoreError::Corrupt(format!("grade {id} has coefficient {coefficient}")))?;
    Ok(Grade {
        id,
        student: r.try_get(1)?,
        subject: r.try_get(2)?,
        value,
        coefficient,
        label: r.try_get(5)?,
        published: r.try_get(6)?,
    })
}

/// Reads a promotion's record from `id, name, year, description,
/// created_by, publication, locked`.
fn promotion_from_row(r: &Row) -> error::Result<PromotionRecord> {
    Ok(PromotionRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        year: r.try_get(2)?,
        description: r.try_get(3)?,
        created_by: r.try_get(4)?,
        publication: gradebook_store::stored_publication(r.try_get(5)?)?,
        locked: r.try_get(6)?,
    })
}

/// Reads the columns of `student_columns!`.
fn student_from_row(r: &Row) -> error::Result<Student> {
    Ok(Student {
        id: r.try_get("id")?,
        first_name: r.try_get("first_name")?,
        last_name: r.try_get("last_name")?,
        number: r.try_get("number")?,
        email: r.try_get("email")?,
        promotion: r.try_get("promotion")?,
    })
}

/// Parses a role stored as text; a bad one means a corrupt row.
fn role_from_db(s: &str) -> std::result::Result<Role, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("unknown role '{s}' in the users table")))
}

/// An account's row (`username`, `role`, `student_id`).
fn user_from_row(r: &Row) -> error::Result<User> {
    let role: String = r.try_get("role")?;
    Ok(User {
        username: r.try_get("username")?,
        role: role_from_db(&role)?,
        student: r.try_get("student_id")?,
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

fn number_taken(number: Option<&str>) -> String {
    match number {
        Some(n) => format!(
            "a student with number '{}' already exists",
            n.escape_debug()
        ),
        None => "this student conflicts with an existing one".to_owned(),
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn user_count(&self) -> Result<u64> {
        let client = self.reader().await?;
        let read = async {
            let stmt = client.prepare_cached("SELECT COUNT(*) FROM users").await?;
            let n: i64 = client.query_one(&stmt, &[]).await?.try_get(0)?;
            Ok::<_, error::Error>(u64::try_from(n).unwrap_or(0))
        };
        Ok(read.await?)
    }

    async fn user_create(
        &self,
        user: &User,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<User> {
        let (user, hash, ctx) = (user.clone(), password_hash.to_owned(), Context::new(&ctx));
        write!(self, ctx, |tx| write::user_create(tx, &user, &hash, &ctx))
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let client = self.reader().await?;
        let read = async {
            let stmt = client
                .prepare_cached(
                    "SELECT id, username, password_hash, role, student_id FROM users \
                     WHERE username = $1",
                )
                .await?;
            let Some(r) = client.query_opt(&stmt, &[&username]).await? else {
                return Ok(None);
            };
            Ok::<_, error::Error>(Some(Credentials {
                user_id: r.try_get("id")?,
                user: user_from_row(&r)?,
                password_hash: r.try_get("password_hash")?,
            }))
        };
        Ok(read.await?)
    }

    async fn user_list(&self) -> Result<Vec<User>> {
        let client = self.reader().await?;
        let read = async {
            // By the names' bytes, as SQLite sorts them, whatever the
            // database's collation.
            let stmt = client
                .prepare_cached(
                    "SELECT username, role, student_id FROM users ORDER BY username COLLATE \"C\"",
                )
                .await?;
            client
                .query(&stmt, &[])
                .await?
                .iter()
                .map(user_from_row)
                .collect::<error::Result<Vec<_>>>()
        };
        Ok(read.await?)
    }

    async fn user_delete(&self, username: &str, ctx: WriteContext<'_>) -> Result<()> {
        let (username, ctx) = (username.to_owned(), Context::new(&ctx));
        write!(self, ctx, |tx| write::user_delete(tx, &username, &ctx))
    }

    async fn user_set_password(
        &self,
        username: &str,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()> {
        let (username, hash) = (username.to_owned(), password_hash.to_owned());
        let ctx = Context::new(&ctx);
        write!(self, ctx, |tx| write::user_set_password(
            tx, &username, &hash, &ctx
        ))
    }

    async fn session_create(
        &self,
        token_hash: &[u8],
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let token_hash = token_hash.to_vec();
        self.bookkeeping(move |tx| {
            Box::pin(async move {
                write::session_create(tx, &token_hash, user_id, now, expires_at).await
            })
        })
        .await
    }

    async fn session_get(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        let client = self.reader().await?;
        let read = async {
            let stmt = client
                .prepare_cached(
                    "SELECT u.id AS user_id, u.username AS username, u.role AS role, \
                     u.student_id AS student_id, s.created_at AS created_at, \
                     s.last_seen AS last_seen, s.expires_at AS expires_at \
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                )
                .await?;
            let Some(r) = client.query_opt(&stmt, &[&token_hash]).await? else {
                return Ok(None);
            };
            Ok::<_, error::Error>(Some(SessionRecord {
                user_id: r.try_get("user_id")?,
                user: user_from_row(&r)?,
                created_at: r.try_get("created_at")?,
                last_seen: r.try_get("last_seen")?,
                expires_at: r.try_get("expires_at")?,
            }))
        };
        Ok(read.await?)
    }

    async fn session_touch(&self, token_hash: &[u8], now: i64) -> Result<()> {
        let token_hash = token_hash.to_vec();
        self.bookkeeping(move |tx| {
            Box::pin(async move { write::session_touch(tx, &token_hash, now).await })
        })
        .await
    }

    async fn session_delete(&self, token_hash: &[u8], ctx: WriteContext<'_>) -> Result<()> {
        let (token_hash, ctx) = (token_hash.to_vec(), Context::new(&ctx));
        write!(self, ctx, |tx| write::session_delete(tx, &token_hash, &ctx))
    }

    async fn sessions_purge(&self, now: i64, idle_before: i64) -> Result<u64> {
        self.bookkeeping(move |tx| {
            Box::pin(async move { write::sessions_purge(tx, now, idle_before).await })
        })
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
        write!(self, ctx, |tx| write::promotion_create(
            tx, promotion, created_by, &ctx
        ))
    }

    async fn promotion_update(
        &self,
        name: &str,
        patch: &PromotionPatch,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion> {
        let (name, patch, ctx) = (name.to_owned(), patch.clone(), Context::new(&ctx));
        write!(self, ctx, |tx| write::promotion_update(
            tx, &name, &patch, &ctx
        ))
    }

    async fn promotion_lock(
        &self,
        name: &str,
        locked: bool,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion> {
        let (name, ctx) = (name.to_owned(), Context::new(&ctx));
        write!(self, ctx, |tx| write::promotion_lock(
            tx, &name, locked, &ctx
        ))
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
        write!(self, ctx, |tx| write::grades_publish(
            tx, &promotion, &selection, published, &ctx
        ))
    }

    async fn promotion_delete(&self, name: &str, force: bool, ctx: WriteContext<'_>) -> Result<()> {
        let (name, ctx) = (name.to_owned(), Context::new(&ctx));
        write!(self, ctx, |tx| write::promotion_delete(
            tx, &name, force, &ctx
        ))
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
        write!(self, ctx, |tx| write::student_add(
            tx, &promotion, &student, &ctx
        ))
    }

    async fn student_update(
        &self,
        id: i64,
        patch: &StudentPatch,
        ctx: WriteContext<'_>,
    ) -> Result<Student> {
        let (patch, ctx) = (patch.clone(), Context::new(&ctx));
        write!(self, ctx, |tx| write::student_update(tx, id, &patch, &ctx))
    }

    async fn student_remove(&self, id: i64, ctx: WriteContext<'_>) -> Result<()> {
        let ctx = Context::new(&ctx);
        write!(self, ctx, |tx| write::student_remove(tx, id, &ctx))
    }

    async fn grade_add(&self, grade: &NewGrade, ctx: WriteContext<'_>) -> Result<Grade> {
        // Not a closure: the writer adds the grades of consecutive
        // `grade.add`s together.
        self.writer
            .add_grade(grade.clone(), Context::new(&ctx))
            .await
    }

    async fn grade_update(
        &self,
        id: i64,
        patch: &GradePatch,
        ctx: WriteContext<'_>,
    ) -> Result<Grade> {
        let (patch, ctx) = (patch.clone(), Context::new(&ctx));
        write!(self, ctx, |tx| write::grade_update(tx, id, &patch, &ctx))
    }

    async fn grade_delete(&self, id: i64, ctx: WriteContext<'_>) -> Result<()> {
        let ctx = Context::new(&ctx);
        write!(self, ctx, |tx| write::grade_delete(tx, id, &ctx))
    }

    async fn import_students(
        &self,
        promotion: &str,
        students: Vec<(u64, NewStudent)>,
        ctx: WriteContext<'_>,
    ) -> Result<u64> {
        let (promotion, ctx) = (promotion.to_owned(), Context::new(&ctx));
        write!(self, ctx, |tx| write::import_students(
            tx, &promotion, &students, &ctx
        ))
    }

    async fn import_grades(
        &self,
        grades: Vec<(u64, NewGrade)>,
        ctx: WriteContext<'_>,
    ) -> Result<u64> {
        let ctx = Context::new(&ctx);
        write!(self, ctx, |tx| write::import_grades(tx, &grades, &ctx))
    }

    async fn follow(&self, follower: Arc<dyn Follower>) -> Result<()> {
        // On the writer task, between batches: no batch falls between the
        // snapshot and the first one the follower receives.
        self.writer.follow(follower).await?;
        // Then other servers' writes too, as they commit.
        let tail = tail::spawn(self.config.clone(), self.delivery.clone());
        if let Ok(mut slot) = self.tail.lock()
            && let Some(old) = slot.replace(tail)
        {
            old.abort();
        }
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    async fn sync(&self) -> Result<()> {
        Ok(self.barrier.wait(&self.delivery).await?)
    }

    async fn audit_list(&self, filter: AuditFilter<'_>) -> Result<Vec<AuditEntry>> {
        let (student, limit) = (filter.student, i64::from(filter.limit));
        let mut client = self.reader().await?;
        let read = async {
            // One read transaction: the promotion and its entries come
            // from the same committed state.
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let promotion: Option<i64> = match filter.promotion {
                Some(name) => {
                    let stmt = tx
                        .prepare_cached("SELECT id FROM promotions WHERE name = $1")
                        .await?;
                    match tx.query_opt(&stmt, &[&name]).await? {
                        Some(r) => Some(r.try_get(0)?),
                        None => return Err(no_promotion(name).into()),
                    }
                }
                None => None,
            };
            // With a promotion, its entries come from the index on
            // (promotion_id, seq), newest first; otherwise the log is read
            // from its end (a student's entries have no index of their
            // own: it would cost every write an index entry). $1, the
            // promotion, is NULL in the second.
            let stmt = tx
                .prepare_cached(match promotion {
                    Some(_) => {
                        "SELECT seq, at, username, command, grade_id, student_id, old, new \
                         FROM changes WHERE promotion_id = $1 AND kind = 'grade' \
                         AND ($2::BIGINT IS NULL OR student_id = $2) \
                         ORDER BY seq DESC LIMIT $3"
                    }
                    None => {
                        "SELECT seq, at, username, command, grade_id, student_id, old, new \
                         FROM changes WHERE $1::BIGINT IS NULL AND kind = 'grade' \
                         AND ($2::BIGINT IS NULL OR student_id = $2) \
                         ORDER BY seq DESC LIMIT $3"
                    }
                })
                .await?;
            let rows = tx.query(&stmt, &[&promotion, &student, &limit]).await?;
            let mut entries = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: i64 = r.try_get("seq")?;
                let parse = |column: &str| -> error::Result<Option<Grade>> {
                    let text: Option<String> = r.try_get(column)?;
                    Ok(text
                        .map(|s| serde_json::from_str(&s))
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(format!("audit entry {id}: {e}")))?)
                };
                // Grade entries always name their grade and student.
                let grade: Option<i64> = r.try_get("grade_id")?;
                let student: Option<i64> = r.try_get("student_id")?;
                entries.push(AuditEntry {
                    id,
                    at: r.try_get("at")?,
                    by: r.try_get("username")?,
                    action: r.try_get("command")?,
                    grade: grade.ok_or_else(|| {
                        StoreError::Corrupt(format!("audit entry {id} names no grade"))
                    })?,
                    student: student.ok_or_else(|| {
                        StoreError::Corrupt(format!("audit entry {id} names no student"))
                    })?,
                    old: parse("old")?,
                    new: parse("new")?,
                });
            }
            tx.commit().await?;
            Ok::<_, error::Error>(entries)
        };
        Ok(read.await?)
    }

    async fn changes_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<(ChangeRecord, Option<i64>)>> {
        let client = self.reader().await?;
        Ok(log::after_with_promotion(&client, seq, i64::from(limit)).await?)
    }

    async fn verify_log(&self) -> Result<ChainReport> {
        // In one read transaction: a long log is checked against one
        // committed state without holding up writes.
        let client = self.reader().await?;
        let read = async {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let report = log::verify(&client).await;
            // Read only: ending it either way changes nothing.
            client.batch_execute("COMMIT").await?;
            report
        };
        let report = read.await;
        if report.is_err()
            && (client.is_closed() || client.batch_execute("ROLLBACK").await.is_err())
        {
            // Never give back a connection that may be inside a transaction.
            drop(Object::take(client));
        }
        Ok(report?)
    }

    async fn login_wait(&self, keys: &[String], now: i64) -> Result<Option<i64>> {
        let client = self.reader().await?;
        let read = async {
            let stmt = client
                .prepare_cached("SELECT max(blocked_until) FROM login_failures WHERE key = ANY($1)")
                .await?;
            let until: Option<i64> = client.query_one(&stmt, &[&keys]).await?.try_get(0)?;
            Ok::<_, error::Error>(until.filter(|u| *u > now).map(|u| (u - now).max(1)))
        };
        Ok(read.await?)
    }

    async fn login_failed(&self, keys: &[String], now: i64) -> Result<()> {
        let keys = keys.to_vec();
        self.bookkeeping(move |tx| {
            Box::pin(async move { write::login_failed(tx, &keys, now).await })
        })
        .await
    }

    async fn login_succeeded(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.bookkeeping(move |tx| Box::pin(async move { write::login_succeeded(tx, &key).await }))
            .await
    }

    async fn login_failures_purge(&self, now: i64) -> Result<u64> {
        self.bookkeeping(move |tx| {
            Box::pin(async move { write::login_failures_purge(tx, now).await })
        })
        .await
    }

    async fn request_reply(&self, session: &[u8], id: &str) -> Result<Option<String>> {
        let client = self.reader().await?;
        let read = async {
            let stmt = client
                .prepare_cached(
                    "SELECT reply FROM udp_requests WHERE session = $1 AND request_id = $2",
                )
                .await?;
            match client.query_opt(&stmt, &[&session, &id]).await? {
                Some(r) => Ok::<_, error::Error>(Some(r.try_get("reply")?)),
                None => Ok(None),
            }
        };
        Ok(read.await?)
    }

    async fn requests_purge(&self, before: i64) -> Result<u64> {
        self.bookkeeping(move |tx| Box::pin(async move { write::requests_purge(tx, before).await }))
            .await
    }

    async fn close(&self) {
        if let Some(tail) = self.tail.lock().ok().and_then(|mut t| t.take()) {
            tail.abort();
        }
        self.readers.close();
        self.delivery.close();
        self.writer.close().await;
    }
}
