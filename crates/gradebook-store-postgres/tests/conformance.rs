//! The backend-independent conformance suite
//! (`gradebook_store::conformance`), on PostgreSQL: a fresh database
//! (`gb_<random>`) for each check, on the throwaway server that
//! `GRADEBOOK_TEST_POSTGRES` names. Without it, every check fails, saying
//! so: never skipped silently.

use std::sync::Arc;

use gradebook_store::Store;
use gradebook_store_postgres::PostgresStore;
use gradebook_store_postgres::testing::{admin_url, fresh_database};

/// A fresh store on a database of its own (left on the throwaway server).
async fn fresh() -> ((), Arc<dyn Store>) {
    let url = fresh_database(&admin_url()).await;
    let store = PostgresStore::connect(&url).await.expect("connects");
    ((), Arc::new(store))
}

gradebook_store::conformance_tests!(fresh);
