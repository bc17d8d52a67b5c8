//! The schema's migrations: the `.sql` files in `migrations/`, embedded in
//! the binary, each applied once, in order, in a transaction of its own,
//! and recorded in `schema_migrations` (version, description, when).
//!
//! Every step first takes a transaction-level advisory lock
//! ([`MIGRATION_LOCK`]): two servers starting at once on the same database
//! take turns, and the second finds the first one's migrations recorded
//! and does not run them again.

use deadpool_postgres::Client;

use crate::error::Result;
use gradebook_store::StoreError;

/// The advisory lock key the migrations take (any constant of this
/// application's own; "gradebook" in ASCII, truncated).
pub(crate) const MIGRATION_LOCK: i64 = 0x6772_6164_6562_6f6f;

/// One migration.
#[derive(Debug)]
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "login failures",
        sql: include_str!("../migrations/0002_login_failures.sql"),
    },
    Migration {
        version: 3,
        description: "publication",
        sql: include_str!("../migrations/0003_publication.sql"),
    },
    Migration {
        version: 4,
        description: "no student index on changes",
        sql: include_str!("../migrations/0004_no_student_index_on_changes.sql"),
    },
];

/// Takes the migrations' lock, in the current transaction.
async fn lock(tx: &deadpool_postgres::Transaction<'_>) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    Ok(())
}

/// The versions recorded as applied.
async fn applied(tx: &deadpool_postgres::Transaction<'_>) -> Result<Vec<i64>> {
    Ok(tx
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.try_get("version"))
        .collect::<std::result::Result<_, _>>()?)
}

/// Brings the schema of the database on `client` up to date.
pub(crate) async fn run(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await?;
    lock(&tx).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     BIGINT PRIMARY KEY,
             description TEXT   NOT NULL,
             applied_at  BIGINT NOT NULL
         )",
    )
    .await?;
    let known = applied(&tx).await?;
    tx.commit().await?;
    if let Some(v) = known
        .iter()
        .find(|v| !MIGRATIONS.iter().any(|m| m.version == **v))
    {
        return Err(StoreError::Migrate(format!(
            "the database has migration {v}, which this server does not know: \
             it was written by a newer version"
        ))
        .into());
    }
    for m in MIGRATIONS.iter().filter(|m| !known.contains(&m.version)) {
        let ran = apply(client, m).await.map_err(|e| {
            StoreError::Migrate(format!(
                "migration {} ({}): {}",
                m.version,
                m.description,
                StoreError::from(e)
            ))
        })?;
        if ran {
            tracing::info!(
                version = m.version,
                description = m.description,
                "applied a migration"
            );
        }
    }
    Ok(())
}

/// Runs one migration and records it, unless another server did so while
/// this one waited for the lock; whether it ran.
async fn apply(client: &mut Client, m: &Migration) -> Result<bool> {
    let tx = client.transaction().await?;
    lock(&tx).await?;
    if applied(&tx).await?.contains(&m.version) {
        return Ok(false);
    }
    tx.batch_execute(m.sql).await?;
    tx.execute(
        "INSERT INTO schema_migrations (version, description, applied_at) \
         VALUES ($1, $2, EXTRACT(EPOCH FROM now())::BIGINT)",
        &[&m.version, &m.description],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
