//! The PostgreSQL backend of gradebook's [`gradebook_store::Store`].
//!
//! One driver, tokio-postgres, with connections from a deadpool pool.
//! Writes go to one writer task (group commit, like the SQLite backend's
//! writer thread); reads take a connection of the pool each. The schema's
//! migrations are in [`migrate`]. Driver errors become
//! [`gradebook_store::StoreError`]s in [`error`]: none of the driver's
//! types, and no SQL, reaches a client.

#![forbid(unsafe_code)]

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use gradebook_store::{Result, StoreError};
use tokio_postgres::NoTls;

mod error;
mod migrate;

/// How many reads may run at once, each on a connection of its own.
const READERS: usize = 8;

/// How long a read or write waits for a connection before the storage is
/// reported unavailable.
const WAIT: Duration = Duration::from_secs(10);

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    readers: Pool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or
    /// `postgresql://…`, e.g. `postgres://user@127.0.0.1:5432/db` or
    /// `postgres://user@/db?host=/path/to/socket/dir`), brings its schema up
    /// to date and returns a ready store.
    pub async fn connect(url: &str) -> Result<Self> {
        let config = parse_url(url)?;
        let readers = pool(&config, READERS)?;
        let mut client = readers.get().await.map_err(error::from_pool)?;
        migrate::run(&mut client).await?;
        drop(client);
        Ok(PostgresStore { readers })
    }
}

/// The driver's configuration for `url`; an error that never quotes the
/// URL, which may hold a password.
fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Backend(
            "not a PostgreSQL database's URL: use postgres://USER@HOST:PORT/DATABASE".into(),
        ));
    }
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        StoreError::Backend(format!("the PostgreSQL database's URL does not parse: {e}"))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(WAIT);
    }
    if config.get_application_name().is_none() {
        config.application_name("gradebook");
    }
    Ok(config)
}

/// A pool of at most `size` connections to the database `config` names.
fn pool(config: &tokio_postgres::Config, size: usize) -> Result<Pool> {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(WAIT))
        .recycle_timeout(Some(WAIT))
        .build()
        .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))
}
