//! Persistence for gradebook: the [`Store`] trait, what it reads and
//! writes, the change log ([`change`]) and [`StoreError`]. Nothing here
//! depends on a database driver.
//!
//! The server talks to storage only through [`Store`], so a backend is a
//! choice made at start-up (`--database sqlite://…`; PostgreSQL later) and
//! every backend passes the same tests. Each backend is a crate of its own
//! with one driver and its own migrations (`gradebook-store-sqlite`), and
//! turns that driver's errors into [`StoreError`]s. A method returns only after its
//! transaction has committed: the server's `ok` reply is a durability
//! promise.

#![forbid(unsafe_code)]

pub mod change;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dump;
mod error;
pub mod throttle;

use async_trait::async_trait;
use gradebook_core::{Coefficient, Grade, GradeValue, Promotion, Publication, Student, User};
pub use gradebook_core::{NewGrade, NewStudent};

pub use change::{
    ChainProblem, ChainReport, Change, ChangeRecord, Diff, Follower, GrantRecord, PromotionRecord,
    SessionEnd, StudentRecord, UserRecord,
};
pub use error::{StoreError, Unavailable};

/// The result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// What a login needs to know about an account.
#[derive(Clone)]
pub struct Credentials {
    /// The user's row id.
    pub user_id: i64,
    /// The account as shown to clients.
    pub user: User,
    /// The argon2 PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .field("user", &self.user)
            .field("password_hash", &"***")
            .finish()
    }
}

/// A stored session, with its user.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The user's row id.
    pub user_id: i64,
    /// The account.
    pub user: User,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last used (Unix seconds).
    pub last_seen: i64,
    /// When it expires regardless of use (Unix seconds).
    pub expires_at: i64,
}

/// Changes to a student; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StudentPatch {
    /// New first name.
    pub first_name: Option<String>,
    /// New last name.
    pub last_name: Option<String>,
    /// New number, or `Some(None)` to clear it.
    pub number: Option<Option<String>>,
    /// New e-mail, or `Some(None)` to clear it.
    pub email: Option<Option<String>>,
    /// Move to this promotion.
    pub promotion: Option<String>,
}

/// Changes to a grade; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GradePatch {
    /// New value.
    pub value: Option<GradeValue>,
    /// New coefficient.
    pub coefficient: Option<Coefficient>,
    /// New subject.
    pub subject: Option<String>,
    /// New label, or `Some(None)` to clear it.
    pub label: Option<Option<String>>,
}

/// Changes to a promotion; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromotionPatch {
    /// New year, or `Some(None)` to clear it.
    pub year: Option<Option<i64>>,
    /// New description, or `Some(None)` to clear it.
    pub description: Option<Option<String>>,
    /// New publication mode (it applies to grades written from then on).
    pub publication: Option<Publication>,
}

impl PromotionPatch {
    /// The record with the patch applied.
    pub fn apply(&self, old: &PromotionRecord) -> PromotionRecord {
        let mut new = old.clone();
        if let Some(year) = self.year {
            new.year = year;
        }
        if let Some(d) = &self.description {
            new.description = d.clone();
        }
        if let Some(p) = self.publication {
            new.publication = p;
        }
        new
    }
}

/// The promotion as clients see it, from its record and its number of
/// students.
pub fn promotion_of_record(record: &PromotionRecord, students: i64) -> Promotion {
    Promotion {
        name: record.name.clone(),
        year: record.year,
        description: record.description.clone(),
        students: u64::try_from(students).unwrap_or(0),
        publication: record.publication,
        locked: record.locked,
    }
}

/// Which of a promotion's grades `grade.publish` and `grade.unpublish`
/// change: those matching every criterion given (all of them if none is).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GradeSelection {
    /// Only this subject's.
    pub subject: Option<String>,
    /// Only grades with this label.
    pub label: Option<String>,
    /// Only these grades (each must be one of the promotion's).
    pub ids: Option<Vec<i64>>,
}

