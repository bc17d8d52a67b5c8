//! `gradebook backup`: a consistent copy of a server's SQLite database,
//! made beside the running server (see `gradebook_store_sqlite::backup`).

use serde_json::json;

use crate::args::BackupArgs;
use crate::error::CliError;
use crate::output;

/// Copies DATA/gradebook.db to the file given, checks the copy and says
/// what it holds.
pub fn run(args: &BackupArgs, as_json: bool) -> Result<(), CliError> {
    let database = args.data.join("gradebook.db");
    let report = gradebook_store_sqlite::backup(&database, &args.file)
        .map_err(|e| CliError::Failed(format!("backup failed: {e}")))?;
    if as_json {
        output::print_json(&json!({
            "file": report.path,
            "bytes": report.bytes,
            "users": report.users,
            "promotions": report.promotions,
            "students": report.students,
            "grades": report.grades,
            "changes": report.chain.entries,
            "last_seq": report.chain.last_seq,
            "head": report.chain.head,
        }));
    } else {
        output::print(&format!(
            "backed up {} to {} ({} bytes): {} users, {} promotions, {} students, {} grades; \
             change log of {} entries intact up to seq {} (head {})",
            database.display(),
            report.path.display(),
            report.bytes,
            report.users,
            report.promotions,
            report.students,
            report.grades,
            report.chain.entries,
            report.chain.last_seq,
            report.chain.head,
        ));
    }
    Ok(())
}
