//! The change log on PostgreSQL (see [`gradebook_store::change`]): the
//! batch a writer runs, appending entries in its transaction; checking the
//! chain; reading committed entries back; and the snapshot the in-memory
//! model starts from.

use deadpool_postgres::Object;
use futures_util::{TryStreamExt, pin_mut};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use gradebook_store::change::{
    ChainReport, Change, ChangeRecord, EntityIds, Head, StoredEntry, verify_chain,
};
use gradebook_store::{GrantRecord, PromotionRecord, Snapshot, StoreError, StudentRecord};

use crate::error::Result;
use crate::write::Context;
use crate::{grade_from_row, student_from_row};

/// The query that reads the head (see [`head_of`]).
pub(crate) const HEAD: &str = "SELECT seq, hash FROM changes ORDER BY seq DESC LIMIT 1";

/// The head stored in the database, as the current transaction (or
/// statement) on `client` sees it.
pub(crate) async fn head(client: &Object) -> Result<Head> {
    let stmt = client.prepare_cached(HEAD).await?;
    head_of(client.query_opt(&stmt, &[]).await?)
}

/// The head that [`HEAD`] answered: `row`, or the empty log's.
pub(crate) fn head_of(row: Option<Row>) -> Result<Head> {
    let Some(row) = row else {
        return Ok(Head::EMPTY);
    };
    Ok(Head::stored(row.try_get(0)?, row.try_get(1)?)?)
}

/// Appends a batch's entries, whose columns come as arrays, one element
/// per entry: one statement for all of them.
pub(crate) const INSERT_ENTRIES: &str = "INSERT INTO changes (seq, at, username, command, kind, \
     promotion_id, student_id, grade_id, old, new, hash) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
     $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::bytea[])";

/// Where a write started, to undo its entries if it fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    head: Head,
    entries: usize,
}

/// A batch's transaction, on the writer's connection, with the log
/// entries its writes append.
pub(crate) struct Batch {
    client: Object,
    /// Students' promotions read during the current write (cleared before
    /// each): a grade's write checks its student and logs its promotion
    /// with one query, not two.
    promotions: std::collections::HashMap<i64, i64>,
    /// Where the chain ends, after the writes run so far.
    pub(crate) head: Head,
    /// The entries the writes run so far appended.
    pub(crate) entries: Vec<ChangeRecord>,
    /// The stored columns of `entries` that their records do not hold,
    /// one per entry: the rows are inserted all at once when the batch
    /// ends ([`Batch::store_entries`]), not one round trip each.
    columns: Vec<Columns>,
}

/// What an entry stores beside its record's seq, time, author and command.
struct Columns {
    kind: &'static str,
    ids: EntityIds,
    old: Option<String>,
    new: Option<String>,
    hash: gradebook_store::change::Hash,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("head", &self.head.seq)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Batch {
    /// A batch on `client`, whose transaction the writer opens.
    pub(crate) fn new(client: Object) -> Self {
        Batch {
            client,
            promotions: std::collections::HashMap::new(),
            head: Head::EMPTY,
            entries: Vec::new(),
            columns: Vec::new(),
        }
    }

    /// The connection, for the writer's own statements.
    pub(crate) fn client(&self) -> &Object {
        &self.client
    }

    /// Gives the connection back.
    pub(crate) fn into_client(self) -> Object {
        self.client
    }

    /// Runs `sql` (prepared once per connection) and returns its rows.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = self.client.prepare_cached(sql).await?;
        self.client.query(&stmt, params).await
    }

    /// Runs `sql` and returns its one row, if any.
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Option<Row>, tokio_postgres::Error> {
        let stmt = self.client.prepare_cached(sql).await?;
        self.client.query_opt(&stmt, params).await
    }

