//! Helpers for tests against a real PostgreSQL server (feature `testing`):
//! this crate's and the server's.

/// The environment variable that names a throwaway PostgreSQL server, as a
/// superuser's URL (`postgres://postgres@127.0.0.1:55432/postgres`).
pub const ADMIN_URL_VAR: &str = "GRADEBOOK_TEST_POSTGRES";

/// The URL in [`ADMIN_URL_VAR`]; panics, saying what to do, if it is not
/// set: tests that need PostgreSQL fail rather than skip silently.
pub fn admin_url() -> String {
    match std::env::var(ADMIN_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "set {ADMIN_URL_VAR} to a throwaway PostgreSQL server's URL, or run scripts/test, \
             which starts one"
        ),
    }
}

/// Creates a new, empty database `gb_<random>` on the server that
/// `admin_url` (a superuser's, or a role's that may create databases)
/// reaches, and returns the URL of that database: `admin_url` with its
/// database name replaced. Panics on failure: it is for tests.
pub async fn fresh_database(admin_url: &str) -> String {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("random bytes for a database name");
    let name = format!(
        "gb_{}",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {ADMIN_URL_VAR}'s server: {e}"));
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create the database {name}: {e}"));
    drop(client);
    let _ = task.await;
    with_database(admin_url, &name)
}

/// `url` with its database name replaced by `name` (the path's only
/// segment; query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // After the scheme's `//`, the first `/` starts the database name.
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "gb_1"),
            "postgres://postgres@127.0.0.1:55432/gb_1"
        );
        assert_eq!(
            with_database("postgresql://u@h", "gb_1"),
            "postgresql://u@h/gb_1"
        );
        assert_eq!(
            with_database("postgres://u@/postgres?host=/tmp/x", "gb_1"),
            "postgres://u@/gb_1?host=/tmp/x"
        );
    }
}
