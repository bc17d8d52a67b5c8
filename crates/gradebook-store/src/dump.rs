//! The rows of a whole database, as every backend stores them: what
//! `gradebook migrate` reads from one backend and writes into another,
//! ids, password hashes and the change log's chain included, so that the
//! copy serves the same data and verifies the same.
//!
//! Values are the stored codes (a grade's value and coefficient in integer
//! hundredths, ABS/EXC/ATT as negative codes), not the domain types: a copy
//! passes every row through unchanged, even one the current code would
//! write differently.

/// An account row.
#[derive(Clone, PartialEq)]
pub struct UserRow {
    /// Its id.
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The Argon2 PHC string.
    pub password_hash: String,
    /// `admin`, `teacher` or `student`.
    pub role: String,
    /// The linked student, for a student account.
    pub student_id: Option<i64>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"***")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A session row (the token's SHA-256, never the token).
#[derive(Clone, PartialEq)]
pub struct SessionRow {
    /// The SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Whose.
    pub user_id: i64,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last used (Unix seconds).
    pub last_seen: i64,
    /// Expires (Unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A promotion row.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionRow {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its year.
    pub year: Option<i64>,
    /// Its description.
    pub description: Option<String>,
    /// The account that created it.
    pub created_by: Option<i64>,
    /// When (Unix seconds).
    pub created_at: i64,
    /// `immediate` or `manual`.
    pub publication: String,
    /// Whether it is locked.
    pub locked: bool,
}

/// A grant row: a teacher may manage a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRow {
    /// The promotion.
    pub promotion_id: i64,
    /// The teacher's account.
    pub user_id: i64,
}

/// A student row.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentRow {
    /// Its id.
    pub id: i64,
    /// The promotion.
    pub promotion_id: i64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Institutional number.
    pub number: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// When (Unix seconds).
    pub created_at: i64,
}

/// A grade row, its value and coefficient as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeRow {
    /// Its id.
    pub id: i64,
    /// The student.
    pub student_id: i64,
    /// The subject.
    pub subject: String,
    /// Hundredths from 0 to 2000, or the negative code of ABS/EXC/ATT.
    pub value: i64,
    /// Hundredths.
    pub coefficient: i64,
    /// The label.
    pub label: Option<String>,
    /// When (Unix seconds).
    pub created_at: i64,
    /// Whether its student may see it.
    pub published: bool,
}

/// A change-log entry as stored, its hash included.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    /// Its place in the log.
    pub seq: i64,
    /// When (Unix seconds).
    pub at: i64,
    /// Who.
    pub username: String,
    /// The command that made it.
    pub command: String,
    /// The entity's kind.
    pub kind: String,
    /// The promotion concerned.
    pub promotion_id: Option<i64>,
    /// The student concerned.
    pub student_id: Option<i64>,
    /// The grade concerned.
    pub grade_id: Option<i64>,
    /// The entity before, as JSON.
    pub old: Option<String>,
    /// The entity after, as JSON.
    pub new: Option<String>,
    /// SHA-256 of this entry and the previous one's hash.
    pub hash: Option<Vec<u8>>,
}

/// The highest id each table ever handed out: a copy gives none of them
/// again, even those of rows deleted since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Highest {
    /// Accounts.
    pub users: i64,
    /// Promotions.
    pub promotions: i64,
    /// Students.
    pub students: i64,
    /// Grades.
    pub grades: i64,
    /// Change-log entries.
    pub changes: i64,
}

/// How many rows of each kind: what a copy is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    /// Accounts.
    pub users: u64,
    /// Sessions.
    pub sessions: u64,
    /// Promotions.
    pub promotions: u64,
    /// Grants.
    pub grants: u64,
    /// Students.
    pub students: u64,
    /// Grades.
    pub grades: u64,
    /// Change-log entries.
    pub changes: u64,
}
