//! One module per command family; each turns typed arguments into a
//! request, and the reply into a table or a sentence (or JSON).

pub mod audit;
pub mod auth;
pub mod grade;
pub mod misc;
pub mod promotion;
pub mod student;
pub mod user;

use serde_json::Value;

use crate::app::Ctx;
use crate::error::CliError;
use crate::output;

/// Calls `cmd` and, with `--json`, prints the data and returns `None`;
/// otherwise returns the data for human output.
pub async fn call(ctx: &mut Ctx, cmd: &str, args: Value) -> Result<Option<Value>, CliError> {
    let data = ctx.conn.call(cmd, args).await?;
    if ctx.json {
        output::print_json(&data);
        Ok(None)
    } else {
        Ok(Some(data))
    }
}
