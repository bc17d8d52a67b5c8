//! The change log: every committed write, in order, with what it changed.
//!
//! Each write appends its changes (old → new, per entity) in the same
//! transaction as the change itself, under a sequence number that grows by
//! one per entry. The log is at once:
//! - the audit log (`audit.list` reads the grade entries), made
//!   tamper-evident by a hash chain: each entry carries the SHA-256 of its
//!   content and of the entry before it, so editing or deleting any entry
//!   breaks every hash after it ([`verify_chain`]);
//! - the feed that keeps the server's in-memory model current: after each
//!   commit, the backend hands the batch's entries, in order, to the
//!   [`Follower`] the server registered with [`crate::Store::follow`].
//!
//! Sessions, login throttling and UDP request records are bookkeeping, not
//! data: they are not in the log.

use gradebook_core::{Grade, Publication, Role, Student};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What one side of a change looked like: `None` before an entity exists
/// or after it is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff<T> {
    /// Before the change.
    pub old: Option<T>,
    /// After the change.
    pub new: Option<T>,
}

impl<T> Diff<T> {
    /// An entity that appears.
    pub fn added(new: T) -> Self {
        Diff {
            old: None,
            new: Some(new),
        }
    }

    /// An entity that changes.
    pub fn updated(old: T, new: T) -> Self {
        Diff {
            old: Some(old),
            new: Some(new),
        }
    }

    /// An entity that goes away.
    pub fn removed(old: T) -> Self {
        Diff {
            old: Some(old),
            new: None,
        }
    }

    /// The entity after the change if it still exists, else before it.
    pub fn latest(&self) -> Option<&T> {
        self.new.as_ref().or(self.old.as_ref())
    }
}

/// A promotion as the log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRecord {
    /// Its id (never reused).
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// Its year.
    pub year: Option<i64>,
    /// Its description.
    pub description: Option<String>,
    /// The account that created it, if it still exists.
    pub created_by: Option<i64>,
    /// When its new grades become visible (entries written before
    /// publication existed lack it: immediately).
    #[serde(default)]
    pub publication: Publication,
    /// Whether it is locked (absent from older entries: it was not).
    #[serde(default)]
    pub locked: bool,
}

/// A teacher's grant on a promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// The promotion's id.
    pub promotion: i64,
    /// The teacher's account id.
    pub user: i64,
}

/// A student as the log records it: the record clients see, and the id of
/// its promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentRecord {
    /// The promotion's id.
    pub promotion_id: i64,
    /// The student.
    #[serde(flatten)]
    pub student: Student,
}

/// An account as the log records it (never a password or its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Its id.
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The role.
    pub role: Role,
    /// The linked student record.
    pub student: Option<i64>,
}

/// A session as the log records its end (`auth.logout`): whose, and the
/// SHA-256 of its token in hex, which is what the servers know it by (the
/// token itself is never stored). Every server drops it from its cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// The account's id.
    pub user: i64,
    /// The SHA-256 of the token, in hex.
    pub token_sha256: String,
}

/// One entity's change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A promotion created or deleted.
    Promotion(Diff<PromotionRecord>),
    /// A grant given or taken back.
    Grant(Diff<GrantRecord>),
    /// A student added, changed (or moved) or removed.
    Student(Diff<StudentRecord>),
    /// A grade added, changed or removed.
    Grade(Diff<Grade>),
    /// An account created, deleted, or its password changed (old = new).
    User(Diff<UserRecord>),
    /// A session ended by its user (old only).
    Session(Diff<SessionEnd>),
}

/// The ids an entry is about, for filters (`audit.list --student`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntityIds {
    /// The promotion concerned.
    pub promotion: Option<i64>,
    /// The student concerned.
    pub student: Option<i64>,
    /// The grade concerned.
    pub grade: Option<i64>,
}

