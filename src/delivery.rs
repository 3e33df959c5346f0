//! The one path every incoming message takes: LMTP, `nestbox deliver`, IMAP APPEND and
//! `nestbox import` all end here.
//!
//! normalise to CRLF -> size check -> hash + compress ->
//! per recipient: loop check, **filter hook**, **quota hook**, trace headers ->
//! one group-committed transaction -> per-recipient outcome. Callers acknowledge only
//! after this returns, so an acknowledgement always means "durable".

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::mime::header::{header_fields, unfold};
use crate::mime::header_block;
use crate::store::{
    AppendRequest, Appended, PreparedBlob, Store, StoreError, SystemFlags, TraceRecord,
};
use crate::util::to_crlf;

use crate::contracts::{
    Copy, FilterVerdict, HookMessage, Hooks, QuotaAction, QuotaQuery, QuotaVerdict, Source, Target,
};

/// The protocol a trace header names in its `with` clause (RFC 5321 §4.4, RFC 3848).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceProtocol {
    Lmtp,
    /// LMTP after STARTTLS (RFC 3848 §2).
    Lmtps,
    /// `nestbox deliver`.
    Local,
}

impl TraceProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceProtocol::Lmtp => "LMTP",
            TraceProtocol::Lmtps => "LMTPS",
            TraceProtocol::Local => "local",
        }
    }

    /// The delivery source a message carried by this protocol has.
    pub fn source(self) -> Source {
        match self {
            TraceProtocol::Lmtp | TraceProtocol::Lmtps => Source::Lmtp,
            TraceProtocol::Local => Source::Deliver,
        }
    }
}

/// How a message reached us, for trace headers (RFC 5321 §4.4).
#[derive(Debug, Clone)]
pub struct Trace {
    pub protocol: TraceProtocol,
    /// The LHLO name the client gave.
    pub helo: Option<String>,
    /// The client's address.
    pub peer: Option<String>,
}

/// A message and what came with it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub raw: Vec<u8>,
    /// The envelope sender; `Some("")` is the null sender `<>`.
    pub mail_from: Option<String>,
    /// With a trace, Return-Path, Delivered-To and Received are added per recipient.
    pub trace: Option<Trace>,
    /// IMAP INTERNALDATE; now when `None`.
    pub internal_date: Option<i64>,
}

/// What happened to one recipient's copy. The pipeline answers with where it went and
/// the store's error; the control socket sends the same outcome with the UID and the
/// failure's text (`Delivered` there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome<S = Appended, F = StoreError> {
    Stored(S),
    TooBig,
    NoSuchMailbox,
    /// The user was deleted after the delivery looked them up.
    NoSuchUser,
    /// The message already carries our Delivered-To for this recipient (a mail loop).
    Loop,
    /// A filter refused it; `permanent` selects 5xx over 4xx.
    Rejected {
        permanent: bool,
        text: String,
    },
    /// A filter dropped it on purpose: acknowledged, not stored.
    Discarded,
    /// The quota policy refused it; `text` is the policy's reason.
    OverQuota {
        permanent: bool,
        text: String,
    },
    /// The store failed; nothing was written for this recipient.
    Failed(F),
}

impl<S, F> Outcome<S, F> {
    /// The same outcome with what it stored and how it failed told another way.
    pub fn map<T, G>(
        self,
        stored: impl FnOnce(S) -> T,
        failed: impl FnOnce(F) -> G,
    ) -> Outcome<T, G> {
        match self {
            Outcome::Stored(s) => Outcome::Stored(stored(s)),
            Outcome::TooBig => Outcome::TooBig,
            Outcome::NoSuchMailbox => Outcome::NoSuchMailbox,
            Outcome::NoSuchUser => Outcome::NoSuchUser,
            Outcome::Loop => Outcome::Loop,
            Outcome::Rejected { permanent, text } => Outcome::Rejected { permanent, text },
            Outcome::Discarded => Outcome::Discarded,
            Outcome::OverQuota { permanent, text } => Outcome::OverQuota { permanent, text },
            Outcome::Failed(f) => Outcome::Failed(failed(f)),
        }
    }
}

/// The delivery pipeline; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    pub store: Store,
    hostname: String,
    max_size: u64,
    hooks: Arc<dyn Hooks>,
}

struct Prepared {
    raw: Arc<Vec<u8>>,
    blob: Arc<PreparedBlob>,
}

