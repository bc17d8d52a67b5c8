//! A full disk (protocol §3, `unavailable`): the write that does not fit is
//! refused with a plain message and leaves nothing behind, the server stays
//! up and keeps serving reads, and writes work again once space returns.
//!
//! SQLite's data directory, whatever backend the suite runs on
//! (PostgreSQL's disk is its server's). The disk is a small tmpfs mounted
//! for the test. Mounting needs root (or
//! CAP_SYS_ADMIN); where it is impossible the test says so on stderr and
//! does nothing else.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestServer, err, ok};
use gradebook_server::{Limits, TlsMode};
use serde_json::json;

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs {
            path,
            _parent: parent,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes to `path` until the disk is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("creates the filler");
    let chunk = vec![0x55u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last bytes, smaller than a chunk.
    while f.write_all(&chunk[..512]).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test]
async fn a_full_disk_is_unavailable_and_the_server_recovers() {
    let disk = match Tmpfs::mount("4m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!(
                "SKIPPED a_full_disk_is_unavailable_and_the_server_recovers: cannot mount a tmpfs here ({why})"
            );
            return;
        }
    };
    let data = tempfile::Builder::new()
        .tempdir_in(&disk.path)
        .expect("data directory on the small disk");
    let server = TestServer::start_sqlite_in(data, TlsMode::Off, Limits::default()).await;
    let mut c = server.admin().await;
    ok(&mut c, "promotion.create", json!({"name": "Before"})).await;
    let mut other = server.admin().await;

    let filler = disk.path.join("filler");
    fill(&filler);
    let description = "x".repeat(1000);
    let mut refused = None;
    for i in 0..5000 {
        let name = format!("P{i}");
        match c
            .call(
                "promotion.create",
                json!({"name": name, "description": description}),
            )
            .await
        {
            Ok(_) => {}
            Err(gradebook_client::ClientError::Server(e)) => {
                assert_eq!(e.code.as_str(), "unavailable", "{}", e.message);
                assert!(e.message.contains("full"), "{}", e.message);
                assert!(!e.message.contains('/'), "no path: {}", e.message);
                refused = Some(name);
                break;
            }
            Err(e) => panic!("transport error on a full disk: {e}"),
        }
    }
    let refused = refused.expect("a write was refused once the disk was full");

    // Still up, still reading, and nothing of the refused write is there.
    ok(&mut c, "ping", json!({})).await;
    err(
        &mut c,
        "promotion.show",
        json!({"name": refused}),
        "not_found",
    )
    .await;
    let before = ok(&mut c, "promotion.show", json!({"name": "Before"})).await;
    assert_eq!(before["name"], "Before");
    ok(&mut other, "promotion.list", json!({})).await;
    // Logging in writes a session: a few hundred bytes, which may fit in
    // the WAL's pages already on disk (checkpoints run beside the writer,
    // and SQLite then writes the WAL over from its start). Either it is
    // refused plainly, or it works; never anything else.
    let mut late = server.connect().await;
    match late.login("admin", common::ADMIN_PASSWORD).await {
        Err(e) => assert!(e.to_string().contains("unavailable"), "{e}"),
        Ok(_) => {
            ok(&mut late, "auth.whoami", json!({})).await;
        }
    }

    // Space returns: the same write now succeeds, and is durable.
    std::fs::remove_file(&filler).expect("removes the filler");
    ok(
        &mut c,
        "promotion.create",
        json!({"name": refused, "description": "after"}),
    )
    .await;
    drop((c, other, late));
    let data = server.stop().await;
    let server = TestServer::start_sqlite_in(data, TlsMode::Off, Limits::default()).await;
    let mut c = server.admin().await;
    let p = ok(&mut c, "promotion.show", json!({"name": refused})).await;
    assert_eq!(p["description"], "after");
    drop(c);
    drop(server.stop().await);
    drop(disk);
}
