//! The schema's migrations: the `.sql` files in `migrations/`, embedded in
//! the binary, each applied once, in order, and recorded in
//! `schema_migrations` (version, description, when).
//!
//! Databases created before this runner was written were migrated by sqlx,
//! which recorded its work in `_sqlx_migrations`: a version that table
//! lists as applied (`success = 1`) counts as applied here too and is
//! copied over. A version it lists as failed stops the start-up, as sqlx
//! itself would have: the schema is in an unknown state.
//!
//! A migration runs in one transaction, unless its first line is
//! `-- no-transaction`: it then manages its own (SQLite ignores
//! `PRAGMA foreign_keys` inside a transaction, and rebuilding a table needs
//! it off).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use gradebook_store::StoreError;

/// One migration.
#[derive(Debug)]
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order. The descriptions are the file names' as
/// sqlx recorded them.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        description: "udp requests",
        sql: include_str!("../migrations/0002_udp_requests.sql"),
    },
    Migration {
        version: 3,
        description: "ids never reused",
        sql: include_str!("../migrations/0003_ids_never_reused.sql"),
    },
    Migration {
        version: 4,
        description: "change log",
        sql: include_str!("../migrations/0004_change_log.sql"),
    },
    Migration {
        version: 5,
        description: "login failures",
        sql: include_str!("../migrations/0005_login_failures.sql"),
    },
    Migration {
        version: 6,
        description: "publication",
        sql: include_str!("../migrations/0006_publication.sql"),
    },
    Migration {
        version: 7,
        description: "no student index on changes",
        sql: include_str!("../migrations/0007_no_student_index_on_changes.sql"),
    },
];

/// Brings the schema of the database on `conn` up to date.
pub(crate) fn run(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER PRIMARY KEY,
             description TEXT    NOT NULL,
             applied_at  INTEGER NOT NULL
         )",
    )?;
    adopt_sqlx(conn)?;
    let applied: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")?
        .query_map([], |r| r.get("version"))?
        .collect::<rusqlite::Result<_>>()?;
    if let Some(v) = applied
        .iter()
        .find(|v| !MIGRATIONS.iter().any(|m| m.version == **v))
    {
        return Err(StoreError::Migrate(format!(
            "the database has migration {v}, which this server does not know: \
             it was written by a newer version"
        ))
        .into());
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        apply(conn, m).map_err(|e| {
            StoreError::Migrate(format!(
                "migration {} ({}): {}",
                m.version,
                m.description,
                StoreError::from(e)
            ))
        })?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "applied a migration"
        );
    }
    Ok(())
}

/// Runs one migration and records it.
fn apply(conn: &mut Connection, m: &Migration) -> Result<()> {
    let record = "INSERT INTO schema_migrations (version, description, applied_at) \
                  VALUES ($1, $2, unixepoch())";
    if m.sql.starts_with("-- no-transaction") {
        conn.execute_batch(m.sql)?;
        conn.execute(record, params![m.version, m.description])?;
    } else {
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        tx.execute(record, params![m.version, m.description])?;
        tx.commit()?;
    }
    Ok(())
}

/// Counts the versions that sqlx applied as applied (see the module's
/// documentation).
fn adopt_sqlx(conn: &mut Connection) -> Result<()> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Ok(());
    }
    let failed: Option<(i64, String)> = conn
        .query_row(
            "SELECT version, description FROM _sqlx_migrations WHERE NOT success \
             ORDER BY version LIMIT 1",
            [],
            |r| Ok((r.get("version")?, r.get("description")?)),
        )
        .optional()?;
    if let Some((version, description)) = failed {
        return Err(StoreError::Migrate(format!(
            "migration {version} ({description}) did not complete under an earlier \
             version of the server: the schema is in an unknown state; restore a backup"
        ))
        .into());
    }
    conn.execute(
        "INSERT OR IGNORE INTO schema_migrations (version, description, applied_at) \
         SELECT version, description, COALESCE(unixepoch(installed_on), 0) \
         FROM _sqlx_migrations WHERE success",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn versions(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT version FROM schema_migrations ORDER BY version")
            .expect("prepares")
            .query_map([], |r| r.get(0))
            .expect("reads")
            .collect::<rusqlite::Result<_>>()
            .expect("reads")
    }

    #[test]
    fn a_new_database_gets_every_migration_once() {
        let mut conn = Connection::open_in_memory().expect("opens");
        run(&mut conn).expect("migrates");
        assert_eq!(versions(&conn), [1, 2, 3, 4, 5, 6, 7]);
        run(&mut conn).expect("a second run does nothing");
        assert_eq!(versions(&conn), [1, 2, 3, 4, 5, 6, 7]);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'changes' AND type = 'index'")
            .expect("prepares")
            .query_map([], |r| r.get(0))
            .expect("reads")
            .collect::<rusqlite::Result<_>>()
            .expect("reads");
        assert_eq!(indexes, ["changes_promotion"]);
        let entries: i64 = conn
            .query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))
            .expect("the change log exists");
        assert_eq!(entries, 0);
    }

    #[test]
    fn a_failed_sqlx_migration_or_an_unknown_version_stops_the_start() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch(SQLX_TABLE).expect("creates");
        conn.execute_batch(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (1, 'init', 0, x'00', 0);",
        )
        .expect("records");
        let e = run(&mut conn).map_err(StoreError::from);
        assert!(matches!(e, Err(StoreError::Migrate(_))), "{e:?}");

        let mut conn = Connection::open_in_memory().expect("opens");
        run(&mut conn).expect("migrates");
        conn.execute(
            "INSERT INTO schema_migrations VALUES (99, 'from the future', 0)",
            [],
        )
        .expect("records");
        let e = run(&mut conn).map_err(StoreError::from);
        assert!(matches!(e, Err(StoreError::Migrate(_))), "{e:?}");
    }

    /// The table sqlx kept its migrations in.
    pub(crate) const SQLX_TABLE: &str = "CREATE TABLE _sqlx_migrations (
        version BIGINT PRIMARY KEY,
        description TEXT NOT NULL,
        installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        success BOOLEAN NOT NULL,
        checksum BLOB NOT NULL,
        execution_time BIGINT NOT NULL
    );";
}
