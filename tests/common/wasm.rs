//! Plugins built for wasm32-wasip2 by the tests that load them, into one directory
//! beside the test binaries (`<target>/wasm-plugins`), so cargo reuses the build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// `<target>/wasm-plugins/wasm32-wasip2/release`, where [`build`] puts the components.
pub fn release_dir() -> PathBuf {
    target_dir().join("wasm-plugins/wasm32-wasip2/release")
}

/// The cargo target directory the tests run from (`<target>/debug/nestbox` is the server).
pub fn target_dir() -> PathBuf {
    Path::new(super::bin())
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf()
}

/// Builds the plugin crate at `manifest` (relative to the repository) for wasm32-wasip2,
/// release; its component lands in [`release_dir`].
pub fn build(manifest: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join(manifest))
        .arg("--target-dir")
        .arg(target_dir().join("wasm-plugins"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building {manifest} for wasm32-wasip2 failed (rustup target add wasm32-wasip2?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("built {manifest} in {:?}", started.elapsed());
}