    /// Runs `sql` and returns how many rows it changed.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        let stmt = self.client.prepare_cached(sql).await?;
        self.client.execute(&stmt, params).await
    }

    /// The promotion of `student`, if the student exists (read once per
    /// write).
    pub(crate) async fn promotion_of(&mut self, student: i64) -> Result<Option<i64>> {
        if let Some(p) = self.promotions.get(&student) {
            return Ok(Some(*p));
        }
        let row = self
            .query_opt(
                "SELECT promotion_id FROM students WHERE id = $1",
                &[&student],
            )
            .await?;
        let promotion = row.map(|r| r.try_get::<_, i64>(0)).transpose()?;
        if let Some(p) = promotion {
            self.promotions.insert(student, p);
        }
        Ok(promotion)
    }

    /// Forgets what the previous write read (see `promotions`).
    pub(crate) fn next_write(&mut self) {
        self.promotions.clear();
    }

    /// Where the log stands, before a write.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            head: self.head,
            entries: self.entries.len(),
        }
    }

    /// Forgets the entries appended since `mark`: a write that failed
    /// leaves no entry (its other rows are rolled back with its savepoint;
    /// its entries were never sent).
    pub(crate) fn undo(&mut self, mark: Mark) {
        self.head = mark.head;
        self.entries.truncate(mark.entries);
        self.columns.truncate(mark.entries);
    }

    /// Tells the batch the promotion of `student`, read by the current
    /// write, so that its entries need not read it again.
    pub(crate) fn know_promotion(&mut self, student: i64, promotion: i64) {
        self.promotions.insert(student, promotion);
    }

    /// Appends one change, made by `command`, to the log. The entry is
    /// chained at once and stored with the batch's others when the batch
    /// ends.
    pub(crate) async fn append(
        &mut self,
        ctx: &Context,
        command: &str,
        change: Change,
    ) -> Result<()> {
        let mut ids = change.ids();
        if let (Change::Grade(_), Some(student)) = (&change, ids.student) {
            ids.promotion = self.promotion_of(student).await?;
        }
        let next = self.head.next(ctx.at, &ctx.by, command, change, ids)?;
        self.head = next.head;
        self.entries.push(next.record);
        self.columns.push(Columns {
            kind: next.kind,
            ids: next.ids,
            old: next.old,
            new: next.new,
            hash: next.head.hash,
        });
        Ok(())
    }

    /// Inserts the entries the batch's writes appended with `insert`
    /// ([`INSERT_ENTRIES`], prepared), sent when the future is first
    /// polled. Run once, after the last write: a write rolled back before
    /// then has taken its entries away ([`Batch::undo`]), so only kept
    /// writes' entries are stored.
    pub(crate) async fn store_entries(&self, insert: &Statement) -> Result<u64> {
        let records = &self.entries;
        let columns = &self.columns;
        let seq: Vec<i64> = records.iter().map(|r| r.seq).collect();
        let at: Vec<i64> = records.iter().map(|r| r.at).collect();
        let by: Vec<&str> = records.iter().map(|r| r.by.as_str()).collect();
        let command: Vec<&str> = records.iter().map(|r| r.command.as_str()).collect();
        let kind: Vec<&str> = columns.iter().map(|c| c.kind).collect();
        let promotion: Vec<Option<i64>> = columns.iter().map(|c| c.ids.promotion).collect();
        let student: Vec<Option<i64>> = columns.iter().map(|c| c.ids.student).collect();
        let grade: Vec<Option<i64>> = columns.iter().map(|c| c.ids.grade).collect();
        let old: Vec<Option<&str>> = columns.iter().map(|c| c.old.as_deref()).collect();
        let new: Vec<Option<&str>> = columns.iter().map(|c| c.new.as_deref()).collect();
        let hash: Vec<&[u8]> = columns.iter().map(|c| &c.hash[..]).collect();
        Ok(self
            .client
            .execute(
                insert,
                &[
                    &seq, &at, &by, &command, &kind, &promotion, &student, &grade, &old, &new,
                    &hash,
                ],
            )
            .await?)
    }
}

/// The columns of a stored entry, in the order [`StoredRow::read`] takes
/// them.
const ROW_COLUMNS: &str = "seq, at, username, command, kind, promotion_id, student_id, \
     grade_id, old, new, hash";

/// One stored row of the log.
struct StoredRow {
    seq: i64,
    at: i64,
    by: String,
    command: String,
    kind: String,
    ids: EntityIds,
    old: Option<String>,
    new: Option<String>,
    hash: Vec<u8>,
}

