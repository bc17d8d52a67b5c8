//! The change log on SQLite (see [`gradebook_store::change`]): appending entries in
//! a write's transaction, sealing entries migrated without a hash, checking
//! the chain, and the snapshot the in-memory model starts from.

use std::cell::RefCell;
use std::ops::Deref;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use gradebook_core::model::Grade;
use gradebook_store::change::{
    ChainReport, Change, ChangeRecord, Diff, EntityIds, GENESIS, Head, StoredEntry, verify_chain,
};
use gradebook_store::{GrantRecord, PromotionRecord, Snapshot, StoreError, StudentRecord};

use crate::error::Result;
use crate::write::Context;
use crate::{GradeRow, student_from_row};

/// The head stored in the database.
pub(crate) fn head(conn: &Connection) -> Result<Head> {
    let row: Option<(i64, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT seq, hash FROM changes ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(Head::EMPTY),
        Some((seq, Some(hash))) => Ok(Head::stored(seq, hash)?),
        Some((seq, None)) => Err(StoreError::Corrupt(format!(
            "change {seq} has no hash (the log was not sealed)"
        ))
        .into()),
    }
}

/// The entries a batch has appended so far, and where the chain ends.
#[derive(Debug)]
pub(crate) struct Appended {
    pub head: Head,
    pub entries: Vec<ChangeRecord>,
}

/// Where a write started, to undo its entries if it fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    head: Head,
    entries: usize,
}

/// A batch's transaction, with the log entries its writes append. Derefs
/// to the transaction, so writes run their statements on it directly.
pub(crate) struct Tx<'t> {
    tx: &'t Transaction<'t>,
    log: RefCell<Appended>,
}

impl<'t> Deref for Tx<'t> {
    type Target = Transaction<'t>;
    fn deref(&self) -> &Self::Target {
        self.tx
    }
}

impl<'t> Tx<'t> {
    /// A batch on `tx` whose chain continues from `head`.
    pub(crate) fn new(tx: &'t Transaction<'t>, head: Head) -> Self {
        Tx {
            tx,
            log: RefCell::new(Appended {
                head,
                entries: Vec::new(),
            }),
        }
    }

    /// Where the log stands, before a write.
    pub(crate) fn mark(&self) -> Mark {
        let log = self.log.borrow();
        Mark {
            head: log.head,
            entries: log.entries.len(),
        }
    }

    /// Forgets the entries appended since `mark` (their rows are rolled
    /// back with the write's savepoint).
    pub(crate) fn undo(&self, mark: Mark) {
        let mut log = self.log.borrow_mut();
        log.head = mark.head;
        log.entries.truncate(mark.entries);
    }

    /// The entries appended, once the batch is done.
    pub(crate) fn into_appended(self) -> Appended {
        self.log.into_inner()
    }

    /// Appends one change, made by `command`, to the log; a grade's goes
    /// through [`Tx::append_grade`], which says its promotion.
    pub(crate) fn append(&self, ctx: &Context, command: &str, change: Change) -> Result<()> {
        debug_assert!(
            !matches!(change, Change::Grade(_)),
            "a grade's change is appended with its promotion"
        );
        let ids = change.ids();
        self.append_with(ctx, command, change, ids)
    }

    /// Appends a change to a grade of promotion `promotion`.
    pub(crate) fn append_grade(
        &self,
        ctx: &Context,
        command: &str,
        diff: Diff<Grade>,
        promotion: i64,
    ) -> Result<()> {
        let change = Change::Grade(diff);
        let ids = EntityIds {
            promotion: Some(promotion),
            ..change.ids()
        };
        self.append_with(ctx, command, change, ids)
    }

    fn append_with(
        &self,
        ctx: &Context,
        command: &str,
        change: Change,
        ids: EntityIds,
    ) -> Result<()> {
        let mut log = self.log.borrow_mut();
        let next = log.head.next(ctx.at, &ctx.by, command, change, ids)?;
        self.tx
            .prepare_cached(
                "INSERT INTO changes (seq, at, username, command, kind, promotion_id, \
                 student_id, grade_id, old, new, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )?
            .execute(params![
                next.head.seq,
                ctx.at,
                ctx.by,
                command,
                next.kind,
                next.ids.promotion,
                next.ids.student,
                next.ids.grade,
                next.old,
                next.new,
                &next.head.hash[..]
            ])?;
        log.head = next.head;
        log.entries.push(next.record);
        Ok(())
    }
}

/// One stored row of the log, as [`verify_chain`] reads it.
struct Row {
    seq: i64,
    at: i64,
    by: String,
    command: String,
    kind: String,
    ids: EntityIds,
    old: Option<String>,
    new: Option<String>,
    hash: Option<Vec<u8>>,
}

impl Row {
    fn entry(&self) -> StoredEntry<'_> {
        StoredEntry {
            seq: self.seq,
            at: self.at,
            by: &self.by,
            command: &self.command,
            kind: &self.kind,
            ids: self.ids,
            old: self.old.as_deref(),
            new: self.new.as_deref(),
        }
    }
}

