//! COPY and MOVE by message sequence number: all or nothing *including* the messages
//! themselves. A non-UID COPY/MOVE that names a message another session has expunged
//! (the client still knows its number) must fail with `NO [EXPUNGEISSUED]` rather than
//! copy the rest (RFC 2180 §4.4.1, §4.4.2; RFC 5530). The check and the copy run in one
//! write transaction, so no expunge can slip in between.

use redb::ReadableTable;

use super::imap::{CopyOutcome, copy_in, expunge_in};
use super::schema::MESSAGES;
use super::{Origin, Store, StoreError};

/// What [`Store::copy_exact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExactCopy {
    /// Every UID was copied (and, for a move, expunged from the source).
    Done(CopyOutcome),
    /// At least one UID no longer exists; nothing was written.
    Missing,
}

impl Store {
    /// Copies (or, with `remove`, moves) exactly `uids` from `src` to `dst` (same user),
    /// or nothing when one of them is gone. An empty `uids` is `Missing`.
    pub async fn copy_exact(
        &self,
        src: u64,
        mut uids: Vec<u32>,
        dst: u64,
        remove: bool,
        origin: Origin,
    ) -> Result<ExactCopy, StoreError> {
        uids.sort_unstable();
        uids.dedup();
        self.write(move |tx, batch| {
            {
                let t = tx.open_table(MESSAGES)?;
                for &uid in &uids {
                    if t.get((src, uid))?.is_none() {
                        return Ok(ExactCopy::Missing);
                    }
                }
            }
            let Some(copied) = copy_in(tx, batch, src, &uids, dst)? else {
                return Ok(ExactCopy::Missing);
            };
            if remove {
                expunge_in(tx, batch, src, &copied.src_uids, origin)?;
            }
            Ok(ExactCopy::Done(copied))
        })
        .await
    }
}
