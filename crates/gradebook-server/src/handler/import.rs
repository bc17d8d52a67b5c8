//! `import.*`: a file's lines, sent in as many messages as they need, then
//! checked and written in one transaction (staged like PostgreSQL's COPY or
//! a multipart upload, so a file larger than one message is still all or
//! nothing).
//!
//! `import.begin` reads the header line and opens the import;
//! `import.rows` adds lines to it, held in memory (bounded per import and
//! in all); `import.commit` applies the rules of `gradebook_core::import`
//! to every line against the promotion as it is now and writes the result
//! with one store call, or with `dry_run` only reports. One import is open
//! per session at a time; an import unused for the idle timeout is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use gradebook_core::import::{Kind, Layout, Line, Plan, numbers, plan_grades, plan_students};
use gradebook_core::{NewGrade, NewStudent};
use gradebook_proto::command::{
    ImportAbortArgs, ImportBeginArgs, ImportCommitArgs, ImportRowsArgs,
};
use gradebook_proto::data::{ImportBegun, ImportReceived, ImportReport};
use gradebook_proto::{LineError, WireError};

use super::{Handled, done, from_store, reply};
use crate::context::{Caller, State, Transport};
use crate::session::TokenHash;

/// The most bad lines a reply lists; the message counts them all.
const LINES_LISTED: usize = 1000;
/// What a line costs beyond its text, for the memory bound.
const LINE_OVERHEAD: usize = 64;
/// What a cell costs beyond its text.
const CELL_OVERHEAD: usize = 24;
/// Imports in memory at once may hold this many times the per-import
/// bound, in all.
const TOTAL_FACTOR: usize = 4;

/// One open import.
#[derive(Debug)]
struct Open {
    id: i64,
    kind: Kind,
    promotion: String,
    layout: Layout,
    lines: Vec<Line>,
    bytes: usize,
    touched: Instant,
}

/// The open imports, one per session at most.
#[derive(Debug, Default)]
pub struct Imports {
    open: Mutex<HashMap<TokenHash, Open>>,
    next_id: AtomicI64,
}

impl Imports {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Open>> {
        // A panic while holding the lock leaves the map usable.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the imports unused for `idle` at `now`.
    pub fn purge(&self, now: Instant, idle: Duration) {
        self.lock()
            .retain(|_, open| now.duration_since(open.touched) < idle);
    }

    /// The promotion of this session's import `id`, for the permission
    /// check of `import.commit`.
    pub fn promotion_of(&self, session: &TokenHash, id: i64) -> Option<String> {
        self.lock()
            .get(session)
            .filter(|o| o.id == id)
            .map(|o| o.promotion.clone())
    }