const ROW_COLUMNS: &str = "seq, at, username, command, kind, promotion_id, student_id, \
     grade_id, old, new, hash";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: r.get("seq")?,
        at: r.get("at")?,
        by: r.get("username")?,
        command: r.get("command")?,
        kind: r.get("kind")?,
        ids: EntityIds {
            promotion: r.get("promotion_id")?,
            student: r.get("student_id")?,
            grade: r.get("grade_id")?,
        },
        old: r.get("old")?,
        new: r.get("new")?,
        hash: r.get("hash")?,
    })
}

/// Up to `limit` entries after `seq`, in order, each with its promotion.
pub(crate) fn after(
    conn: &Connection,
    seq: i64,
    limit: u32,
) -> Result<Vec<(ChangeRecord, Option<i64>)>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))?
        .query_map([seq, i64::from(limit)], row)?
        .collect::<rusqlite::Result<Vec<Row>>>()?;
    rows.into_iter()
        .map(|r| {
            let promotion = r.ids.promotion;
            let change = Change::from_json(&r.kind, r.old.as_deref(), r.new.as_deref())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "change {} does not decode (kind '{}')",
                        r.seq,
                        r.kind.escape_debug()
                    ))
                })?;
            Ok((
                ChangeRecord {
                    seq: r.seq,
                    at: r.at,
                    by: r.by,
                    command: r.command,
                    change,
                },
                promotion,
            ))
        })
        .collect()
}

/// Computes, in order, the hashes of the entries moved over from the audit
/// table by migration 0004, which have none. They are the first entries
/// of the log, and they are sealed at the first start-up after that
/// migration, all in one transaction, before any write. So only a log
/// whose first entry has no hash is sealed, and only the entries up to the
/// first one that has a hash: an entry stripped of its hash anywhere else
/// was tampered with, and is left for [`verify`] to report rather than
/// hashed anew with everything after it. Checking the first entry alone
/// also keeps start-up from reading the whole log.
pub(crate) fn seal(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction()?;
    let unsealed: Option<bool> = tx
        .query_row(
            "SELECT hash IS NULL FROM changes ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if unsealed != Some(true) {
        return Ok(());
    }
    let rows = {
        let mut stmt = tx.prepare(&format!("SELECT {ROW_COLUMNS} FROM changes ORDER BY seq"))?;
        let mut rows = Vec::new();
        for r in stmt.query_map([], row)? {
            let r = r?;
            if r.hash.is_some() {
                break;
            }
            rows.push(r);
        }
        rows
    };
    let mut previous = GENESIS;
    let mut update = tx.prepare("UPDATE changes SET hash = $1 WHERE seq = $2")?;
    for r in &rows {
        previous = r.entry().hash(&previous);
        update.execute(params![&previous[..], r.seq])?;
    }
    drop(update);
    tx.commit()?;
    tracing::info!(
        entries = rows.len(),
        "sealed the change log's migrated entries"
    );
    Ok(())
}

/// Checks the whole chain (see [`verify_chain`]).
pub(crate) fn verify(conn: &Connection) -> Result<ChainReport> {
    // The highest seq ever handed out: entries deleted from the end leave
    // it above the last entry.
    let highest: i64 = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'changes'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut stmt = conn.prepare(&format!("SELECT {ROW_COLUMNS} FROM changes ORDER BY seq"))?;
    let rows = stmt
        .query_map([], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(verify_chain(
        rows.iter().map(|r| (r.entry(), r.hash.as_deref())),
        highest,
    ))
}

/// Everything the in-memory model starts from, read in one transaction.
pub(crate) fn snapshot(conn: &mut Connection, head: Head) -> Result<Snapshot> {
    let tx = conn.transaction()?;
    let promotions = tx
        .prepare(
            "SELECT id, name, year, description, created_by, publication, locked \
             FROM promotions ORDER BY id",
        )?
        .query_map([], crate::promotion_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .collect::<Result<Vec<PromotionRecord>>>()?;
    let grants = tx
        .prepare("SELECT promotion_id, user_id FROM grants")?
        .query_map([], |r| {
            Ok(GrantRecord {
                promotion: r.get("promotion_id")?,
                user: r.get("user_id")?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let students = tx
        .prepare(concat!(
            "SELECT s.promotion_id AS promotion_id, ",
            student_columns!(),
            " FROM students s JOIN promotions p ON p.id = s.promotion_id ORDER BY s.id"
        ))?
        .query_map([], |r| {
            Ok(StudentRecord {
                promotion_id: r.get("promotion_id")?,
                student: student_from_row(r)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut grades = Vec::new();
    {
        let mut stmt = tx.prepare(concat!(
            "SELECT ",
            grade_columns!(),
            " FROM grades g ORDER BY g.id"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            grades.push(GradeRow::read(r)?.into_grade()?);
        }
    }
    tx.commit()?;
    Ok(Snapshot {
        seq: head.seq,
        promotions,
        grants,
        students,
        grades,
    })
}
