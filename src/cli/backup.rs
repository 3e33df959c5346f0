//! `nestbox backup`, `restore` and `verify` (see docs/backup.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Backend, Failure, exit, fail, progress, unexpected};
use crate::config::Config;
use crate::control::{self, Request, Response};
use crate::store::backup::{self, BackupError, Summary};
use crate::store::{DB_FILE, Store, VerifyReport};

/// `PATH` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where a backup's chunks go: a file written under a temporary name, renamed when
/// complete and on disk.
struct Output {
    file: std::io::BufWriter<std::fs::File>,
    partial: PathBuf,
    bar: indicatif::ProgressBar,
}

impl Output {
    fn chunk(&mut self, data: &[u8], p: backup::Progress) -> Result<(), Failure> {
        self.file
            .write_all(data)
            .map_err(|e| fail(exit::CANTCREAT, format!("{}: {e}", self.partial.display())))?;
        self.bar.set_length(p.total.max(p.done));
        self.bar.set_position(p.done);
        Ok(())
    }
}

/// `nestbox backup PATH`.
pub(super) async fn backup(backend: &mut Backend, path: &Path) -> Result<(), Failure> {
    if path.exists() {
        return Err(fail(
            exit::CANTCREAT,
            format!("{}: already exists; give a new file name", path.display()),
        ));
    }
    let partial = beside(path, ".partial");
    let file = std::fs::File::create(&partial)
        .map_err(|e| fail(exit::CANTCREAT, format!("{}: {e}", partial.display())))?;
    let mut out = Output {
        file: std::io::BufWriter::with_capacity(1 << 20, file),
        partial: partial.clone(),
        bar: progress(0, true),
    };
    let result = take(backend, &mut out).await;
    out.bar.finish_and_clear();
    let result = result.and_then(|summary| {
        let io = |e: std::io::Error| fail(exit::CANTCREAT, format!("{}: {e}", path.display()));
        let file = out.file.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)?;
        Ok(summary)
    });
    let summary = match result {
        Ok(s) => s,
        Err(f) => {
            let _ = std::fs::remove_file(&partial);
            return Err(f);
        }
    };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup of {} rows in {} tables ({} bytes, {} compressed) written to {}",
        summary.rows,
        summary.tables,
        summary.bytes,
        size,
        path.display()
    );
    Ok(())
}

/// Takes the backup through the running server or from the store opened here.
async fn take(backend: &mut Backend, out: &mut Output) -> Result<Summary, Failure> {
    match backend {
        Backend::Remote(client) => {
            let mut r = client
                .call(&Request::Backup)
                .await
                .map_err(|e| fail(exit::TEMPFAIL, format!("control socket: {e}")))?;
            loop {
                match r {
                    Response::BackupChunk { data, progress } => out.chunk(&data, progress)?,
                    Response::BackedUp(summary) => return Ok(summary),
                    other => return Err(unexpected(other)),
                }
                r = client
                    .response()
                    .await
                    .map_err(|e| fail(exit::TEMPFAIL, format!("control socket: {e}")))?;
            }
        }
        Backend::Local { pipeline, .. } => {
            let control::BackupStream { chunks, done } = control::start_backup(&pipeline.store);
            while let Ok((data, progress)) = chunks.recv().await {
                out.chunk(&data, progress)?;
            }
            done.await
                .map_err(|e| fail(exit::TEMPFAIL, format!("backup failed: {e}")))
        }
    }
}

fn backup_failure(path: &Path, e: BackupError) -> Failure {
    let code = match e {
        BackupError::Format(_) => exit::DATAERR,
        BackupError::Io(_) => exit::IOERR,
        BackupError::Store(_) | BackupError::UnknownTable(_) => exit::CANTCREAT,
    };
    fail(code, format!("{}: {e}", path.display()))
}

