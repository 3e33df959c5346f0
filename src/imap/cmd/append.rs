//! APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502, all or nothing), APPENDUID
//! (RFC 4315 §3), TRYCREATE, APPENDLIMIT (RFC 7889) and CATENATE (RFC 4469, the
//! message put together by `imap::cmd::catenate`). Messages go through the one
//! delivery path (`Pipeline::deliver_batch`, no trace headers).

use super::super::grammar::{AppendData, AppendMessage};
use super::super::response::{Code, ImapError, Status};
use super::super::session::{Outcome, Session, State};
use super::copy::uid_set;
use crate::contracts::{Target, Uid};
use crate::delivery::{Incoming, Outcome as Delivered};
use crate::store::{StoreError, SystemFlags};

/// Splits a flag list into system flags and keywords; `\Recent` cannot be set
/// (RFC 9051 §6.3.12), unknown `\` flags are refused.
pub fn split_flags(flags: &[String]) -> Result<(SystemFlags, Vec<String>), ImapError> {
    let mut sys = SystemFlags::default();
    let mut keywords: Vec<String> = Vec::new();
    for f in flags {
        if let Some(bit) = SystemFlags::bit_of(f) {
            sys.0 |= bit;
        } else if f.eq_ignore_ascii_case("\\Recent") {
            continue;
        } else if f.starts_with('\\') {
            return Err(ImapError::Bad(format!("Unknown system flag {f}")));
        } else if !keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            keywords.push(f.clone());
        }
    }
    Ok((sys, keywords))
}

impl Session {
    pub(in super::super) async fn append(
        &mut self,
        raw: &[u8],
        messages: Vec<AppendMessage>,
        _out: &mut Vec<u8>,
    ) -> Result<Outcome, ImapError> {
        let (user, user_name) = self.user()?;
        let name = self.mailbox_name(raw)?;
        let store = self.store().clone();
        // RFC 9051 §6.3.12: never create the target; TRYCREATE tells the client to. The
        // store looks the mailbox up in the transaction that appends (a missing one is
        // `Delivered::NoSuchMailbox` below), so only the name is checked here.
        let Ok(mailbox) = crate::store::canonical_mailbox(&name) else {
            return Err(ImapError::no(Code::TryCreate, "No such mailbox"));
        };
        let limit = self.append_limit();
        let mut items = Vec::with_capacity(messages.len());
        for m in messages {
            let (flags, keywords) = split_flags(&m.flags)?;
            // RFC 4469 §5: every CATENATE is resolved before anything is stored.
            let data = match m.data {
                AppendData::Literal(data) => data,
                AppendData::Catenate(parts) => self.catenate(parts, limit).await?,
            };
            if data.len() as u64 > limit {
                return Err(ImapError::no(Code::TooBig, "Message too big"));
            }
            items.push((
                Incoming {
                    raw: data,
                    mail_from: None,
                    trace: None,
                    internal_date: m.date,
                },
                vec![Target {
                    mailbox: Some(mailbox.clone()),
                    flags,
                    keywords,
                    ..Target::new(user, user_name.clone(), String::new())
                }],
            ));
        }
        let results = self.ctx.pipeline.deliver_batch(items).await;
        let mut stored = Vec::new();
        let mut failure: Option<ImapError> = None;
        for outcome in results.into_iter().flatten() {
            match outcome {
                Delivered::Stored(a) => stored.push(a),
                Delivered::Discarded => {}
                other => {
                    if failure.is_none() {
                        failure = Some(match other {
                            Delivered::TooBig => ImapError::no(Code::TooBig, "Message too big"),
                            Delivered::NoSuchMailbox => {
                                ImapError::no(Code::TryCreate, "No such mailbox")
                            }
                            // RFC 9208 §4.3: [OVERQUOTA], with the policy's reason.
                            Delivered::OverQuota { text, .. } => {
                                ImapError::No(Some(Code::OverQuota), text)
                            }
                            Delivered::Rejected { text, .. } => {
                                ImapError::No(Some(Code::Cannot), text)
                            }
                            Delivered::Failed(e) => e.into(),
                            // The account was deleted while this session ran.
                            Delivered::NoSuchUser => StoreError::NoSuchUser.into(),
                            Delivered::Loop | Delivered::Stored(_) | Delivered::Discarded => {
                                ImapError::Internal("unexpected delivery outcome".into())
                            }
                        });
                    }
                }
            }
        }
        if let Some(e) = failure {
            // MULTIAPPEND is all or nothing (RFC 3502 §6): take back what was stored.
            if let Some(first) = stored.first() {
                let uids = stored.iter().map(|a| a.uid).collect();
                if let Err(x) = store.expunge(first.mailbox, uids).await {
                    log::error!("imap: APPEND rollback failed: {x}");
                }
            }
            return Err(e);
        }
        if let State::Selected(_, view) = &self.state
            && stored.first().is_some_and(|a| a.mailbox == view.mailbox)
        {
            // PROTOCOL.md item 53: EXISTS before the tagged OK.
            self.dirty = true;
        }
        let Some(first) = stored.first() else {
            return Ok(Outcome::ok("APPEND completed"));
        };
        let uids: Vec<Uid> = stored.iter().map(|a| a.uid).collect();
        Ok(Outcome::Done(Status::ok("APPEND completed").with(
            Code::AppendUid {
                uidvalidity: first.uidvalidity,
                uids: uid_set(&uids),
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let (f, k) = split_flags(&["\\Seen".into(), "\\Recent".into(), "work".into()]).unwrap();
        assert!(f.has(SystemFlags::SEEN));
        assert_eq!(k, vec!["work"]);
        assert!(split_flags(&["\\Bogus".into()]).is_err());
    }
}
