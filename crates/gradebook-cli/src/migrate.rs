//! `gradebook migrate --to postgres://…`: a stopped server's SQLite data,
//! copied whole into an empty PostgreSQL database, checked before it is
//! committed (see `gradebook_store_postgres::Import`).

use gradebook_store::StoreError;
use gradebook_store_postgres::Import;
use gradebook_store_sqlite::Export;
use serde_json::json;

use crate::args::MigrateArgs;
use crate::error::CliError;
use crate::output;

/// Rows per statement for the large tables.
const PAGE: u32 = 5_000;

fn failed(e: StoreError) -> CliError {
    CliError::Failed(format!("migration failed: {e}"))
}

/// Copies DATA/gradebook.db into the database at `--to`.
pub async fn run(args: &MigrateArgs, as_json: bool) -> Result<(), CliError> {
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        return Err(CliError::Usage(
            "--to takes a PostgreSQL database's URL: postgres://USER@HOST[:PORT]/DB".into(),
        ));
    }
    let database = args.data.join("gradebook.db");
    // SQLite's reads block; the copy is one task at a time, so they run
    // here, between the awaits.
    let source = Export::open(&database).map_err(failed)?;
    let counts = source.counts().map_err(failed)?;
    let chain = source.verify().map_err(failed)?;
    if let Some(problem) = &chain.problem {
        return Err(CliError::Failed(format!(
            "the source's change log breaks at entry {} ({}): run `gradebook audit verify` \
             on it; nothing was copied",
            problem.seq, problem.reason
        )));
    }
    let target = Import::begin(&args.to).await.map_err(failed)?;
    target
        .users(&source.users().map_err(failed)?)
        .await
        .map_err(failed)?;
    target
        .sessions(&source.sessions().map_err(failed)?)
        .await
        .map_err(failed)?;
    target
        .promotions(&source.promotions().map_err(failed)?)
        .await
        .map_err(failed)?;
    target
        .grants(&source.grants().map_err(failed)?)
        .await
        .map_err(failed)?;
    target
        .students(&source.students().map_err(failed)?)
        .await
        .map_err(failed)?;
    let mut after = 0;
    loop {
        let page = source.grades_after(after, PAGE).map_err(failed)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        target.grades(&page).await.map_err(failed)?;
    }
    let mut after = 0;
    loop {
        let page = source.changes_after(after, PAGE).map_err(failed)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        target.changes(&page).await.map_err(failed)?;
    }
    let highest = source.highest().map_err(failed)?;
    let (copied, copied_chain) = target
        .commit(highest, (&counts, &chain))
        .await
        .map_err(failed)?;
    if as_json {
        output::print_json(&json!({
            "from": database,
            "counts": copied,
            "changes": copied_chain.entries,
            "last_seq": copied_chain.last_seq,
            "head": copied_chain.head,
        }));
    } else {
        output::print(&format!(
            "copied {} into PostgreSQL and verified: {} users, {} sessions, {} promotions, \
             {} grants, {} students, {} grades; change log of {} entries intact up to seq {} \
             (head {}), as in the source.\nStart servers with --database and the same URL.",
            database.display(),
            copied.users,
            copied.sessions,
            copied.promotions,
            copied.grants,
            copied.students,
            copied.grades,
            copied_chain.entries,
            copied_chain.last_seq,
            copied_chain.head,
        ));
    }
    Ok(())
}