impl GradeSelection {
    /// The grades of `grades` (all of promotion `promotion`'s) that the
    /// selection names; `not_found` for an id that is not among them.
    pub fn choose(&self, grades: &[Grade], promotion: &str) -> Result<Vec<Grade>> {
        let wanted: Option<std::collections::HashSet<i64>> =
            self.ids.as_ref().map(|ids| ids.iter().copied().collect());
        if let Some(wanted) = &wanted {
            let theirs: std::collections::HashSet<i64> = grades.iter().map(|g| g.id).collect();
            if let Some(stranger) = wanted.iter().filter(|id| !theirs.contains(id)).min() {
                return Err(StoreError::NotFound(format!(
                    "no grade with id {stranger} in promotion '{}'",
                    promotion.escape_debug()
                )));
            }
        }
        Ok(grades
            .iter()
            .filter(|g| self.subject.as_ref().is_none_or(|s| *s == g.subject))
            .filter(|g| self.label.is_none() || self.label == g.label)
            .filter(|g| wanted.as_ref().is_none_or(|w| w.contains(&g.id)))
            .cloned()
            .collect())
    }
}

/// What a change to a student or a grade needs to know of the promotion
/// it happens in, as each backend reads it in the write's transaction.
#[derive(Debug, Clone)]
pub struct Home {
    /// The promotion's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Whether a grade written now is visible at once.
    pub publication: Publication,
    /// Whether it refuses changes.
    pub locked: bool,
}

impl Home {
    /// Refuses a change if the promotion is locked ([`locked`]).
    pub fn unlocked(self) -> Result<Self> {
        if self.locked {
            Err(locked(&self.name))
        } else {
            Ok(self)
        }
    }
}

/// Parses a publication mode as a backend stores it; a bad one means a
/// corrupt row.
pub fn stored_publication(s: &str) -> Result<Publication> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("unknown publication mode '{s}'")))
}

/// The refusal of a change to a locked promotion's students or grades,
/// worded alike by every backend.
pub fn locked(promotion: &str) -> StoreError {
    StoreError::Locked(format!(
        "promotion '{}' is locked: its students and grades cannot change until an admin \
         unlocks it",
        promotion.escape_debug()
    ))
}

/// Everything needed to compute a promotion's averages and ranks.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionGrades {
    /// The promotion.
    pub promotion: Promotion,
    /// Its students, by last name, first name, id.
    pub students: Vec<Student>,
    /// Their grades, by id.
    pub grades: Vec<Grade>,
}

/// Everything the server's in-memory model starts from: the data as of
/// change `seq`. Every change after it reaches the [`Follower`] given to
/// [`Store::follow`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// The last change the snapshot includes (0: none yet).
    pub seq: i64,
    /// Every promotion, by id.
    pub promotions: Vec<PromotionRecord>,
    /// Every grant.
    pub grants: Vec<GrantRecord>,
    /// Every student, by id.
    pub students: Vec<StudentRecord>,
    /// Every grade, by id.
    pub grades: Vec<Grade>,
}

/// The UDP request a write is made for (protocol §6, at-most-once).
///
/// The backend records the key and the reply's data (the JSON of what the
/// write method returns, `{}` for nothing) in the same transaction as the
/// change. A second write with the same key fails with
/// [`StoreError::Duplicate`] and changes nothing; a result that `fits`
/// refuses fails with [`StoreError::TooLarge`] and changes nothing either,
/// so a request whose reply would not fit a datagram can be retried over TCP.
#[derive(Clone, Copy)]
pub struct RequestKey<'a> {
    /// The SHA-256 of the session's token.
    pub session: &'a [u8],
    /// The request id, as JSON text (`7` and `"7"` are different ids).
    pub id: &'a str,
    /// Whether the reply data may be sent (fits a datagram). In an `Arc`
    /// because the write runs on the backend's writer thread, which takes
    /// its own handle on it.
    pub fits: &'a Fits,
}

/// The check that a UDP write's reply data fits its datagram.
pub type Fits = std::sync::Arc<dyn Fn(&serde_json::Value) -> bool + Send + Sync>;

