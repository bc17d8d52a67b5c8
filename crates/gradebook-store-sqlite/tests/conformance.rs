//! The backend-independent conformance suite
//! (`gradebook_store::conformance`), on SQLite: a fresh database file in a
//! temporary directory for each check.

use std::sync::Arc;

use gradebook_store::Store;
use gradebook_store_sqlite::SqliteStore;

/// A fresh store, and the directory its file lives in (removed when
/// dropped).
async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("conformance.db"))
        .await
        .expect("opens");
    (dir, Arc::new(store))
}

gradebook_store::conformance_tests!(fresh);
