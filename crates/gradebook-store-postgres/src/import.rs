//! Copying a whole database into an empty PostgreSQL one, for `gradebook
//! migrate` (rows as [`gradebook_store::dump`] describes them).
//!
//! Everything goes in one transaction, which also holds the writers'
//! advisory lock: a copy that fails half-way leaves the target as empty as
//! it found it, and no server writes to it meanwhile. Rows keep their ids
//! (`OVERRIDING SYSTEM VALUE`), the change log its seqs and hashes, and
//! each identity column goes on after the highest id the source ever gave,
//! so no id is given twice. Rows go in pages, each page one statement over
//! arrays (`unnest`).

use deadpool_postgres::Object;
use gradebook_store::dump::{
    ChangeRow, Counts, GradeRow, GrantRow, Highest, PromotionRow, SessionRow, StudentRow, UserRow,
};
use gradebook_store::{ChainReport, StoreError};

use crate::error::{Error, from_postgres};
use crate::writer::WRITE_LOCK;
use crate::{log, migrate, parse_url, pool};

/// A copy under way: an open transaction on the target database.
pub struct Import {
    client: Object,
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import").finish_non_exhaustive()
    }
}

/// The store's error for a failed statement of the copy.
fn fail(e: Error) -> StoreError {
    e.into()
}

impl Import {
    /// Connects to `url`, brings its schema up to date and opens the copy's
    /// transaction. Refuses ([`StoreError::Conflict`]) a database that
    /// holds anything: an account, a promotion, a change.
    pub async fn begin(url: &str) -> std::result::Result<Import, StoreError> {
        let config = parse_url(url)?;
        let mut client = pool(&config, 1)?
            .get()
            .await
            .map_err(crate::error::from_pool)?;
        let import = async {
            migrate::run(&mut client).await?;
            client.batch_execute("BEGIN").await?;
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .await?;
            let held: i64 = client
                .query_one(
                    "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM promotions) \
                     + (SELECT count(*) FROM students) + (SELECT count(*) FROM grades) \
                     + (SELECT count(*) FROM changes)",
                    &[],
                )
                .await?
                .try_get(0)?;
            if held > 0 {
                return Err(StoreError::Conflict(
                    "the target database is not empty: gradebook migrate copies only into \
                     an empty database (nothing was written)"
                        .into(),
                )
                .into());
            }
            Ok::<(), Error>(())
        };
        match import.await {
            Ok(()) => Ok(Import { client }),
            // Dropped, the connection goes back to a pool that is dropped
            // too: it closes, and the transaction is rolled back.
            Err(e) => Err(fail(e)),
        }
    }