impl std::fmt::Debug for RequestKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What every write is told: who makes the change (for the change log),
/// when, for which UDP request, if any, and who waits for it to be queued.
#[derive(Debug, Clone, Copy)]
pub struct WriteContext<'a> {
    /// The user's name, as it is recorded.
    pub by: &'a str,
    /// When (Unix seconds).
    pub at: i64,
    /// The UDP request to record with the change.
    pub request: Option<RequestKey<'a>>,
    /// Told once the write has its place in the backend's order of
    /// writes (before it runs or commits).
    pub queued: Option<&'a std::sync::Arc<Queued>>,
}

/// A signal that a write has been queued, for a connection that sends its
/// next write only then (so that pipelined writes keep their order while
/// sharing commits). Dropping it unsent tells the waiter too: the write
/// failed before it was queued.
#[derive(Debug)]
pub struct Queued(std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>);

impl Queued {
    /// A signal, and what resolves when it is given or dropped.
    pub fn new() -> (std::sync::Arc<Self>, tokio::sync::oneshot::Receiver<()>) {
        let (tell, told) = tokio::sync::oneshot::channel();
        (
            std::sync::Arc::new(Queued(std::sync::Mutex::new(Some(tell)))),
            told,
        )
    }

    /// Gives the signal (once; later calls do nothing).
    pub fn tell(&self) {
        let sender = self.0.lock().map(|mut s| s.take()).unwrap_or_default();
        if let Some(s) = sender {
            let _ = s.send(());
        }
    }
}

impl<'a> WriteContext<'a> {
    /// A write by `by` at `at`, for no UDP request.
    pub fn new(by: &'a str, at: i64) -> Self {
        WriteContext {
            by,
            at,
            request: None,
            queued: None,
        }
    }
}

/// A [`WriteContext`] that a backend's writer thread or task can own, with
/// what it takes to record the write's UDP request (the same in every
/// backend: only the row's `INSERT` differs).
#[derive(Debug)]
pub struct OwnedContext {
    /// Who makes the change.
    pub by: String,
    /// When (Unix seconds).
    pub at: i64,
    request: Option<OwnedRequest>,
    queued: Option<std::sync::Arc<Queued>>,
}

/// An owned [`RequestKey`].
struct OwnedRequest {
    session: Vec<u8>,
    id: String,
    fits: Fits,
}

impl std::fmt::Debug for OwnedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedRequest")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The UDP request row to store with a write: its key and reply data.
#[derive(Debug)]
pub struct RequestRow<'a> {
    /// The SHA-256 of the session's token.
    pub session: &'a [u8],
    /// The request id, as JSON text.
    pub id: &'a str,
    /// The reply's data, as JSON text.
    pub reply: String,
}

impl OwnedContext {
    /// Copies what the write needs out of `ctx`.
    pub fn new(ctx: &WriteContext<'_>) -> Self {
        OwnedContext {
            by: ctx.by.to_owned(),
            at: ctx.at,
            request: ctx.request.map(|key| OwnedRequest {
                session: key.session.to_vec(),
                id: key.id.to_owned(),
                fits: key.fits.clone(),
            }),
            queued: ctx.queued.cloned(),
        }
    }

    /// Whether the write is made for a UDP request, whose row it must
    /// record ([`OwnedContext::request_row`]).
    pub fn has_request(&self) -> bool {
        self.request.is_some()
    }

    /// Who is waiting for the write to be queued.
    pub fn queued(&self) -> Option<std::sync::Arc<Queued>> {
        self.queued.clone()
    }

    /// The row recording this write's UDP request, whose reply data is
    /// `result`: none without a request; [`StoreError::TooLarge`] when the
    /// reply would not fit its datagram (the write must then change
    /// nothing).
    pub fn request_row<T: serde::Serialize>(&self, result: &T) -> Result<Option<RequestRow<'_>>> {
        let Some(key) = &self.request else {
            return Ok(None);
        };
        let data = serde_json::to_value(result)
            .map_err(|e| StoreError::Corrupt(format!("unserialisable result: {e}")))?;
        if !(key.fits)(&data) {
            return Err(StoreError::TooLarge);
        }
        Ok(Some(RequestRow {
            session: &key.session,
            id: &key.id,
            reply: data.to_string(),
        }))
    }
}