impl Change {
    /// The entity kind, as stored in the log's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Promotion(_) => "promotion",
            Change::Grant(_) => "grant",
            Change::Student(_) => "student",
            Change::Grade(_) => "grade",
            Change::User(_) => "user",
            Change::Session(_) => "session",
        }
    }

    /// The old and new sides as JSON text, as stored.
    pub fn to_json(&self) -> serde_json::Result<(Option<String>, Option<String>)> {
        fn sides<T: Serialize>(
            d: &Diff<T>,
        ) -> serde_json::Result<(Option<String>, Option<String>)> {
            let json = |v: &Option<T>| v.as_ref().map(serde_json::to_string).transpose();
            Ok((json(&d.old)?, json(&d.new)?))
        }
        match self {
            Change::Promotion(d) => sides(d),
            Change::Grant(d) => sides(d),
            Change::Student(d) => sides(d),
            Change::Grade(d) => sides(d),
            Change::User(d) => sides(d),
            Change::Session(d) => sides(d),
        }
    }

    /// Rebuilds a change from its stored kind and sides; `None` for an
    /// unknown kind or sides that do not parse.
    pub fn from_json(kind: &str, old: Option<&str>, new: Option<&str>) -> Option<Change> {
        fn diff<T: serde::de::DeserializeOwned>(
            old: Option<&str>,
            new: Option<&str>,
        ) -> Option<Diff<T>> {
            let parse = |s: Option<&str>| match s {
                Some(s) => serde_json::from_str(s).ok().map(Some),
                None => Some(None),
            };
            Some(Diff {
                old: parse(old)?,
                new: parse(new)?,
            })
        }
        Some(match kind {
            "promotion" => Change::Promotion(diff(old, new)?),
            "grant" => Change::Grant(diff(old, new)?),
            "student" => Change::Student(diff(old, new)?),
            "grade" => Change::Grade(diff(old, new)?),
            "user" => Change::User(diff(old, new)?),
            "session" => Change::Session(diff(old, new)?),
            _ => return None,
        })
    }

    /// The ids the change is about.
    pub fn ids(&self) -> EntityIds {
        match self {
            Change::Promotion(d) => EntityIds {
                promotion: d.latest().map(|p| p.id),
                ..EntityIds::default()
            },
            Change::Grant(d) => EntityIds {
                promotion: d.latest().map(|g| g.promotion),
                ..EntityIds::default()
            },
            Change::Student(d) => EntityIds {
                promotion: d.latest().map(|s| s.promotion_id),
                student: d.latest().map(|s| s.student.id),
                grade: None,
            },
            // A grade's promotion is filled in by the backend, which knows
            // the student's.
            Change::Grade(d) => EntityIds {
                promotion: None,
                student: d.latest().map(|g| g.student),
                grade: d.latest().map(|g| g.id),
            },
            Change::User(d) => EntityIds {
                student: d.latest().and_then(|u| u.student),
                ..EntityIds::default()
            },
            Change::Session(_) => EntityIds::default(),
        }
    }
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Its position: 1, 2, 3… with no gap.
    pub seq: i64,
    /// When it was committed (Unix seconds).
    pub at: i64,
    /// Who made it.
    pub by: String,
    /// The command that made it (`grade.add`, `student.remove`…).
    pub command: String,
    /// What changed.
    pub change: Change,
}

/// What follows the log (the server's in-memory model): it receives the
/// data as of some change, then every committed batch after it, in order,
/// each before any of its writes is acknowledged. Called on the backend's
/// writer thread: it must be quick and must not call the store.
pub trait Follower: Send + Sync {
    /// The data as of change `snapshot.seq`, before any later batch.
    fn load(&self, snapshot: crate::Snapshot);
    /// One committed batch of entries, in seq order.
    fn apply(&self, batch: &[ChangeRecord]);
}

/// The SHA-256 an entry carries.
pub type Hash = [u8; 32];

/// The hash before the first entry.
pub const GENESIS: Hash = [0; 32];

/// The end of the chain: the last entry's seq and hash. Each backend keeps
/// one per write transaction and appends through [`Head::next`], so every
/// backend chains entries the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The last entry's seq (0 for an empty log).
    pub seq: i64,
    /// The last entry's hash ([`GENESIS`] for an empty log).
    pub hash: Hash,
}

/// The entry that follows a [`Head`]: its stored columns, and the record a
/// follower receives.
#[derive(Debug, Clone, PartialEq)]
pub struct NextEntry {
    /// The chain's end once the entry is stored: its seq and hash.
    pub head: Head,
    /// The entity's kind.
    pub kind: &'static str,
    /// The ids it is about.
    pub ids: EntityIds,
    /// The entity before, as JSON.
    pub old: Option<String>,
    /// The entity after, as JSON.
    pub new: Option<String>,
    /// The entry as followers receive it.
    pub record: ChangeRecord,
}