/// `nestbox restore PATH [--data-dir DIR]`: only into an empty or new directory, so a
/// restore never mixes with (or overwrites) a live store.
pub(super) fn restore(
    config: &Config,
    path: &Path,
    data_dir: Option<PathBuf>,
) -> Result<(), Failure> {
    let dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
    match std::fs::read_dir(&dir) {
        Ok(mut entries) => {
            if let Some(entry) = entries.next() {
                let name = entry
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Err(fail(
                    exit::CANTCREAT,
                    format!(
                        "the data dir {} is not empty (it holds {name:?}); restore only into an \
                         empty or new directory",
                        dir.display()
                    ),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(exit::CANTCREAT, format!("{}: {e}", dir.display()))),
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(exit::CANTCREAT, format!("{}: {e}", dir.display())))?;
    let summary = restore_into(config, path, &dir)?;
    println!(
        "restored {} rows in {} tables (schema {}, taken at {}) into {}",
        summary.rows,
        summary.tables,
        summary.schema,
        crate::util::rfc5322_date(summary.created),
        dir.display()
    );
    Ok(())
}

/// Restores `path` into the empty directory `dir` and opens the result once (which
/// upgrades a backup of an older schema).
fn restore_into(config: &Config, path: &Path, dir: &Path) -> Result<Summary, Failure> {
    let bar = progress(0, true);
    let summary = backup::restore(path, &dir.join(DB_FILE), &mut |p| bar.set_position(p.done))
        .map_err(|e| backup_failure(path, e));
    bar.finish_and_clear();
    let summary = summary?;
    let store = Store::open(dir, &config.store)
        .map_err(|e| fail(exit::SOFTWARE, format!("the restored store: {e}")))?;
    store.shutdown();
    Ok(summary)
}

/// `nestbox verify`: the live store, through the server when it runs.
pub(super) async fn verify_live(backend: &mut Backend) -> Result<(), Failure> {
    match backend.call(Request::Verify).await? {
        Response::Verified(r) => verdict(&r),
        r => Err(unexpected(r)),
    }
}

/// `nestbox verify PATH`: a backup file, checked whole (checksum) and then restored into
/// a temporary directory beside it and verified there.
pub(super) async fn verify_backup(config: &Config, path: &Path) -> Result<(), Failure> {
    verdict(&verify_file(config, path).await?)
}

/// Prints the report; fails (exit 65) when it lists problems.
fn verdict(report: &VerifyReport) -> Result<(), Failure> {
    print_report(report);
    if report.ok() {
        Ok(())
    } else {
        Err(fail(
            exit::DATAERR,
            format!(
                "{} problems found",
                report.problems.len() as u64 + report.more_problems
            ),
        ))
    }
}

async fn verify_file(config: &Config, path: &Path) -> Result<VerifyReport, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| fail(exit::IOERR, format!("{}: {e}", path.display())))?;
    let summary = backup::check(file).map_err(|e| backup_failure(path, e))?;
    eprintln!(
        "nestbox: {}: checksum correct, {} rows in {} tables; verifying the content",
        path.display(),
        summary.rows,
        summary.tables
    );
    let dir = beside(path, &format!(".verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(exit::CANTCREAT, format!("{}: {e}", dir.display())))?;
    let result: Result<VerifyReport, Failure> = async {
        restore_into(config, path, &dir)?;
        let store = Store::open(&dir, &config.store)
            .map_err(|e| fail(exit::SOFTWARE, format!("the restored store: {e}")))?;
        let report = store.verify_contents().await;
        store.shutdown();
        report.map_err(|e| fail(exit::SOFTWARE, e.to_string()))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn print_report(r: &VerifyReport) {
    for p in &r.problems {
        println!("{p}");
    }
    if r.more_problems > 0 {
        println!("... and {} more problems", r.more_problems);
    }
    println!(
        "verified {} users, {} mailboxes, {} messages, {} blobs in {} packs or loose, {} bytes: {}",
        r.users,
        r.mailboxes,
        r.messages,
        r.blobs,
        r.packs,
        r.bytes,
        if r.ok() {
            "no problems".to_string()
        } else {
            format!("{} problems", r.problems.len() as u64 + r.more_problems)
        }
    );
}
