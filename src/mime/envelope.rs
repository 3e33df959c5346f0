//! ENVELOPE fields (RFC 3501 §7.4.2, RFC 9051 §7.5.2) from a message header block.

use serde::{Deserialize, Serialize};

use super::Budget;
use super::address::{Address, parse_address_list};
use super::header::{header_fields, unfold};

/// The ten ENVELOPE fields of one message, in wire order (RFC 3501 §7.4.2).
///
/// Each field comes from the *first* occurrence of its header. `None` means the
/// header is absent (sent as NIL). Strings are the raw value, unfolded and trimmed,
/// RFC 2047 encoded-words left encoded; they may hold 8-bit bytes. An address header
/// that is present but yields no address (empty or unparseable) is `Some(vec![])`.
///
/// Not applied here, on purpose: RFC 3501 §7.4.2 says Sender and Reply-To default to
/// From when absent or empty; the ENVELOPE encoder does that (treat `None` and
/// `Some(empty)` alike), so the stored value stays what the message says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub date: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub from: Option<Vec<Address>>,
    pub sender: Option<Vec<Address>>,
    pub reply_to: Option<Vec<Address>>,
    pub to: Option<Vec<Address>>,
    pub cc: Option<Vec<Address>>,
    pub bcc: Option<Vec<Address>>,
    pub in_reply_to: Option<Vec<u8>>,
    pub message_id: Option<Vec<u8>>,
}

/// Builds the envelope from a header block (blank line optional).
pub(crate) fn parse_envelope(header: &[u8], budget: &mut Budget) -> Envelope {
    let mut env = Envelope::default();
    for field in header_fields(header) {
        let name = field.name;
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        let text = |slot: &mut Option<Vec<u8>>| {
            if slot.is_none() {
                *slot = Some(unfold(field.value));
            }
        };
        let mut list = |slot: &mut Option<Vec<Address>>| {
            if slot.is_none() {
                *slot = Some(parse_address_list(&unfold(field.value), budget));
            }
        };
        if is("date") {
            text(&mut env.date);
        } else if is("subject") {
            text(&mut env.subject);
        } else if is("from") {
            list(&mut env.from);
        } else if is("sender") {
            list(&mut env.sender);
        } else if is("reply-to") {
            list(&mut env.reply_to);
        } else if is("to") {
            list(&mut env.to);
        } else if is("cc") {
            list(&mut env.cc);
        } else if is("bcc") {
            list(&mut env.bcc);
        } else if is("in-reply-to") {
            text(&mut env.in_reply_to);
        } else if is("message-id") {
            text(&mut env.message_id);
        }
    }
    env
}