impl Head {
    /// The head of an empty log.
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS,
    };

    /// The head read from storage: entry `seq` with its stored hash.
    pub fn stored(seq: i64, hash: Vec<u8>) -> Result<Head, crate::StoreError> {
        let hash = hash.try_into().map_err(|_| {
            crate::StoreError::Corrupt(format!("change {seq} has a hash of the wrong length"))
        })?;
        Ok(Head { seq, hash })
    }

    /// The entry after this head recording `change`, made by `by` at `at`
    /// with `command`, about `ids` (the backend fills in what the change
    /// alone does not say, such as a grade's promotion).
    pub fn next(
        &self,
        at: i64,
        by: &str,
        command: &str,
        change: Change,
        ids: EntityIds,
    ) -> Result<NextEntry, crate::StoreError> {
        let (old, new) = change
            .to_json()
            .map_err(|e| crate::StoreError::Corrupt(format!("unserialisable change: {e}")))?;
        let seq = self.seq + 1;
        let kind = change.kind();
        let hash = StoredEntry {
            seq,
            at,
            by,
            command,
            kind,
            ids,
            old: old.as_deref(),
            new: new.as_deref(),
        }
        .hash(&self.hash);
        Ok(NextEntry {
            head: Head { seq, hash },
            kind,
            ids,
            old,
            new,
            record: ChangeRecord {
                seq,
                at,
                by: by.to_owned(),
                command: command.to_owned(),
                change,
            },
        })
    }
}

/// An entry's fields as stored, which its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct StoredEntry<'a> {
    /// Its seq.
    pub seq: i64,
    /// When.
    pub at: i64,
    /// Who.
    pub by: &'a str,
    /// The command.
    pub command: &'a str,
    /// The entity kind.
    pub kind: &'a str,
    /// The ids it is about.
    pub ids: EntityIds,
    /// The old side, as JSON.
    pub old: Option<&'a str>,
    /// The new side, as JSON.
    pub new: Option<&'a str>,
}

impl StoredEntry<'_> {
    /// SHA-256 of the previous entry's hash and this entry's fields, each
    /// length-prefixed so no two entries encode alike.
    pub fn hash(&self, previous: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update(b"gradebook change v1\0");
        h.update(previous);
        h.update(self.seq.to_be_bytes());
        h.update(self.at.to_be_bytes());
        let text = |h: &mut Sha256, s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        let id = |h: &mut Sha256, v: Option<i64>| match v {
            Some(v) => {
                h.update([1]);
                h.update(v.to_be_bytes());
            }
            None => h.update([0]),
        };
        let side = |h: &mut Sha256, v: Option<&str>| match v {
            Some(v) => {
                h.update([1]);
                text(h, v);
            }
            None => h.update([0]),
        };
        text(&mut h, self.by);
        text(&mut h, self.command);
        text(&mut h, self.kind);
        id(&mut h, self.ids.promotion);
        id(&mut h, self.ids.student);
        id(&mut h, self.ids.grade);
        side(&mut h, self.old);
        side(&mut h, self.new);
        h.finalize().into()
    }
}

/// What a check of the whole chain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// How many entries were checked.
    pub entries: u64,
    /// The last entry's seq (0 for an empty log).
    pub last_seq: i64,
    /// The last entry's hash, in hex: noted somewhere safe, it proves later
    /// that nothing up to it was rewritten.
    pub head: String,
    /// The first problem found, if any.
    pub problem: Option<ChainProblem>,
}

/// Where the chain breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProblem {
    /// The first entry that does not check out.
    pub seq: i64,
    /// Why, in words.
    pub reason: String,
}

