//! A full disk: LMTP answers 4xx and keeps the connection, nothing acknowledged is lost,
//! `/healthz` answers 503 naming the store, and delivery works again (and `/healthz` 200)
//! once space is freed (the store reopens its poisoned handle).
//!
//! The server runs in a private mount namespace (`unshare -m`) with its data dir on a
//! 4 MiB tmpfs, so nothing outside the test is touched. Needs root (as CI has) and
//! util-linux's `unshare` and `nsenter`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::tmpfs::{
    add_user, assert_exactly, deliver, export_inbox, healthz, in_ns, lmtp, send, start,
};

#[test]
fn disk_full_is_a_temporary_failure_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let config = dir.path().join("config.ron");
    add_user(&server, &config, "alice");
    let (mut w, mut r) = lmtp(&server);

    let mut acked = Vec::new();
    let mut refusal = None;
    for id in 0..40 {
        let reply = deliver(&mut w, &mut r, id);
        if reply.starts_with("250") {
            acked.push(id);
        } else {
            refusal = Some(reply);
            break;
        }
    }
    let refusal = refusal.expect("a 4 MiB disk must fill up");
    assert!(
        refusal.starts_with("452 4.3.1") || refusal.starts_with("451 4.3.0"),
        "full disk is a temporary failure: {refusal}"
    );
    assert!(!acked.is_empty(), "some mail fitted before the disk filled");
    // The session is still usable.
    assert!(send(&mut w, &mut r, "NOOP").starts_with("250"));
    // A monitor sees it.
    let (code, body) = healthz(&server);
    assert_eq!(code, 503, "/healthz on a full disk: {body}");
    assert!(body.contains("store not writable"), "{body}");

    // Free space; delivery works again without restarting the server.
    let ballast = dir.path().join("data/ballast");
    assert!(
        in_ns(&server, &["rm", ballast.to_str().unwrap()])
            .status
            .success()
    );
    let again = deliver(&mut w, &mut r, 1000);
    assert!(again.starts_with("250"), "after freeing space: {again}");
    acked.push(1000);
    let (code, body) = healthz(&server);
    assert_eq!(code, 200, "/healthz after freeing space: {body}");

    // Every acknowledged message is there, intact.
    let text = export_inbox(&server, &config, dir.path(), "alice");
    // redb can fail *after* its commit record reached the disk; the writer then finds
    // its batch stamp after reopening and acknowledges the batch. So what is stored is
    // exactly what was acknowledged: no duplicate on the sender's retry.
    assert_exactly(&text, &acked);
}