impl StoredRow {
    /// Reads the columns of [`ROW_COLUMNS`].
    fn read(r: &Row) -> Result<Self> {
        Ok(StoredRow {
            seq: r.try_get(0)?,
            at: r.try_get(1)?,
            by: r.try_get(2)?,
            command: r.try_get(3)?,
            kind: r.try_get(4)?,
            ids: EntityIds {
                promotion: r.try_get(5)?,
                student: r.try_get(6)?,
                grade: r.try_get(7)?,
            },
            old: r.try_get(8)?,
            new: r.try_get(9)?,
            hash: r.try_get(10)?,
        })
    }

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

    /// The entry as followers receive it; a kind or sides that do not
    /// parse mean a corrupt row.
    fn into_record(self) -> Result<ChangeRecord> {
        let change = Change::from_json(&self.kind, self.old.as_deref(), self.new.as_deref())
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "change {} does not decode (kind '{}')",
                    self.seq,
                    self.kind.escape_debug()
                ))
            })?;
        Ok(ChangeRecord {
            seq: self.seq,
            at: self.at,
            by: self.by,
            command: self.command,
            change,
        })
    }
}

/// The committed entries after `seq`, at most `limit` of them, in order,
/// as the current transaction (or statement) on `client` sees them.
pub(crate) async fn after(client: &Object, seq: i64, limit: i64) -> Result<Vec<ChangeRecord>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .await?;
    client
        .query(&stmt, &[&seq, &limit.max(0)])
        .await?
        .iter()
        .map(|r| StoredRow::read(r)?.into_record())
        .collect()
}

/// As [`after`], each entry with the promotion it is about.
pub(crate) async fn after_with_promotion(
    client: &Object,
    seq: i64,
    limit: i64,
) -> Result<Vec<(ChangeRecord, Option<i64>)>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .await?;
    client
        .query(&stmt, &[&seq, &limit.max(0)])
        .await?
        .iter()
        .map(|r| {
            let row = StoredRow::read(r)?;
            let promotion = row.ids.promotion;
            Ok((row.into_record()?, promotion))
        })
        .collect()
}

/// Checks the whole chain (see [`verify_chain`]), in the current
/// transaction on `client`.
pub(crate) async fn verify(client: &Object) -> Result<ChainReport> {
    // The highest seq ever written: entries deleted from the end leave it
    // above the last entry.
    let highest: i64 = client
        .query_opt("SELECT seq FROM changes_highest", &[])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    let stmt = client
        .prepare(&format!("SELECT {ROW_COLUMNS} FROM changes ORDER BY seq"))
        .await?;
    let stream = client.query_raw(&stmt, std::iter::empty::<i64>()).await?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(r) = stream.try_next().await? {
        rows.push(StoredRow::read(&r)?);
    }
    Ok(verify_chain(
        rows.iter().map(|r| (r.entry(), Some(&r.hash[..]))),
        highest,
    ))
}

/// Everything the in-memory model starts from, read in one repeatable-read
/// transaction on `client`: the data and the seq of the last change it
/// includes come from the same committed state.
pub(crate) async fn snapshot(client: &mut Object) -> Result<Snapshot> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let seq: i64 = tx
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
        .await?
        .try_get(0)?;
    let promotions = tx
        .query(
            "SELECT id, name, year, description, created_by, publication, locked \
             FROM promotions ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(crate::promotion_from_row)
        .collect::<Result<Vec<PromotionRecord>>>()?;
    let grants = tx
        .query(
            "SELECT promotion_id, user_id FROM grants ORDER BY promotion_id, user_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(GrantRecord {
                promotion: r.try_get("promotion_id")?,
                user: r.try_get("user_id")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let students = tx
        .query(
            concat!(
                "SELECT s.promotion_id AS promotion_id, ",
                student_columns!(),
                " FROM students s JOIN promotions p ON p.id = s.promotion_id ORDER BY s.id"
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(StudentRecord {
                promotion_id: r.try_get("promotion_id")?,
                student: student_from_row(r)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut grades = Vec::new();
    {
        let stmt = tx
            .prepare(concat!(
                "SELECT ",
                grade_columns!(),
                " FROM grades g ORDER BY g.id"
            ))
            .await?;
        let stream = tx.query_raw(&stmt, std::iter::empty::<i64>()).await?;
        pin_mut!(stream);
        while let Some(r) = stream.try_next().await? {
            grades.push(grade_from_row(&r)?);
        }
    }
    tx.commit().await?;
    Ok(Snapshot {
        seq,
        promotions,
        grants,
        students,
        grades,
    })
}