    /// Copies accounts.
    pub async fn users(&self, rows: &[UserRow]) -> std::result::Result<(), StoreError> {
        self.insert(
            "INSERT INTO users (id, username, password_hash, role, student_id, created_at) \
             OVERRIDING SYSTEM VALUE \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], \
             $5::bigint[], $6::bigint[])",
            &[
                &rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.username.as_str()).collect::<Vec<_>>(),
                &rows
                    .iter()
                    .map(|r| r.password_hash.as_str())
                    .collect::<Vec<_>>(),
                &rows.iter().map(|r| r.role.as_str()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.student_id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.created_at).collect::<Vec<_>>(),
            ],
        )
        .await
    }

    /// Copies sessions (after their accounts).
    pub async fn sessions(&self, rows: &[SessionRow]) -> std::result::Result<(), StoreError> {
        self.insert(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at) \
             SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], \
             $5::bigint[])",
            &[
                &rows
                    .iter()
                    .map(|r| r.token_hash.as_slice())
                    .collect::<Vec<_>>(),
                &rows.iter().map(|r| r.user_id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.created_at).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.last_seen).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.expires_at).collect::<Vec<_>>(),
            ],
        )
        .await
    }

    /// Copies promotions (after the accounts that created them).
    pub async fn promotions(&self, rows: &[PromotionRow]) -> std::result::Result<(), StoreError> {
        self.insert(
            "INSERT INTO promotions (id, name, year, description, created_by, created_at, \
             publication, locked) OVERRIDING SYSTEM VALUE \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], \
             $5::bigint[], $6::bigint[], $7::text[], $8::boolean[])",
            &[
                &rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.year).collect::<Vec<_>>(),
                &rows
                    .iter()
                    .map(|r| r.description.as_deref())
                    .collect::<Vec<_>>(),
                &rows.iter().map(|r| r.created_by).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.created_at).collect::<Vec<_>>(),
                &rows
                    .iter()
                    .map(|r| r.publication.as_str())
                    .collect::<Vec<_>>(),
                &rows.iter().map(|r| r.locked).collect::<Vec<_>>(),
            ],
        )
        .await
    }

    /// Copies grants (after promotions and accounts).
    pub async fn grants(&self, rows: &[GrantRow]) -> std::result::Result<(), StoreError> {
        self.insert(
            "INSERT INTO grants (promotion_id, user_id) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[])",
            &[
                &rows.iter().map(|r| r.promotion_id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.user_id).collect::<Vec<_>>(),
            ],
        )
        .await
    }

    /// Copies students (after their promotions).
    pub async fn students(&self, rows: &[StudentRow]) -> std::result::Result<(), StoreError> {
        self.insert(
            "INSERT INTO students (id, promotion_id, first_name, last_name, number, email, \
             created_at) OVERRIDING SYSTEM VALUE \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::bigint[])",
            &[
                &rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.promotion_id).collect::<Vec<_>>(),
                &rows
                    .iter()
                    .map(|r| r.first_name.as_str())
                    .collect::<Vec<_>>(),
                &rows
                    .iter()
                    .map(|r| r.last_name.as_str())
                    .collect::<Vec<_>>(),
                &rows.iter().map(|r| r.number.as_deref()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.email.as_deref()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.created_at).collect::<Vec<_>>(),
            ],
        )
        .await
    }

    /// Copies a page of grades (after their students).
    pub async fn grades(&self, rows: &[GradeRow]) -> std::result::Result<(), StoreError> {
        self.insert(
            "INSERT INTO grades (id, student_id, subject, value, coefficient, label, \
             created_at, published) OVERRIDING SYSTEM VALUE \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], \
             $5::bigint[], $6::text[], $7::bigint[], $8::boolean[])",
            &[
                &rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.student_id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.value).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.coefficient).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.label.as_deref()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.created_at).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.published).collect::<Vec<_>>(),
            ],
        )
        .await
    }

    /// Copies a page of change-log entries, seqs and hashes as they are.
    pub async fn changes(&self, rows: &[ChangeRow]) -> std::result::Result<(), StoreError> {
        if let Some(r) = rows.iter().find(|r| r.hash.is_none()) {
            return Err(StoreError::Corrupt(format!(
                "change {} has no hash: the source's log was not sealed",
                r.seq
            )));
        }
        self.insert(
            "INSERT INTO changes (seq, at, username, command, kind, promotion_id, student_id, \
             grade_id, old, new, hash) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], \
             $11::bytea[])",
            &[
                &rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.at).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.username.as_str()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.command.as_str()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.promotion_id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.student_id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.grade_id).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.old.as_deref()).collect::<Vec<_>>(),
                &rows.iter().map(|r| r.new.as_deref()).collect::<Vec<_>>(),
                &rows
                    .iter()
                    .map(|r| r.hash.as_deref().unwrap_or_default())
                    .collect::<Vec<_>>(),
            ],
        )
        .await
    }

    /// Sets where each id goes on (after `highest`), then checks the copy
    /// inside its transaction: the counts of every table and the change
    /// log's chain (entries, last seq, head) must be the source's, given
    /// as `source`. Commits only then; otherwise nothing is written and
    /// the error says what differs.
    pub async fn commit(
        self,
        highest: Highest,
        source: (&Counts, &ChainReport),
    ) -> std::result::Result<(Counts, ChainReport), StoreError> {
        let finish = async {
            for (table, high) in [
                ("users", highest.users),
                ("promotions", highest.promotions),
                ("students", highest.students),
                ("grades", highest.grades),
            ] {
                // The next id is 1 for a table that never had a row.
                self.client
                    .execute(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                             GREATEST($1::bigint, 1), $1::bigint > 0)"
                        ),
                        &[&high],
                    )
                    .await?;
            }
            self.client
                .execute("UPDATE changes_highest SET seq = $1", &[&highest.changes])
                .await?;
            let count = |table: &'static str| {
                let client = &self.client;
                async move {
                    let n: i64 = client
                        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                        .await?
                        .try_get(0)?;
                    Ok::<u64, Error>(n as u64)
                }
            };
            let counts = Counts {
                users: count("users").await?,
                sessions: count("sessions").await?,
                promotions: count("promotions").await?,
                grants: count("grants").await?,
                students: count("students").await?,
                grades: count("grades").await?,
                changes: count("changes").await?,
            };
            if &counts != source.0 {
                return Err(StoreError::Corrupt(format!(
                    "the copy does not hold what the source does (source {:?}, copy {counts:?}): \
                     nothing was written",
                    source.0
                ))
                .into());
            }
            let chain = log::verify(&self.client).await?;
            if chain.problem.is_some()
                || (chain.entries, chain.last_seq, &chain.head)
                    != (source.1.entries, source.1.last_seq, &source.1.head)
            {
                return Err(StoreError::Corrupt(format!(
                    "the copy's change log does not verify as the source's does \
                     (source: {} entries up to {}, head {}; copy: {} entries up to {}, head {}, \
                     problem {:?}): nothing was written",
                    source.1.entries,
                    source.1.last_seq,
                    source.1.head,
                    chain.entries,
                    chain.last_seq,
                    chain.head,
                    chain.problem
                ))
                .into());
            }
            self.client.batch_execute("COMMIT").await?;
            Ok::<(Counts, ChainReport), Error>((counts, chain))
        };
        finish.await.map_err(fail)
    }

    async fn insert(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> std::result::Result<(), StoreError> {
        self.client
            .execute(sql, params)
            .await
            .map(|_| ())
            .map_err(|e| from_postgres(&e))
    }
}