impl Pipeline {
    pub fn new(store: Store, hostname: &str, max_size: u64, hooks: Arc<dyn Hooks>) -> Pipeline {
        Pipeline {
            store,
            hostname: hostname.to_string(),
            max_size,
            hooks,
        }
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// The hooks deliveries run (for `nestbox plugin list`).
    pub fn hooks(&self) -> &Arc<dyn Hooks> {
        &self.hooks
    }

    /// Delivers one message to every target; one outcome per target, in order.
    pub async fn deliver(&self, incoming: Incoming, targets: Vec<Target>) -> Vec<Outcome> {
        self.deliver_batch(vec![(incoming, targets)])
            .await
            .pop()
            .unwrap_or_default()
    }

    /// Delivers several messages: prepared in parallel on the blocking pool, then stored
    /// in one transaction in the given order (so UIDs follow it, as an import needs).
    /// One outcome list per message, one outcome per target.
    pub async fn deliver_batch(&self, items: Vec<(Incoming, Vec<Target>)>) -> Vec<Vec<Outcome>> {
        let outcomes = self.deliver_batch_from(items, None).await;
        for o in outcomes.iter().flatten() {
            // Stored or discarded by a filter (both acknowledged) is accepted.
            crate::metrics::delivery(match o {
                Outcome::Stored(_) | Outcome::Discarded => crate::metrics::Delivery::Accepted,
                _ => crate::metrics::Delivery::Refused,
            });
        }
        outcomes
    }

    /// [`Pipeline::deliver_batch`] for `nestbox import` (hooks see source `import`).
    pub async fn import_batch(&self, items: Vec<(Incoming, Vec<Target>)>) -> Vec<Vec<Outcome>> {
        self.deliver_batch_from(items, Some(Source::Import)).await
    }

    async fn deliver_batch_from(
        &self,
        items: Vec<(Incoming, Vec<Target>)>,
        source: Option<Source>,
    ) -> Vec<Vec<Outcome>> {
        let max = self.max_size;
        // Prepare a few at a time: each holds the message, its CRLF copy and a zstd
        // context, so preparing a whole import batch at once would cost memory, not time.
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        let mut prepared = Vec::with_capacity(items.len());
        let mut rest = Vec::with_capacity(items.len());
        let mut pending = Vec::with_capacity(parallel);
        for (mut incoming, targets) in items {
            let raw = std::mem::take(&mut incoming.raw);
            let strip = incoming.trace.is_some();
            let store = self.store.clone();
            rest.push((incoming, targets));
            // A small message is prepared where it is (tens of microseconds of CPU: less
            // than the trip to the blocking pool and back); nothing may be pending ahead
            // of it, so results keep the order of `items`.
            if raw.len() <= PREPARE_INLINE_MAX && pending.is_empty() {
                prepared.push(prepare(&store, raw, strip, max));
                continue;
            }
            pending.push(smol::unblock(move || prepare(&store, raw, strip, max)));
            if pending.len() >= parallel {
                for job in pending.drain(..) {
                    prepared.push(job.await);
                }
            }
        }
        for job in pending {
            prepared.push(job.await);
        }
        let now = crate::store::now();
        let mut outcomes: Vec<Vec<Option<Outcome>>> = Vec::with_capacity(rest.len());
        let mut requests = Vec::new();
        let mut slots: Vec<(usize, usize)> = Vec::new();
        for (m, (result, (incoming, targets))) in prepared.into_iter().zip(rest).enumerate() {
            let n = targets.len();
            let prepared = match result {
                Ok(Some(p)) => p,
                Ok(None) => {
                    outcomes.push(vec![Some(Outcome::TooBig); n]);
                    continue;
                }
                Err(e) => {
                    log::error!("delivery: cannot prepare message: {e}");
                    outcomes.push(vec![Some(Outcome::Failed(e)); n]);
                    continue;
                }
            };
            let source = source.unwrap_or(match &incoming.trace {
                Some(t) => t.protocol.source(),
                None => Source::Append,
            });
            let job = Decide {
                hooks: self.hooks.clone(),
                store: self.store.clone(),
                hostname: self.hostname.clone(),
                prepared,
                incoming,
                targets,
                now,
                source,
            };
            // Plugins run off the reactor; with none, deciding is cheap enough inline.
            let (mine, mut reqs) = if self.hooks.active() {
                smol::unblock(move || job.run()).await
            } else {
                job.run()
            };
            for (i, req) in reqs.drain(..) {
                slots.push((m, i));
                requests.push(req);
            }
            outcomes.push(mine);
        }
        if !requests.is_empty() {
            let results = match self.store.append_many(requests).await {
                Ok(results) => results
                    .into_iter()
                    .map(|r| match r {
                        Ok(a) => Outcome::Stored(a),
                        Err(StoreError::NoSuchMailbox) => Outcome::NoSuchMailbox,
                        Err(StoreError::NoSuchUser) => Outcome::NoSuchUser,
                        Err(e) => Outcome::Failed(e),
                    })
                    .collect(),
                Err(e) => {
                    log::error!("delivery: store failed: {e}");
                    vec![Outcome::Failed(e); slots.len()]
                }
            };
            for ((m, i), o) in slots.into_iter().zip(results) {
                if let Some(mine) = outcomes.get_mut(m) {
                    merge(mine, i, o);
                }
            }
        }
        outcomes
            .into_iter()
            .map(|mine| {
                mine.into_iter()
                    .map(|o| o.unwrap_or(Outcome::Failed(StoreError::Closed)))
                    .collect()
            })
            .collect()
    }
}

/// Per-recipient decisions for one prepared message: loop check, filter and quota hooks,
/// trace headers. Runs on the blocking pool when hooks are active.
struct Decide {
    hooks: Arc<dyn Hooks>,
    store: Store,
    hostname: String,
    prepared: Prepared,
    incoming: Incoming,
    targets: Vec<Target>,
    now: i64,
    source: Source,
}

impl Decide {
    /// Outcomes decided here, and the store requests with their target index.
    fn run(self) -> (Vec<Option<Outcome>>, Vec<(usize, AppendRequest)>) {
        let Decide {
            hooks,
            store,
            hostname,
            prepared,
            incoming,
            targets,
            now,
            source,
        } = self;
        let mut mine: Vec<Option<Outcome>> = vec![None; targets.len()];
        let mut requests = Vec::new();
        let internal_date = incoming.internal_date.unwrap_or(now);
        let headers = header_block(&prepared.raw);
        for (i, mut target) in targets.into_iter().enumerate() {
            if incoming.trace.is_some() && has_delivered_to(headers, &target.address) {
                set(&mut mine, i, Outcome::Loop);
                continue;
            }
            let trace = incoming.trace.as_ref().map(|t| TraceRecord {
                format: 1,
                protocol: t.protocol.as_str().to_string(),
                delivered_to: target.address.clone(),
                helo: t.helo.clone(),
                peer: t.peer.clone(),
                by: hostname.clone(),
            });
            let prefix = trace
                .as_ref()
                .map(|t| {
                    t.render(
                        incoming.mail_from.as_deref(),
                        internal_date,
                        &prepared.blob.hash,
                    )
                })
                .unwrap_or_default();
            let msg = HookMessage {
                raw: &prepared.raw,
                prefix: &prefix,
                mail_from: incoming.mail_from.as_deref(),
                source,
                store: Some(&store),
            };
            let requested = target.mailbox.clone();
            // HOOK: filter plugins run here, per recipient.
            let copies = match hooks.filter(&msg, &mut target) {
                FilterVerdict::Accept => vec![Copy {
                    mailbox: None,
                    create: false,
                    flags: SystemFlags(0),
                    keywords: Vec::new(),
                }],
                FilterVerdict::Copies(copies) => copies,
                FilterVerdict::Reject { permanent, text } => {
                    set(&mut mine, i, Outcome::Rejected { permanent, text });
                    continue;
                }
                FilterVerdict::Discard => {
                    set(&mut mine, i, Outcome::Discarded);
                    continue;
                }
            };
            let size = prefix.len() as u64 + prepared.blob.raw_len;
            // Ids an import keeps (UID, POP3 UIDL) go with the copy filed where the
            // import asked, and only if a filter did not re-target the recipient.
            let mut kept = target.kept.take().filter(|_| target.mailbox == requested);
            let mut stores = Vec::with_capacity(copies.len());
            let mut denied = None;
            for copy in copies {
                let (mailbox, create, copy_kept) = match copy.mailbox {
                    Some(m) => (m, copy.create || target.create_mailbox, None),
                    None => (
                        target.mailbox.clone().unwrap_or_else(|| "INBOX".into()),
                        target.create_mailbox,
                        kept.take(),
                    ),
                };
                // HOOK: the quota policy runs here, with the final size and target.
                let query = QuotaQuery {
                    user: target.user,
                    user_name: &target.user_name,
                    mailbox: &mailbox,
                    action: QuotaAction::from_source(source),
                    size,
                    count: 1,
                };
                if let QuotaVerdict::Deny { permanent, text } = hooks.quota(&store, &query) {
                    denied = Some(Outcome::OverQuota { permanent, text });
                    break;
                }
                let mut keywords = target.keywords.clone();
                for k in copy.keywords {
                    if !keywords.iter().any(|t| t.eq_ignore_ascii_case(&k)) {
                        keywords.push(k);
                    }
                }
                stores.push((
                    i,
                    AppendRequest {
                        user: target.user,
                        mailbox,
                        create,
                        blob: prepared.blob.clone(),
                        trace: trace.clone(),
                        flags: SystemFlags(target.flags.0 | copy.flags.0),
                        keywords,
                        internal_date,
                        envelope_from: incoming.mail_from.clone(),
                        kept: copy_kept,
                    },
                ));
            }
            match denied {
                // One copy over quota refuses the recipient: no copy is stored.
                Some(o) => set(&mut mine, i, o),
                None => requests.extend(stores),
            }
        }
        (mine, requests)
    }
}

/// The largest message prepared on the session's thread instead of the blocking pool:
/// normalising, hashing and compressing (zstd level 3) 64 KiB take about 0.2 ms here, the
/// usual 4 KiB message some 30 us, which is what a trip to the pool and back costs.
const PREPARE_INLINE_MAX: usize = 64 * 1024;

/// Normalises, hashes and compresses one message; `None` when it is over `max`. Its
/// MIME structure is not computed here: it is parsed when a client asks for it.
fn prepare(
    store: &Store,
    raw: Vec<u8>,
    strip_return_path: bool,
    max: u64,
) -> Result<Option<Prepared>, StoreError> {
    let mut raw = to_crlf(raw);
    if strip_return_path {
        raw = strip_header(raw, b"return-path");
    }
    if raw.len() as u64 > max {
        return Ok(None);
    }
    let blob = store.codec().prepare(&raw)?;
    Ok(Some(Prepared {
        raw: Arc::new(raw),
        blob: Arc::new(blob),
    }))
}

fn set(outcomes: &mut [Option<Outcome>], i: usize, o: Outcome) {
    if let Some(slot) = outcomes.get_mut(i) {
        *slot = Some(o);
    }
}

/// Records the store's result for one copy of recipient `i`: with several copies the
/// recipient's outcome is the first copy's, unless a later copy failed.
fn merge(outcomes: &mut [Option<Outcome>], i: usize, o: Outcome) {
    if let Some(slot) = outcomes.get_mut(i) {
        match slot {
            Some(Outcome::Stored(_)) if matches!(o, Outcome::Stored(_)) => {}
            Some(Outcome::Stored(_)) | None => *slot = Some(o),
            Some(_) => {}
        }
    }
}

/// Lines of a header block with their folded continuations: (start, end) offsets.
/// Removes every occurrence of a header field (with its continuation lines); every
/// other byte is kept as it was.
fn strip_header(raw: Vec<u8>, name: &[u8]) -> Vec<u8> {
    let header = header_block(&raw);
    let base = header.as_ptr() as usize;
    let cuts: Vec<(usize, usize)> = header_fields(header)
        .filter(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| {
            let start = (f.raw.as_ptr() as usize).saturating_sub(base);
            (start, start.saturating_add(f.raw.len()))
        })
        .collect();
    if cuts.is_empty() {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    for (start, end) in cuts {
        out.extend_from_slice(raw.get(at..start).unwrap_or_default());
        at = end;
    }
    out.extend_from_slice(raw.get(at..).unwrap_or_default());
    out
}

/// Whether the header block already has `Delivered-To: <address>` (loop detection).
fn has_delivered_to(headers: &[u8], address: &str) -> bool {
    header_fields(headers).any(|f| {
        f.name.eq_ignore_ascii_case(b"delivered-to")
            && String::from_utf8_lossy(&unfold(f.value))
                .trim_matches(['<', '>'])
                .eq_ignore_ascii_case(address)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_return_path_with_folding() {
        let raw = b"Return-Path: <a@b>\r\nSubject: x\r\nreturn-path:\r\n <c@d>\r\n\r\nReturn-Path: body\r\n";
        let out = strip_header(raw.to_vec(), b"return-path");
        assert_eq!(out, b"Subject: x\r\n\r\nReturn-Path: body\r\n");
    }

    #[test]
    fn strip_leaves_clean_message_alone() {
        let raw = b"Subject: x\r\n\r\nbody".to_vec();
        assert_eq!(strip_header(raw.clone(), b"return-path"), raw);
    }

    #[test]
    fn delivered_to_loop_detection() {
        let h = b"Delivered-To: Alice@example.org\r\nSubject: x\r\n\r\n";
        assert!(has_delivered_to(h, "alice@example.org"));
        assert!(!has_delivered_to(h, "bob@example.org"));
        assert!(!has_delivered_to(
            b"X-Delivered-To: alice@example.org\r\n\r\n",
            "alice@example.org"
        ));
    }
}
