//! The writer thread: group commit.
//!
//! Jobs queue on a bounded channel. The thread takes the first job, then everything else
//! already waiting (up to [`MAX_BATCH`]), runs them all in one write transaction, commits
//! once with `Durability::Immediate` (fsync), then publishes their changes and answers
//! each job. Concurrent deliveries therefore share one fsync instead of paying one each,
//! and nobody is answered before their data is durable (DESIGN.md decision 2).
//!
//! Every batch stamps a sequence number into `META` before it commits. redb can report an
//! I/O error *after* its commit record reached the disk (a disk filling up during the
//! fsync, say); the writer then reopens the file and looks for the stamp: present means
//! the batch is durable and its jobs succeeded, absent means nothing of it was written.
//! Without this, a message refused with a 4xx could still be stored, and the sender's
//! retry would store it twice.

use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use redb::{Durability, ReadableDatabase, WriteTransaction};
use smol::channel::{Receiver, Sender, bounded};

use super::{Change, ChangeKind, Origin, Shared, StoreError};
use crate::contracts::{MailboxId, UserId};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 256;
/// Jobs that may wait for the writer before submitters are slowed down.
const QUEUE: usize = 1024;

/// What a job may do besides writing: record changes to publish after the commit.
#[derive(Default)]
pub struct Batch {
    pub changes: Vec<Change>,
    /// Blobs stored without a dictionary in this batch (drives dictionary training).
    pub undicted: u64,
    /// Blobs were stored loose (may start the packer).
    pub loose_added: bool,
    /// Blobs were freed (packs may have become sparse).
    pub freed: bool,
    /// `USERS` was written: the user cache is dropped after the commit.
    pub users_changed: bool,
    /// Jobs of background work (packing): a batch of only these does not count as
    /// activity, so the packer's own commits do not delay its next step.
    pub background_jobs: usize,
}

impl Batch {
    /// Records a change to `mailbox` of `user`, published to every subscription after the
    /// commit; `origin` names the one not to wake ([`Origin::NONE`]: wake all).
    pub fn announce(&mut self, user: UserId, mailbox: MailboxId, kind: ChangeKind, origin: Origin) {
        self.changes.push(Change {
            user,
            mailbox,
            kind,
            origin,
        });
    }
}

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&WriteTransaction, &mut Batch) -> (Completion, bool) + Send>;

#[derive(Clone)]
pub struct Writer {
    jobs: Sender<Job>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    pub fn start(shared: Arc<Shared>) -> Writer {
        let (tx, rx) = bounded::<Job>(QUEUE);
        let own = Writer {
            jobs: tx.clone(),
            thread: Arc::new(Mutex::new(None)),
        };
        let spawned = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(shared, rx, own));
        let handle = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                // Without a writer every write answers `Closed`; say why once.
                log::error!("cannot start the store writer thread: {e}");
                None
            }
        };
        Writer {
            jobs: tx,
            thread: Arc::new(Mutex::new(handle)),
        }
    }

    pub async fn submit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, &mut Batch) -> Result<T, StoreError> + Send + 'static,
    {
        let (done_tx, done_rx) = bounded::<Result<T, StoreError>>(1);
        let job: Job = Box::new(move |tx, batch| {
            let result = f(tx, batch);
            // A storage fault may have left the transaction half-written: abort all.
            let fatal = matches!(&result, Err(e) if e.is_fault());
            let completion: Completion = Box::new(move |commit| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) => Err(e),
                };
                let _ = done_tx.try_send(outcome);
            });
            (completion, fatal)
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        done_rx.recv().await.map_err(|_| StoreError::Closed)?
    }

    /// Stops taking jobs, lets the queued ones commit, and waits for the thread to end.
    pub fn close(&self) {
        self.jobs.close();
        let handle = self.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle
            && h.thread().id() != thread::current().id()
        {
            let _ = h.join();
        }
    }
}

/// The `META` key of the last committed batch's stamp.
const BATCH_STAMP: &str = "batch_stamp";

