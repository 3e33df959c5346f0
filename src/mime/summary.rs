//! What SORT and THREAD read from a message's header (RFC 5256 §3, RFC 5957 §3): a
//! compact record of the fields they order and group by, made once per message by the
//! full-text indexer (`store::fts`, kept with the index) or when a session reads a
//! header the index does not cover yet (`imap::cmd`); and [`sent_date`], the reader of
//! the Date field SEARCH shares.

use super::{Address, header_fields, unfold};

/// What SORT and THREAD read from one message's header. Strings that are compared are
/// kept upper-cased in ASCII: the `i;ascii-casemap` collation (RFC 4790 §9.2, the
/// default of RFC 5256 §2.2) is then a plain byte comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderData {
    /// The Date header as UTC seconds; `None` when absent or unreadable (RFC 5256 §3:
    /// the INTERNALDATE is used then).
    pub date: Option<i64>,
    /// The base subject (RFC 5256 §2.1) of the decoded Subject, ASCII upper-cased.
    pub subject: String,
    /// Whether extracting the base subject removed a reply/forward marker.
    pub reply: bool,
    /// `addr-mailbox` of the first From / To / Cc address (RFC 5256 §3), raw, ASCII
    /// upper-cased.
    pub from: Vec<u8>,
    pub to: Vec<u8>,
    pub cc: Vec<u8>,
    /// RFC 5957 §3: the decoded display name of the first From / To address, or its
    /// `mailbox@host` when it has none; ASCII upper-cased.
    pub display_from: String,
    pub display_to: String,
    /// What THREAD=REFERENCES links by; `None` when not read (the index's records
    /// keep them only with `store.full_text_index: Full`, for the disk).
    pub ids: Option<ThreadIds>,
}

/// The ids THREAD=REFERENCES links messages by (RFC 5256 §3 REFERENCES).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThreadIds {
    /// The Message-ID (`<...>` included); `None` when absent or not a msg-id.
    pub message_id: Option<Vec<u8>>,
    /// The msg-ids of References, or else the first of In-Reply-To (step 1).
    pub references: Vec<Vec<u8>>,
}

/// The `<...>` msg-ids in a header value, in order (RFC 5322 §3.6.4; comments and
/// phrases between them are skipped).
fn msg_ids(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.iter().position(|&b| b == b'<') {
        let Some(after) = rest.get(start..) else {
            break;
        };
        let Some(len) = after.iter().position(|&b| b == b'>') else {
            break;
        };
        let id: Vec<u8> = after
            .get(..=len)
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        // `<>` and ids without `@` are not msg-ids.
        if id.len() > 2 && id.contains(&b'@') {
            out.push(id);
        }
        rest = after.get(len.saturating_add(1)..).unwrap_or_default();
    }
    out
}

/// The first address of a list that is not a group marker (RFC 3501 §7.4.2: group
/// start and end have no host).
fn first_address(list: Option<&Vec<Address>>) -> Option<&Address> {
    list?.iter().find(|a| a.host.is_some())
}

fn display(a: Option<&Address>) -> String {
    let Some(a) = a else {
        return String::new();
    };
    if let Some(name) = &a.name {
        let decoded = super::header::decoded(name);
        let trimmed = decoded.trim();
        if !trimmed.is_empty() {
            return trimmed.to_string();
        }
    }
    let mut s = String::from_utf8_lossy(a.mailbox.as_deref().unwrap_or_default()).into_owned();
    if let Some(host) = &a.host {
        s.push('@');
        s.push_str(&String::from_utf8_lossy(host));
    }
    s
}

/// When a message says it was written: its Date field read as a date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentDate {
    /// The calendar date as written, in the sender's zone (what SEARCH SENTBEFORE, SENTON
    /// and SENTSINCE compare: RFC 3501 §6.4.4 disregards time and zone).
    pub year: i64,
    pub month: u32,
    pub day: u32,
    /// UTC seconds (what SORT DATE compares, RFC 5256 §3).
    pub unix: i64,
}

/// Reads a Date field's value (RFC 5322 §3.3, with the obsolete forms of §4.3: two-
/// and three-digit years, named zones); `None` when it is not a date. A date-time
/// without a zone, which old and broken mailers write (`Fri, 23 Aug 2002 19:27:52`), is
/// read as `-0000` (§3.3: UT, the local zone unknown), as Dovecot reads it, rather than
/// as no date at all, which would put the message at its INTERNALDATE for SORT and
/// SEARCH. The one reader of the Date field: SEARCH SENT* and SORT DATE both use it.
pub fn sent_date(value: &[u8]) -> Option<SentDate> {
    let text = String::from_utf8_lossy(&unfold(value)).into_owned();
    let text = text.trim();
    let mut parsed = mail_parser::DateTime::parse_rfc822(text)
        .or_else(|| mail_parser::DateTime::parse_rfc822(&format!("{text} -0000")))?;
    // RFC 5322 §4.3: a three-digit year is 1900 plus it. Mailers that printed the year
    // as "years since 1900" wrote 2002 as `102` or `0102`.
    if (100..1000).contains(&parsed.year) {
        parsed.year = parsed.year.saturating_add(1900);
    }
    // What the parser makes of a field in another format (`2002/09/14 Sat 13:06:03
    // GMT`) can be out of range (day 210): that is no date.
    if !parsed.is_valid() {
        return None;
    }
    Some(SentDate {
        year: i64::from(parsed.year),
        month: u32::from(parsed.month),
        day: u32::from(parsed.day),
        unix: parsed.to_timestamp(),
    })
}