    fn total_bytes(map: &HashMap<TokenHash, Open>) -> usize {
        map.values().map(|o| o.bytes).sum()
    }
}

fn no_import(id: i64) -> WireError {
    WireError::not_found(format!(
        "no open import {id} in this session (an import is dropped by its commit, \
         by import.abort, by a new import.begin, or after the idle timeout)"
    ))
}

fn tcp_only(caller: &Caller) -> Result<&TokenHash, WireError> {
    if caller.transport == Transport::Udp {
        return Err(WireError::bad_request(
            "imports need a TCP connection: their lines do not fit datagrams",
        ));
    }
    Ok(&caller.session()?.token_hash)
}

pub async fn begin(state: &State, args: ImportBeginArgs, caller: &Caller) -> Handled {
    let session = tcp_only(caller)?;
    let kind = Kind::parse(&args.kind)?;
    let layout = Layout::new(kind, &args.columns, &args.ignore)?;
    // The promotion must exist (the permission check found it for scoped
    // roles; an admin learns here that it does not).
    state.model.read().promotion(&args.promotion)?;
    let imports = &state.imports;
    imports.purge(state.clock.now(), state.limits.idle_timeout);
    let id = imports.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let columns = layout.columns().map(|c| c.map(str::to_owned)).collect();
    // A new import replaces the session's previous one, as a new COPY
    // would: a client that died mid-import is not locked out.
    imports.lock().insert(
        *session,
        Open {
            id,
            kind,
            promotion: args.promotion,
            layout,
            lines: Vec::new(),
            bytes: 0,
            touched: state.clock.now(),
        },
    );
    reply(ImportBegun {
        import: id,
        columns,
    })
}

pub async fn rows(state: &State, args: ImportRowsArgs, caller: &Caller) -> Handled {
    let session = tcp_only(caller)?;
    state
        .imports
        .purge(state.clock.now(), state.limits.idle_timeout);
    let max = state.limits.max_import_bytes;
    let added: usize = args
        .rows
        .iter()
        .map(|r| {
            LINE_OVERHEAD
                + r.cells
                    .iter()
                    .map(|c| c.len() + CELL_OVERHEAD)
                    .sum::<usize>()
        })
        .sum();
    let mut map = state.imports.lock();
    let total = Imports::total_bytes(&map);
    let open = map
        .get_mut(session)
        .filter(|o| o.id == args.import)
        .ok_or_else(|| no_import(args.import))?;
    if open.bytes + added > max {
        map.remove(session);
        return Err(WireError::invalid_value(format!(
            "import {} is over {max} bytes: it was dropped and nothing was written; \
             split the file, or raise the server's --max-import-bytes",
            args.import
        )));
    }
    if total + added > max.saturating_mul(TOTAL_FACTOR) {
        return Err(WireError::new(
            gradebook_proto::ErrorCode::RateLimited,
            "the server holds too many imports at once: try again shortly",
        ));
    }
    open.bytes += added;
    open.touched = state.clock.now();
    open.lines.extend(args.rows.into_iter().map(|r| Line {
        line: r.line,
        cells: r.cells,
    }));
    reply(ImportReceived {
        import: open.id,
        rows: open.lines.len() as u64,
        bytes: open.bytes as u64,
    })
}

pub async fn abort(state: &State, args: ImportAbortArgs, caller: &Caller) -> Handled {
    let session = tcp_only(caller)?;
    let mut map = state.imports.lock();
    match map.get(session) {
        Some(o) if o.id == args.import => {
            map.remove(session);
            drop(map);
            done()
        }
        _ => Err(no_import(args.import)),
    }
}

/// The bad lines, for a reply: sorted, at most [`LINES_LISTED`].
fn listed(mut errors: Vec<gradebook_core::import::LineError>) -> Vec<LineError> {
    errors.sort_by_key(|e| e.line);
    errors
        .into_iter()
        .take(LINES_LISTED)
        .map(|e| LineError {
            line: e.line,
            message: e.message,
        })
        .collect()
}

pub async fn commit(state: &State, args: ImportCommitArgs, caller: &Caller) -> Handled {
    let session = *tcp_only(caller)?;
    state
        .imports
        .purge(state.clock.now(), state.limits.idle_timeout);
    let dry_run = args.dry_run.unwrap_or(false);
    let skip_bad = args.skip_bad.unwrap_or(false);
    // Taken out while it is checked and written: a second commit of the
    // same import finds nothing.
    let open = {
        let mut map = state.imports.lock();
        match map.get(&session) {
            Some(o) if o.id == args.import => map.remove(&session),
            _ => None,
        }
    }
    .ok_or_else(|| no_import(args.import))?;
    let (open, planned) = plan(state, open).await?;
    let promotion = open.promotion.clone();
    if dry_run {
        // Put back for the real commit, unless a new import took its place.
        let mut map = state.imports.lock();
        map.entry(session).or_insert(Open {
            touched: state.clock.now(),
            ..open
        });
    }
    match planned {
        Planned::Students(plan, lines) => {
            let (report, add) = settle(plan, lines, dry_run, skip_bad)?;
            if !dry_run && !add.is_empty() {
                state
                    .store
                    .import_students(&promotion, add, caller.write()?)
                    .await
                    .map_err(from_store)?;
            }
            reply(report)
        }
        Planned::Grades(plan, lines) => {
            let (report, add) = settle(plan, lines, dry_run, skip_bad)?;
            if !dry_run && !add.is_empty() {
                state
                    .store
                    .import_grades(add, caller.write()?)
                    .await
                    .map_err(from_store)?;
            }
            reply(report)
        }
    }
}

/// What the lines of an import would do, with how many lines there were.
enum Planned {
    Students(Plan<NewStudent>, u64),
    Grades(Plan<NewGrade>, u64),
}

/// Plans the import against the promotion as it is now. The planning
/// itself (every line read, every student found) runs on the blocking
/// pool: a file of a million lines must not hold up the connections that
/// share this thread. The import comes back with its plan.
async fn plan(state: &State, open: Open) -> Result<(Open, Planned), WireError> {
    let (current, taken) = {
        let view = state.model.read();
        let current = view.promotion_grades(&open.promotion)?;
        // Numbers are unique across promotions: a number another
        // promotion's student has cannot be imported here.
        let taken: HashSet<String> = match open.kind {
            Kind::Students => numbers(&open.layout, &open.lines)
                .into_iter()
                .filter(|n| {
                    view.student_numbered(n)
                        .is_some_and(|s| s.student().promotion != open.promotion)
                })
                .collect(),
            Kind::Grades => HashSet::new(),
        };
        (current, taken)
    };
    tokio::task::spawn_blocking(move || {
        let lines = open.lines.len() as u64;
        let planned = match open.kind {
            Kind::Students => Planned::Students(
                plan_students(&open.layout, &open.lines, &current.students, &taken),
                lines,
            ),
            Kind::Grades => Planned::Grades(
                plan_grades(
                    &open.layout,
                    &open.lines,
                    &open.promotion,
                    &current.students,
                    &current.grades,
                ),
                lines,
            ),
        };
        (open, planned)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "planning an import failed");
        WireError::internal()
    })
}

/// The report of a plan, and what to write; an error listing the bad lines
/// when there are some and they are not to be skipped.
fn settle<T>(
    plan: Plan<T>,
    lines: u64,
    dry_run: bool,
    skip_bad: bool,
) -> Result<(ImportReport, Vec<(u64, T)>), WireError> {
    let bad = plan.errors.len();
    if bad > 0 && !skip_bad {
        let first = plan
            .errors
            .iter()
            .min_by_key(|e| e.line)
            .map(|e| format!(" (line {}: {})", e.line, e.message))
            .unwrap_or_default();
        return Err(WireError::invalid_value(format!(
            "{bad} bad line{} of {lines}{first}: nothing was changed",
            if bad > 1 { "s" } else { "" },
        ))
        .with_lines(listed(plan.errors)));
    }
    let report = ImportReport {
        dry_run,
        lines,
        added: plan.add.len() as u64,
        present: plan.present,
        empty: plan.empty,
        repeated: plan.repeated,
        skipped: listed(plan.errors),
    };
    Ok((report, plan.add))
}