fn read_stamp(shared: &Shared) -> Result<u64, StoreError> {
    shared.with_db(|db| {
        let tx = db.begin_read()?;
        let meta = tx.open_table(super::schema::META)?;
        Ok(meta.get(BATCH_STAMP)?.map(|v| v.value()).unwrap_or(0))
    })
}

fn run(shared: Arc<Shared>, rx: Receiver<Job>, own: Writer) {
    let mut stamp = match read_stamp(&shared) {
        Ok(s) => s,
        Err(e) => {
            log::error!("store: cannot read the batch stamp: {e}");
            0
        }
    };
    while let Ok(first) = rx.recv_blocking() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let jobs_in_batch = jobs.len();
        let mut batch = Batch::default();
        let mut completions = Vec::with_capacity(jobs.len());
        if !shared.is_open()
            && let Err(e) = shared.reopen()
        {
            log::error!("store: cannot reopen the database: {e}");
        }
        let mut stamp_attempted = false;
        let outcome = shared.with_db(|db| {
            let mut tx = db.begin_write()?;
            tx.set_durability(Durability::Immediate)
                .map_err(|e| StoreError::Storage(e.to_string()))?;
            let mut fatal = false;
            for job in jobs.drain(..) {
                let (completion, job_fatal) = job(&tx, &mut batch);
                completions.push(completion);
                fatal |= job_fatal;
            }
            if fatal {
                tx.abort()?;
                return Err(StoreError::Storage("transaction aborted".into()));
            }
            if batch.undicted > 0 {
                super::blob::count_undicted(&tx, batch.undicted)?;
            }
            tx.open_table(super::schema::META)?
                .insert(BATCH_STAMP, stamp.wrapping_add(1))?;
            stamp_attempted = true;
            let ran = started.elapsed();
            tx.commit()?;
            log::trace!(
                "store: batch of {jobs_in_batch} jobs: {} us in jobs, {} us in commit",
                ran.as_micros(),
                started.elapsed().saturating_sub(ran).as_micros()
            );
            Ok(())
        });
        let mut outcome = outcome;
        // After an I/O error redb refuses all further transactions until the file is
        // opened again (which also repairs it). Do that now, so the next batch can succeed
        // once the cause (a full disk, say) is gone; then learn from the stamp whether the
        // failed commit reached the disk after all.
        if let Err(e) = &outcome {
            if let Err(e) = shared.reopen() {
                log::error!("store: cannot reopen the database: {e}");
            }
            let durable =
                stamp_attempted && read_stamp(&shared).ok() == Some(stamp.wrapping_add(1));
            if durable {
                log::warn!(
                    "store: commit reported an error ({e}) but the batch of {} jobs is durable",
                    completions.len()
                );
                outcome = Ok(());
            } else {
                log::error!(
                    "store: batch of {} jobs not committed: {e}",
                    completions.len()
                );
            }
        }
        if outcome.is_ok() {
            stamp = stamp.wrapping_add(1);
        }
        // Jobs never started (the transaction could not begin) still get an answer.
        for job in jobs {
            drop(job);
        }
        if outcome.is_ok() {
            if batch.background_jobs < jobs_in_batch {
                shared
                    .last_write_ms
                    .store(super::now_ms(), std::sync::atomic::Ordering::Relaxed);
            }
            if batch.users_changed {
                shared.users.invalidate();
            }
            // Published before the jobs are answered: a session that hears "done" and
            // asks what changed finds its own change there.
            for change in batch.changes.drain(..) {
                shared.feed.publish(change);
            }
        }
        for completion in completions {
            completion(outcome.clone());
        }
        // Background work is started after the answers, off their latency.
        if outcome.is_ok() {
            if batch.undicted > 0 {
                super::blob::maybe_train(&shared, &own);
            }
            if batch.loose_added || batch.freed {
                super::pack::maybe_pack(&shared, &own);
            }
            shared.fts.ring();
        }
    }
}