/// One audit entry: a grade change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Its seq in the change log.
    pub id: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// Who.
    pub by: String,
    /// `grade.add`, `grade.update` or `grade.delete`; or `student.remove` or
    /// `promotion.delete` for a grade removed with its student or promotion.
    pub action: String,
    /// The grade's id.
    pub grade: i64,
    /// The student's id.
    pub student: i64,
    /// The grade before (none for an add).
    pub old: Option<Grade>,
    /// The grade after (none for a delete).
    pub new: Option<Grade>,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AuditFilter<'a> {
    /// Only this promotion's.
    pub promotion: Option<&'a str>,
    /// Only this student's.
    pub student: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Storage for gradebook. Every method is one transaction; errors say what
/// was not found or conflicted in words fit for a client, and keep the
/// backend's own error (as text, possibly with its SQL) for the log. Every write of the
/// service's data takes a [`WriteContext`]: who, when, and the UDP request
/// to record in the same transaction.
#[async_trait]
pub trait Store: std::fmt::Debug + Send + Sync + 'static {
    // Accounts and sessions.

    /// How many accounts exist (the admin bootstrap needs to know if any).
    async fn user_count(&self) -> Result<u64>;
    /// Creates an account; `conflict` if the name is taken.
    async fn user_create(
        &self,
        user: &User,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<User>;
    /// The account and its password hash, for a login.
    async fn user_credentials(&self, username: &str) -> Result<Option<Credentials>>;
    /// Every account, by name.
    async fn user_list(&self) -> Result<Vec<User>>;
    /// Deletes an account and its sessions.
    async fn user_delete(&self, username: &str, ctx: WriteContext<'_>) -> Result<()>;
    /// Sets a password hash and revokes the account's sessions.
    async fn user_set_password(
        &self,
        username: &str,
        password_hash: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()>;
    /// Records a new session by the SHA-256 of its token.
    async fn session_create(
        &self,
        token_hash: &[u8],
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// A session and its user.
    async fn session_get(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>>;
    /// Records that a session was used.
    async fn session_touch(&self, token_hash: &[u8], now: i64) -> Result<()>;
    /// Revokes a session.
    async fn session_delete(&self, token_hash: &[u8], ctx: WriteContext<'_>) -> Result<()>;
    /// Deletes the sessions expired at `now` or idle since `idle_before`.
    async fn sessions_purge(&self, now: i64, idle_before: i64) -> Result<u64>;

    // Promotions.

    /// Creates a promotion; `conflict` if the name is taken.
    async fn promotion_create(
        &self,
        promotion: &Promotion,
        created_by: Option<i64>,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion>;
    /// Changes a promotion's year, description or publication mode.
    async fn promotion_update(
        &self,
        name: &str,
        patch: &PromotionPatch,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion>;
    /// Locks (`locked`) or unlocks a promotion; idempotent.
    async fn promotion_lock(
        &self,
        name: &str,
        locked: bool,
        ctx: WriteContext<'_>,
    ) -> Result<Promotion>;
    /// Sets `published` on the selected grades of a promotion and says how
    /// many changed; `locked` if the promotion is, `not_found` if an id is
    /// not one of its grades.
    async fn grades_publish(
        &self,
        promotion: &str,
        selection: &GradeSelection,
        published: bool,
        ctx: WriteContext<'_>,
    ) -> Result<u64>;
    /// Deletes a promotion; `conflict` if it has students and not `force`.
    async fn promotion_delete(&self, name: &str, force: bool, ctx: WriteContext<'_>) -> Result<()>;
    /// Lets a teacher manage a promotion (idempotent).
    async fn promotion_grant(
        &self,
        name: &str,
        username: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()>;
    /// Takes a promotion back from a teacher.
    async fn promotion_revoke(
        &self,
        name: &str,
        username: &str,
        ctx: WriteContext<'_>,
    ) -> Result<()>;

    // Students.

    /// Adds a student to a promotion; `conflict` if the number is taken.
    async fn student_add(
        &self,
        promotion: &str,
        student: &NewStudent,
        ctx: WriteContext<'_>,
    ) -> Result<Student>;
    /// Changes a student.
    async fn student_update(
        &self,
        id: i64,
        patch: &StudentPatch,
        ctx: WriteContext<'_>,
    ) -> Result<Student>;
    /// Removes a student and their grades.
    async fn student_remove(&self, id: i64, ctx: WriteContext<'_>) -> Result<()>;

    // Grades.

    /// Adds a grade, with its audit entry.
    async fn grade_add(&self, grade: &NewGrade, ctx: WriteContext<'_>) -> Result<Grade>;
    /// Changes a grade, with its audit entry.
    async fn grade_update(
        &self,
        id: i64,
        patch: &GradePatch,
        ctx: WriteContext<'_>,
    ) -> Result<Grade>;
    /// Deletes a grade, with its audit entry.
    async fn grade_delete(&self, id: i64, ctx: WriteContext<'_>) -> Result<()>;

    // Imports: many rows, one transaction, all or nothing.

    /// Adds students to a promotion; each comes with its line in the
    /// imported file, which a `conflict` (a number taken) names.
    async fn import_students(
        &self,
        promotion: &str,
        students: Vec<(u64, NewStudent)>,
        ctx: WriteContext<'_>,
    ) -> Result<u64>;
    /// Adds grades, each with its audit entry and its line in the file.
    async fn import_grades(
        &self,
        grades: Vec<(u64, NewGrade)>,
        ctx: WriteContext<'_>,
    ) -> Result<u64>;

    // The change log.

    /// Gives `follower` the data as of now and, from the same point on,
    /// every committed batch of changes, in order, before any write of the
    /// batch is acknowledged: a model that loads the snapshot and applies
    /// the batches is exactly the committed state, and a client that reads
    /// after its write's `ok` sees the write. Replaces any follower given
    /// before.
    async fn follow(&self, follower: std::sync::Arc<dyn Follower>) -> Result<()>;
    /// Audit entries (the grade changes of the log), newest first.
    async fn audit_list(&self, filter: AuditFilter<'_>) -> Result<Vec<AuditEntry>>;
    /// Checks the log's hash chain from its first entry to its last.
    async fn verify_log(&self) -> Result<ChainReport>;
    /// Up to `limit` committed entries of the change log after `seq`, in
    /// order, each with the promotion it is about, if any (what `watch`
    /// replays).
    async fn changes_after(&self, seq: i64, limit: u32)
    -> Result<Vec<(ChangeRecord, Option<i64>)>>;

    // Login throttling (protocol §7), counted in the database so that every
    // server sharing it counts together (see [`throttle`]).

    /// How many seconds the most blocked of `keys` must still wait at
    /// `now`, if any is blocked.
    async fn login_wait(&self, keys: &[String], now: i64) -> Result<Option<i64>>;
    /// Counts a failed login at `now` against each of `keys`.
    async fn login_failed(&self, keys: &[String], now: i64) -> Result<()>;
    /// Forgets `key`'s failures (a successful login).
    async fn login_succeeded(&self, key: &str) -> Result<()>;
    /// Forgets the failures that no longer matter at `now`.
    async fn login_failures_purge(&self, now: i64) -> Result<u64>;

    // UDP requests (protocol §6).

    /// The reply data recorded for a UDP request (JSON text), if a write
    /// was made for it.
    async fn request_reply(&self, session: &[u8], id: &str) -> Result<Option<String>>;
    /// Forgets the UDP requests recorded before `before` (Unix seconds).
    async fn requests_purge(&self, before: i64) -> Result<u64>;

    /// Whether several servers may share this backend's data, so that a
    /// request must [`Store::sync`] before it reads (PostgreSQL), or this
    /// server is its only writer and its memory always current (SQLite).
    fn shared(&self) -> bool {
        false
    }

    /// Returns once the follower has applied every change committed,
    /// by any server, before this call: what a read waits for so that it
    /// reflects every write already acknowledged anywhere. Nothing to wait
    /// for when this server is the only writer.
    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// Closes the backend cleanly (checkpoints, connections).
    async fn close(&self);
}