impl HeaderData {
    /// Reads a header block.
    pub fn parse(header: &[u8]) -> HeaderData {
        let env = super::envelope(header);
        let date = env.date.as_deref().and_then(sent_date).map(|d| d.unix);
        let (subject, reply) = match &env.subject {
            Some(s) => super::subject::base_subject(&super::header::decoded(s)),
            None => (String::new(), false),
        };
        let subject = subject.to_ascii_uppercase();
        let mailbox = |l: Option<&Vec<Address>>| {
            first_address(l)
                .and_then(|a| a.mailbox.as_deref())
                .unwrap_or_default()
                .to_ascii_uppercase()
        };
        let mut references = Vec::new();
        for f in header_fields(header) {
            if f.name.eq_ignore_ascii_case(b"references") {
                references = msg_ids(&unfold(f.value));
                break;
            }
        }
        if references.is_empty()
            && let Some(first) = env
                .in_reply_to
                .as_deref()
                .and_then(|v| msg_ids(v).into_iter().next())
        {
            references.push(first);
        }
        HeaderData {
            date,
            subject,
            reply,
            from: mailbox(env.from.as_ref()),
            to: mailbox(env.to.as_ref()),
            cc: mailbox(env.cc.as_ref()),
            display_from: display(first_address(env.from.as_ref())).to_ascii_uppercase(),
            display_to: display(first_address(env.to.as_ref())).to_ascii_uppercase(),
            ids: Some(ThreadIds {
                message_id: env
                    .message_id
                    .as_deref()
                    .and_then(|v| msg_ids(v).into_iter().next()),
                references,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sent_date_reads_rfc5322_obsolete_and_zoneless_dates() {
        type Want = Option<(i64, u32, u32, i64)>;
        let cases: &[(&[u8], Want)] = &[
            (
                b"Mon, 1 Jan 2024 10:00:00 +0100",
                Some((2024, 1, 1, 1_704_099_600)),
            ),
            // Folded, two-digit year, named zone (RFC 5322 §4.3).
            (
                b"Tue, 27 Aug 02\r\n 22:26:56 EDT",
                Some((2002, 8, 27, 1_030_501_616)),
            ),
            // No zone at all: UT (-0000), the calendar date as written.
            (
                b"Fri, 23 Aug 2002 19:27:52 ",
                Some((2002, 8, 23, 1_030_130_872)),
            ),
            // A three-digit year, as written by mailers that print years since 1900.
            (
                b"Thu, 18 Jul 0102 19:51:35 -0100",
                Some((2002, 7, 18, 1_027_025_495)),
            ),
            (b"yesterday", None),
            // Another format, which the parser reads out of range.
            (b"2002/09/14 Sat 13:06:03 GMT", None),
            // Before 1900: not a date a message was written on.
            (b"Fri, 1 Feb 1850 10:00:00 +0000", None),
            (b"", None),
        ];
        for (value, want) in cases {
            let got = sent_date(value).map(|d| (d.year, d.month, d.day, d.unix));
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn header_data_reads_what_sort_and_thread_need() {
        let h = HeaderData::parse(
            b"From: \"Doe, Jane\" <jane@example.org>\r\n\
              To: undisclosed:;, bob@example.net\r\n\
              Subject: =?UTF-8?Q?Re:_Caf=C3=A9?=\r\n\
              Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n\
              Message-ID: <a@x>\r\n\
              In-Reply-To: <p@x> (comment)\r\n\r\n",
        );
        assert_eq!(h.date, Some(1_704_099_600));
        assert_eq!((h.subject.as_str(), h.reply), ("CAFé", true));
        assert_eq!(h.from, b"JANE");
        assert_eq!(h.to, b"BOB");
        assert_eq!(h.display_from, "DOE, JANE");
        assert_eq!(h.display_to, "BOB@EXAMPLE.NET");
        let ids = h.ids.unwrap();
        assert_eq!(ids.message_id.as_deref(), Some(&b"<a@x>"[..]));
        assert_eq!(ids.references, vec![b"<p@x>".to_vec()]);
        let h = HeaderData::parse(b"References: <r1@x> <r2@x>\r\nIn-Reply-To: <p@x>\r\n\r\n");
        assert_eq!(
            h.ids.unwrap().references,
            vec![b"<r1@x>".to_vec(), b"<r2@x>".to_vec()]
        );
        assert_eq!(h.date, None);
    }
}