/// Checks entries given in seq order (each with the hash stored with it)
/// against the chain: every seq follows the one before, and every stored
/// hash is the hash of its entry and its predecessor. `highest` is the
/// highest seq the database ever handed out, which exposes entries deleted
/// from the end.
pub fn verify_chain<'a, I>(entries: I, highest: i64) -> ChainReport
where
    I: IntoIterator<Item = (StoredEntry<'a>, Option<&'a [u8]>)>,
{
    let mut previous = GENESIS;
    let mut expected_seq = 1;
    let mut count = 0;
    let mut problem = None;
    for (entry, stored) in entries {
        count += 1;
        if problem.is_some() {
            continue;
        }
        if entry.seq != expected_seq {
            problem = Some(ChainProblem {
                seq: expected_seq,
                reason: if entry.seq > expected_seq {
                    format!(
                        "entries {expected_seq} to {} are missing (deleted?)",
                        entry.seq - 1
                    )
                } else {
                    format!("entry {} is out of order", entry.seq)
                },
            });
            continue;
        }
        let hash = entry.hash(&previous);
        if stored != Some(&hash[..]) {
            problem = Some(ChainProblem {
                seq: entry.seq,
                reason: "its content or its predecessor was changed (the hash does not match)"
                    .into(),
            });
            continue;
        }
        previous = hash;
        expected_seq += 1;
    }
    let last_seq = expected_seq - 1;
    if problem.is_none() && highest > last_seq {
        problem = Some(ChainProblem {
            seq: last_seq + 1,
            reason: format!(
                "entries {} to {highest} are missing from the end (deleted?)",
                last_seq + 1
            ),
        });
    }
    ChainReport {
        entries: count,
        last_seq,
        head: hex::encode(previous),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, new: &str) -> StoredEntry<'_> {
        StoredEntry {
            seq,
            at: 1_700_000_000 + seq,
            by: "admin",
            command: "grade.add",
            kind: "grade",
            ids: EntityIds {
                promotion: Some(1),
                student: Some(2),
                grade: Some(seq),
            },
            old: None,
            new: Some(new),
        }
    }

    /// Three entries chained properly: (entry, its hash).
    fn chain(values: &[String]) -> Vec<(StoredEntry<'_>, Hash)> {
        let mut previous = GENESIS;
        let mut out = vec![];
        for (seq, v) in (1..).zip(values) {
            let e = entry(seq, v);
            previous = e.hash(&previous);
            out.push((e, previous));
        }
        out
    }

    fn values() -> Vec<String> {
        (0..3).map(|i| format!("{{\"value\":{i}}}")).collect()
    }

    #[test]
    fn an_intact_chain_checks_out_and_names_its_head() {
        let values = values();
        let entries = chain(&values);
        let head = hex::encode(entries[2].1);
        let report = verify_chain(entries.iter().map(|(e, h)| (*e, Some(&h[..]))), 3);
        assert_eq!(report.problem, None);
        assert_eq!((report.entries, report.last_seq), (3, 3));
        assert_eq!(report.head, head);
    }

    #[test]
    fn an_edited_entry_is_found() {
        let values = values();
        let mut entries = chain(&values);
        entries[1].0.by = "mallory";
        let report = verify_chain(entries.iter().map(|(e, h)| (*e, Some(&h[..]))), 3);
        assert_eq!(report.problem.map(|p| p.seq), Some(2));
    }

    #[test]
    fn a_deleted_entry_is_found_in_the_middle_and_at_the_end() {
        let values = values();
        let entries = chain(&values);
        let middle = verify_chain(
            [&entries[0], &entries[2]]
                .into_iter()
                .map(|(e, h)| (*e, Some(&h[..]))),
            3,
        );
        let p = middle.problem.expect("a gap");
        assert_eq!(p.seq, 2);
        assert!(p.reason.contains("missing"), "{}", p.reason);
        let end = verify_chain(entries[..2].iter().map(|(e, h)| (*e, Some(&h[..]))), 3);
        assert_eq!(end.problem.map(|p| p.seq), Some(3));
    }

    #[test]
    fn a_rewritten_chain_needs_every_later_hash_recomputed() {
        // Changing an entry and recomputing its own hash still breaks the
        // next one, whose hash covers its predecessor's.
        let values = values();
        let mut entries = chain(&values);
        let forged = "{\"value\":20}";
        entries[0].0.new = Some(forged);
        entries[0].1 = entries[0].0.hash(&GENESIS);
        let report = verify_chain(entries.iter().map(|(e, h)| (*e, Some(&h[..]))), 3);
        assert_eq!(report.problem.map(|p| p.seq), Some(2));
    }

    #[test]
    fn changes_round_trip_through_their_stored_form() {
        let change = Change::Grant(Diff::added(GrantRecord {
            promotion: 3,
            user: 4,
        }));
        let (old, new) = change.to_json().expect("serialises");
        let back = Change::from_json(change.kind(), old.as_deref(), new.as_deref());
        assert_eq!(back, Some(change));
        assert_eq!(Change::from_json("nothing", None, None), None);
    }
}
