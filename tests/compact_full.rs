//! Compaction on a nearly full disk (issue #16): `nestbox compact` either shrinks the file
//! or refuses with a message naming what it needs and what is free; nothing acknowledged
//! is lost, and the server keeps delivering once space is freed. See docs/decisions.md,
//! "What compaction needs on a nearly full disk".
//!
//! Same set-up as tests/disk_full.rs (tests/common/tmpfs.rs): a 4 MiB tmpfs in a private
//! mount namespace. Needs root and util-linux.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::tmpfs::{
    Server, add_user, assert_exactly, cli, deliver, deliver_to, export_inbox, in_ns, lmtp, start,
};
use std::io::BufReader;
use std::net::TcpStream;
use std::path::Path;

/// The refusal's wording (src/store/mod.rs, `compact_file`).
const REFUSAL: &str = "compaction needs about";

/// Delivers to `users` in turn until the disk is full; the ids alice got acknowledged.
fn fill(w: &mut TcpStream, r: &mut BufReader<TcpStream>, users: &[&str]) -> Vec<u32> {
    let mut acked = Vec::new();
    for id in 0..40u32 {
        let user = users[id as usize % users.len()];
        let reply = deliver_to(w, r, user, id);
        if reply.starts_with("250") {
            if user == "alice" {
                acked.push(id);
            }
            continue;
        }
        assert!(
            reply.starts_with("452 4.3.1") || reply.starts_with("451 4.3.0"),
            "full disk is a temporary failure: {reply}"
        );
        assert!(acked.len() > 1, "some mail fitted before the disk filled");
        return acked;
    }
    panic!("a 4 MiB disk must fill up");
}

/// `ls -l` and `du` of the database file, in bytes.
fn sizes(server: &Server, dir: &Path) -> (u64, u64) {
    let db = dir.join("data/nestbox.redb");
    let out = in_ns(server, &["stat", "-c", "%s %b %B", db.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let n: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (n[0], n[1] * n[2])
}

/// Truncates the ballast file to `kib` KiB, giving the rest back to the file system.
fn shrink_ballast(server: &Server, ballast: &Path, kib: u32) {
    let size = format!("{kib}K");
    let out = in_ns(
        server,
        &["truncate", "-s", &size, ballast.to_str().unwrap()],
    );
    assert!(out.status.success());
}

/// `nestbox verify` of the live store passes.
fn assert_verifies(server: &Server, config: &Path) {
    let out = cli(server, config, &["verify"], b"");
    assert!(
        out.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes `file` (ballast) to free space; then `nestbox compact` succeeds and leaves
/// the database file below `before` bytes, a delivery to alice is accepted, the store
/// verifies, and alice's INBOX holds exactly `alice` and the new message.
fn compacts_and_delivers_after_rm(
    server: &Server,
    file: &Path,
    before: u64,
    w: &mut TcpStream,
    r: &mut BufReader<TcpStream>,
    mut alice: Vec<u32>,
) {
    let dir = file.parent().unwrap().parent().unwrap();
    let config = dir.join("config.ron");
    assert!(
        in_ns(server, &["rm", file.to_str().unwrap()])
            .status
            .success()
    );
    let out = cli(server, &config, &["compact"], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("compacted"),
        "compact with room: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sizes(server, dir).0 < before, "compacted");
    let again = deliver(w, r, 1000);
    assert!(again.starts_with("250"), "after freeing space: {again}");
    alice.push(1000);
    assert_verifies(server, &config);
    assert_exactly(&export_inbox(server, &config, dir, "alice"), &alice);
}

#[test]
fn compact_on_a_full_disk_shrinks_or_refuses_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let config = dir.path().join("config.ron");
    add_user(&server, &config, "alice");
    add_user(&server, &config, "bob");
    let (mut w, mut r) = lmtp(&server);
    let alice = fill(&mut w, &mut r, &["alice", "bob", "bob", "bob", "bob"]);

    // Deleting needs a few blocks too (copy-on-write pages), so first give back a
    // little of the ballast; then free four fifths of the mail inside the file.
    let ballast = dir.path().join("data/ballast");
    shrink_ballast(&server, &ballast, 640);
    let out = cli(&server, &config, &["user", "del", "bob"], b"");
    assert!(
        out.status.success(),
        "user del on a full disk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (before, allocated) = sizes(&server, dir.path());
    let out = cli(&server, &config, &["compact"], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("file {before} bytes ({allocated} allocated); compact: {stdout}{stderr}");
    if out.status.success() {
        let (after, _) = sizes(&server, dir.path());
        assert!(
            stdout.contains("compacted") && after < before,
            "{stdout}: {before} -> {after} bytes"
        );
    } else {
        assert_eq!(
            out.status.code(),
            Some(75),
            "a refusal is temporary: {stderr}"
        );
        assert!(stderr.contains(REFUSAL), "{stderr}");
    }
    assert_verifies(&server, &config);

    // Space freed: compaction runs, the server delivers again, and everything
    // acknowledged is there.
    compacts_and_delivers_after_rm(&server, &ballast, before, &mut w, &mut r, alice);
}

#[test]
fn compact_refuses_when_the_disk_has_no_room_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let config = dir.path().join("config.ron");
    add_user(&server, &config, "alice");
    let (mut w, mut r) = lmtp(&server);
    fill(&mut w, &mut r, &["alice"]);
    // Delete the mail (after giving back a little space, which deleting needs) so there
    // is something to compact, then take the last free blocks, so the room compaction
    // needs (at least its margin) is not there.
    shrink_ballast(&server, &dir.path().join("data/ballast"), 640);
    let out = cli(&server, &config, &["user", "del", "alice"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    add_user(&server, &config, "alice");
    let more = dir.path().join("data/ballast2");
    let fill_up = format!("head -c 4194304 /dev/zero > '{}'", more.display());
    let _ = in_ns(&server, &["sh", "-c", &fill_up]);
    let (before, allocated) = sizes(&server, dir.path());
    eprintln!(
        "file {before} bytes, {allocated} allocated (sparse: {})",
        before > allocated
    );

    let out = cli(&server, &config, &["compact"], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("compact: {stderr}");
    assert_eq!(out.status.code(), Some(75), "refused, temporary: {stderr}");
    assert!(
        stderr.contains(REFUSAL) && stderr.contains("are free"),
        "{stderr}"
    );
    assert_eq!(
        sizes(&server, dir.path()).0,
        before,
        "the file is untouched"
    );
    assert_verifies(&server, &config);

    // With the space back, compaction runs and delivery works.
    compacts_and_delivers_after_rm(&server, &more, before, &mut w, &mut r, Vec::new());
}
