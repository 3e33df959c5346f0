//! The LMTP session state machine (RFC 2033 §4; RFC 5321 §3.3, §4.1.1, §4.1.4).
//!
//! States: `Greeting` -(LHLO)-> `Ready` -(MAIL)-> `Mail` -(accepted RCPT)-> `Rcpt`
//! -(DATA)-> `Data` -([`Session::data_done`])-> `Delivering`
//! -([`Session::delivery_replies`])-> `Ready`. Each state owns the envelope built so far.
//! A command in the wrong state gets `503 5.5.1` and changes nothing.
//!
//! The driver's loop, for each framed line:
//! `match session.handle(parse_command(line))`:
//! - [`Step::Reply`]: write it;
//! - [`Step::CheckRecipient`]: look the mailbox up, then write
//!   `session.recipient_result(mailbox, check)`;
//! - [`Step::StartData`]: write the 354, run a [`super::DataDecoder`] over the following
//!   input, then `data_done`, deliver each recipient's copy durably, and write
//!   `delivery_replies` (RFC 2033 §4.2: a 250 only after the copy is stored);
//! - [`Step::Close`]: write it and close;
//! - [`Step::StartTls`]: write the 220, discard buffered input, handshake, then
//!   [`Session::tls_started`] (RFC 3207 §4.2).

use super::grammar::{Command, MailParams, Mailbox, ReversePath, SyntaxError};
use super::reply::Reply;

/// What the driver does after [`Session::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this reply and read the next command.
    Reply(Reply),
    /// Look this recipient up (user exists, quota) and pass the answer to
    /// [`Session::recipient_result`]; its return value is the RCPT reply.
    CheckRecipient(Mailbox),
    /// Send this `354` and decode the message with a [`super::DataDecoder`].
    StartData(Reply),
    /// Send this reply (`221`) and close the connection (RFC 5321 §4.1.1.10).
    Close(Reply),
    /// Send this `220`, discard any buffered input, run the TLS handshake, then call
    /// [`Session::tls_started`] (RFC 3207 §4, §4.2). If the handshake fails, close.
    StartTls(Reply),
}

/// The driver's verdict on one RCPT (RFC 5321 §4.1.1.3, RFC 3463).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientCheck {
    /// Deliverable: `250 2.1.5`.
    Ok,
    /// No such user: `550 5.1.1`.
    UnknownUser,
    /// Mailbox over quota: `452 4.2.2`.
    OverQuota,
    /// Lookup failed for now: `451 4.3.0`.
    TempFail,
    /// A plugin's refusal. `code` must be 4xx or 5xx, else `451 4.3.0` is sent.
    Rejected {
        code: u16,
        enhanced: (u8, u16, u16),
        text: String,
    },
}

/// The result of delivering one accepted recipient's copy (RFC 2033 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// Stored durably (committed): `250 2.1.5`.
    Delivered,
    /// The user vanished between RCPT and delivery: `550 5.1.1`.
    UnknownUser,
    /// The message exceeds a limit: `552 5.3.4`.
    TooBig,
    /// Over quota: `452 4.2.2`.
    OverQuota,
    /// Storage error: `451 4.3.0`.
    StorageFailure,
    /// Out of disk space: `452 4.3.1`.
    DiskFull,
    /// A plugin's refusal. `code` must be 4xx or 5xx, else `451 4.3.0` is sent.
    Rejected {
        code: u16,
        enhanced: (u8, u16, u16),
        text: String,
    },
}

/// A complete envelope, handed to the driver by [`Session::data_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The LHLO name, for the `Received:` header (RFC 5321 §4.4).
    pub client: String,
    /// The reverse-path, for `Return-Path:` (RFC 5321 §4.4).
    pub mail_from: ReversePath,
    /// MAIL parameters (`SIZE`, `BODY`).
    pub params: MailParams,
    /// Accepted recipients in RCPT order, duplicates included (RFC 2033 §4.2).
    pub recipients: Vec<Mailbox>,
    /// The message passed the size limit: nothing is to be delivered, every recipient
    /// gets `552 5.3.4`.
    pub too_big: bool,
}

/// The envelope under construction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Envelope {
    from: ReversePath,
    params: MailParams,
    accepted: Vec<Mailbox>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Before LHLO.
    Greeting,
    /// After LHLO, no transaction.
    Ready,
    /// After MAIL, no accepted recipient yet.
    Mail(Envelope),
    /// At least one accepted recipient.
    Rcpt(Envelope),
    /// After the 354, while the driver decodes the message.
    Data(Envelope),
    /// After `data_done`, waiting for `delivery_replies` with this many outcomes.
    Delivering { count: usize, too_big: bool },
}

/// One LMTP connection's protocol state.
#[derive(Debug)]
pub struct Session {
    hostname: String,
    max_size: u64,
    max_recipients: usize,
    client: String,
    state: State,
    /// STARTTLS is configured and possible on this connection (TCP, not yet TLS).
    starttls: bool,
    tls: bool,
}

fn bad_sequence(text: &str) -> Reply {
    Reply::new(503, (5, 5, 1), text)
}

/// A plugin's code, or `451 4.3.0` if it is not 4xx/5xx; the enhanced class follows the
/// code's class so the two never disagree (RFC 3463 §2).
fn custom(code: u16, enhanced: (u8, u16, u16), text: &str) -> Reply {
    match code {
        400..=499 => Reply::new(code, (4, enhanced.1, enhanced.2), text),
        500..=599 => Reply::new(code, (5, enhanced.1, enhanced.2), text),
        _ => Reply::new(451, (4, 3, 0), "temporary failure"),
    }
}

impl Session {
    /// A session for one connection. `max_size` is the message size limit in octets
    /// (advertised as `SIZE`, RFC 1870 §4; must be > 0, since `SIZE 0` means "no
    /// limit"); `max_recipients` caps RCPTs per transaction (RFC 5321 §4.5.3.1.8
    /// requires accepting at least 100).
    pub fn new(hostname: &str, max_size: u64, max_recipients: usize) -> Self {
        Self {
            hostname: hostname.to_owned(),
            max_size,
            max_recipients,
            client: String::new(),
            state: State::Greeting,
            starttls: false,
            tls: false,
        }
    }

    /// Offers STARTTLS (RFC 3207) until TLS is active.
    pub fn with_starttls(mut self, offer: bool) -> Self {
        self.starttls = offer;
        self
    }

    /// After a successful handshake: the session starts over, as if just greeted, and a
    /// new LHLO is required (RFC 3207 §4.2: discard all knowledge from the client).
    /// STARTTLS is no longer offered.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.client.clear();
        self.state = State::Greeting;
    }

    /// Whether the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// STARTTLS (RFC 3207 §4): `220 2.0.0` then the handshake. Refused when not offered
    /// (`502`), when TLS is already active (`503`), before LHLO or inside a transaction
    /// (`503`, as Postfix does).
    fn starttls(&mut self) -> Step {
        if self.tls {
            return Step::Reply(bad_sequence("TLS already active"));
        }
        if !self.starttls {
            return Step::Reply(Reply::new(502, (5, 5, 1), "STARTTLS not available"));
        }
        match self.state {
            State::Greeting => Step::Reply(bad_sequence("send LHLO first")),
            State::Ready => Step::StartTls(Reply::new(220, (2, 0, 0), "Ready to start TLS")),
            _ => Step::Reply(bad_sequence("finish or RSET the transaction first")),
        }
    }

    /// `220 <host> LMTP nestbox ready` (RFC 2033 §4, RFC 5321 §4.2; no enhanced code,
    /// RFC 2034 §4).
    pub fn greeting(&self) -> Reply {
        Reply::plain(220, vec![format!("{} LMTP nestbox ready", self.hostname)])
    }

    /// Answers one parsed command.
    pub fn handle(&mut self, cmd: Result<Command, SyntaxError>) -> Step {
        let cmd = match cmd {
            Ok(cmd) => cmd,
            Err(e) => return Step::Reply(e.into()),
        };
        match cmd {
            Command::Lhlo { domain } => Step::Reply(self.lhlo(domain)),
            // RFC 2033 §4.1: an SMTP client talking to us by mistake must fail.
            Command::Helo | Command::Ehlo => Step::Reply(Reply::new(
                500,
                (5, 5, 1),
                "this is an LMTP server; use LHLO (RFC 2033)",
            )),
            Command::Mail { from, params } => Step::Reply(self.mail(from, params)),
            Command::Rcpt { to } => self.rcpt(to),
            Command::Data => self.data(),
            // RFC 5321 §4.1.1.5: RSET drops the transaction, not the LHLO.
            Command::Rset => {
                self.reset();
                Step::Reply(Reply::new(250, (2, 0, 0), "OK"))
            }
            // RFC 5321 §4.1.1.9.
            Command::Noop => Step::Reply(Reply::new(250, (2, 0, 0), "OK")),
            // RFC 5321 §3.5.3: 252 when we do not verify.
            Command::Vrfy => Step::Reply(Reply::new(
                252,
                (2, 0, 0),
                "cannot VRFY user; send the message and delivery will be attempted",
            )),
            // RFC 5321 §4.1.1.8.
            Command::Help => Step::Reply(Reply::new(
                214,
                (2, 0, 0),
                "commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP (RFC 2033)",
            )),
            // RFC 5321 §4.1.1.10.
            Command::StartTls => self.starttls(),
            Command::Quit => Step::Close(Reply::new(
                221,
                (2, 0, 0),
                format!("{} closing connection", self.hostname),
            )),
        }
    }

    /// Drops any transaction; keeps the LHLO state.
    fn reset(&mut self) {
        if self.state != State::Greeting {
            self.state = State::Ready;
        }
    }

    /// LHLO (RFC 2033 §4.1): like EHLO, it may be repeated and resets the transaction
    /// (RFC 5321 §4.1.4). Advertises PIPELINING (RFC 2920), ENHANCEDSTATUSCODES
    /// (RFC 2034), 8BITMIME (RFC 6152), SIZE (RFC 1870) and, when offered, STARTTLS
    /// (RFC 3207).
    fn lhlo(&mut self, domain: String) -> Reply {
        self.client = domain;
        self.state = State::Ready;
        let mut lines = vec![
            self.hostname.clone(),
            "PIPELINING".into(),
            "ENHANCEDSTATUSCODES".into(),
            "8BITMIME".into(),
            format!("SIZE {}", self.max_size),
        ];
        // RFC 3207 §4.2: not advertised once TLS is active.
        if self.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        Reply::plain(250, lines)
    }

    /// MAIL (RFC 5321 §4.1.1.2, §4.1.4; SIZE per RFC 1870 §6.1).
    fn mail(&mut self, from: ReversePath, params: MailParams) -> Reply {
        match self.state {
            State::Greeting => bad_sequence("send LHLO first"),
            State::Mail(_) | State::Rcpt(_) => bad_sequence("nested MAIL command"),
            State::Data(_) | State::Delivering { .. } => bad_sequence("DATA in progress"),
            State::Ready => {
                if params.size.is_some_and(|s| s > self.max_size) {
                    return Reply::new(552, (5, 3, 4), "message size exceeds fixed maximum");
                }
                self.state = State::Mail(Envelope {
                    from,
                    params,
                    accepted: Vec::new(),
                });
                Reply::new(250, (2, 1, 0), "sender OK")
            }
        }
    }

    /// RCPT (RFC 5321 §4.1.1.3): checks the sequence and the recipient limit
    /// (RFC 5321 §4.5.3.1.10: `452` for too many), then asks the driver.
    fn rcpt(&mut self, to: Mailbox) -> Step {
        match &self.state {
            State::Greeting => Step::Reply(bad_sequence("send LHLO first")),
            State::Ready => Step::Reply(bad_sequence("send MAIL first")),
            State::Data(_) | State::Delivering { .. } => {
                Step::Reply(bad_sequence("DATA in progress"))
            }
            State::Mail(env) | State::Rcpt(env) => {
                if env.accepted.len() >= self.max_recipients {
                    Step::Reply(Reply::new(452, (4, 5, 3), "too many recipients"))
                } else {
                    Step::CheckRecipient(to)
                }
            }
        }
    }

    /// The reply to a RCPT once the driver has checked `addr`; an accepted `addr` is
    /// added to the envelope (RFC 2033 §4.2: duplicates are kept and each gets its own
    /// reply after DATA). Called outside a transaction it answers `503 5.5.1`.
    pub fn recipient_result(&mut self, addr: Mailbox, check: RecipientCheck) -> Reply {
        let accepted = match &self.state {
            State::Mail(env) | State::Rcpt(env) => env.accepted.len(),
            _ => return bad_sequence("send MAIL first"),
        };
        match check {
            RecipientCheck::Ok if accepted >= self.max_recipients => {
                Reply::new(452, (4, 5, 3), "too many recipients")
            }
            RecipientCheck::Ok => {
                self.state = match std::mem::replace(&mut self.state, State::Ready) {
                    State::Mail(mut env) | State::Rcpt(mut env) => {
                        env.accepted.push(addr);
                        State::Rcpt(env)
                    }
                    other => other,
                };
                Reply::new(250, (2, 1, 5), "recipient OK")
            }
            RecipientCheck::UnknownUser => Reply::new(550, (5, 1, 1), "no such user"),
            RecipientCheck::OverQuota => Reply::new(452, (4, 2, 2), "mailbox full"),
            RecipientCheck::TempFail => {
                Reply::new(451, (4, 3, 0), "temporary failure, try again later")
            }
            RecipientCheck::Rejected {
                code,
                enhanced,
                text,
            } => custom(code, enhanced, &text),
        }
    }

    /// DATA (RFC 5321 §4.1.1.4; RFC 2033 §4.2: `503` without an accepted recipient).
    fn data(&mut self) -> Step {
        match std::mem::replace(&mut self.state, State::Greeting) {
            State::Rcpt(env) => {
                self.state = State::Data(env);
                // 3xx: no enhanced code (RFC 2034 §4 covers 2xx, 4xx, 5xx only).
                Step::StartData(Reply::plain(
                    354,
                    vec!["end data with <CR><LF>.<CR><LF>".into()],
                ))
            }
            other => {
                let reply = match other {
                    State::Greeting => bad_sequence("send LHLO first"),
                    State::Ready => bad_sequence("send MAIL first"),
                    State::Mail(_) => bad_sequence("no valid recipients"),
                    State::Rcpt(_) | State::Data(_) | State::Delivering { .. } => {
                        bad_sequence("DATA in progress")
                    }
                };
                self.state = other;
                Step::Reply(reply)
            }
        }
    }

    /// Ends the DATA phase and hands over the envelope; `too_big` is
    /// [`super::DataDecoder::too_big`]. `None` if no DATA was in progress.
    pub fn data_done(&mut self, too_big: bool) -> Option<Transaction> {
        if !matches!(self.state, State::Data(_)) {
            return None;
        }
        let State::Data(env) = std::mem::replace(&mut self.state, State::Ready) else {
            return None;
        };
        self.state = State::Delivering {
            count: env.accepted.len(),
            too_big,
        };
        Some(Transaction {
            client: self.client.clone(),
            mail_from: env.from,
            params: env.params,
            recipients: env.accepted,
            too_big,
        })
    }

    /// One reply per accepted recipient, in RCPT order (RFC 2033 §4.2); `results[i]` is
    /// the outcome for `Transaction::recipients[i]`. A missing outcome is answered
    /// `451 4.3.0`, extra ones are ignored, and a too-big transaction answers
    /// `552 5.3.4` whatever the results say. The session returns to `Ready`. Outside
    /// the delivery step it returns no replies.
    pub fn delivery_replies(&mut self, results: &[RcptOutcome]) -> Vec<Reply> {
        let State::Delivering { count, too_big } = self.state else {
            return Vec::new();
        };
        self.state = State::Ready;
        (0..count)
            .map(|i| {
                if too_big {
                    return Reply::new(552, (5, 3, 4), "message too big");
                }
                match results.get(i) {
                    Some(RcptOutcome::Delivered) => Reply::new(250, (2, 1, 5), "delivered"),
                    Some(RcptOutcome::UnknownUser) => Reply::new(550, (5, 1, 1), "no such user"),
                    Some(RcptOutcome::TooBig) => Reply::new(552, (5, 3, 4), "message too big"),
                    Some(RcptOutcome::OverQuota) => Reply::new(452, (4, 2, 2), "mailbox full"),
                    Some(RcptOutcome::DiskFull) => {
                        Reply::new(452, (4, 3, 1), "insufficient system storage")
                    }
                    Some(RcptOutcome::Rejected {
                        code,
                        enhanced,
                        text,
                    }) => custom(*code, *enhanced, text),
                    Some(RcptOutcome::StorageFailure) | None => {
                        Reply::new(451, (4, 3, 0), "temporary failure, try again later")
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::super::data::{DataDecoder, DataState};
    use super::super::grammar::parse_command;
    use super::*;
    use crate::net::line::{LineResult, split_line};

    /// A minimal driver as the real one will be: frames lines, runs the session, runs a
    /// DataDecoder after 354, answers lookups from a fixed directory.
    struct Driver {
        session: Session,
        max_size: u64,
        buf: Vec<u8>,
        decoder: Option<DataDecoder>,
        skipping: bool,
        closed: bool,
        codes: Vec<u16>,
        transactions: Vec<(Transaction, Vec<u8>)>,
    }

    /// RCPT-time directory: alice, bob, disk, broken, gone exist; full is over quota;
    /// tmp fails; plugin is refused by a plugin.
    fn check(m: &Mailbox) -> RecipientCheck {
        match m.local_part_unquoted().as_str() {
            "alice" | "bob" | "disk" | "broken" | "gone" | "a b" => RecipientCheck::Ok,
            "full" => RecipientCheck::OverQuota,
            "tmp" => RecipientCheck::TempFail,
            "plugin" => RecipientCheck::Rejected {
                code: 550,
                enhanced: (5, 7, 1),
                text: "refused by policy".into(),
            },
            _ => RecipientCheck::UnknownUser,
        }
    }

    /// Delivery-time storage outcome.
    fn deliver(m: &Mailbox) -> RcptOutcome {
        match m.local_part() {
            "disk" => RcptOutcome::DiskFull,
            "broken" => RcptOutcome::StorageFailure,
            "gone" => RcptOutcome::Rejected {
                code: 451,
                enhanced: (5, 7, 0),
                text: "plugin says later".into(),
            },
            _ => RcptOutcome::Delivered,
        }
    }

    impl Driver {
        fn new(max_size: u64, max_rcpt: usize) -> Self {
            let session = Session::new("mx.test", max_size, max_rcpt);
            let codes = vec![session.greeting().code];
            Self {
                session,
                max_size,
                buf: Vec::new(),
                decoder: None,
                skipping: false,
                closed: false,
                codes,
                transactions: Vec::new(),
            }
        }

        fn push(&mut self, bytes: &[u8]) {
            self.buf.extend_from_slice(bytes);
            while !self.closed {
                if let Some(dec) = &mut self.decoder {
                    let (n, state) = dec.feed(&self.buf);
                    self.buf.drain(..n);
                    if state == DataState::NeedMore {
                        return;
                    }
                    let msg = dec.take_message();
                    let too_big = dec.too_big();
                    self.decoder = None;
                    let tx = self.session.data_done(too_big).unwrap();
                    let outcomes: Vec<_> = tx.recipients.iter().map(deliver).collect();
                    let replies = self.session.delivery_replies(&outcomes);
                    assert_eq!(replies.len(), tx.recipients.len());
                    self.codes.extend(replies.iter().map(|r| r.code));
                    self.transactions.push((tx, msg));
                    continue;
                }
                if self.skipping {
                    match memchr::memchr(b'\n', &self.buf) {
                        Some(p) => {
                            self.buf.drain(..=p);
                            self.skipping = false;
                        }
                        None => {
                            self.buf.clear();
                            return;
                        }
                    }
                }
                match split_line(&self.buf, 64) {
                    LineResult::Incomplete => return,
                    LineResult::TooLong => {
                        self.codes.push(Reply::from(SyntaxError::LineTooLong).code);
                        self.skipping = true;
                    }
                    LineResult::Line(n, range) => {
                        let cmd = parse_command(&self.buf[range]);
                        self.buf.drain(..n);
                        match self.session.handle(cmd) {
                            Step::Reply(r) => self.codes.push(r.code),
                            Step::CheckRecipient(m) => {
                                let c = check(&m);
                                self.codes.push(self.session.recipient_result(m, c).code);
                            }
                            Step::StartData(r) => {
                                self.codes.push(r.code);
                                self.decoder = Some(DataDecoder::new(self.max_size));
                            }
                            Step::Close(r) | Step::StartTls(r) => {
                                self.codes.push(r.code);
                                self.closed = true;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Replays a transcript of (client text, expected reply codes) as one pipelined
    /// stream, whole and in chunks of 1..=16 octets; the greeting's 220 comes first.
    fn replay(max_size: u64, max_rcpt: usize, script: &[(&str, &[u16])]) -> Driver {
        let input: String = script.iter().map(|(c, _)| *c).collect();
        let mut want = vec![220];
        for (_, codes) in script {
            want.extend_from_slice(codes);
        }
        let mut whole = Driver::new(max_size, max_rcpt);
        whole.push(input.as_bytes());
        assert_eq!(whole.codes, want, "whole input");
        for chunk in 1..=16 {
            let mut d = Driver::new(max_size, max_rcpt);
            for piece in input.as_bytes().chunks(chunk) {
                d.push(piece);
            }
            assert_eq!(d.codes, want, "chunk {chunk}");
            assert_eq!(d.transactions, whole.transactions, "chunk {chunk}");
        }
        whole
    }

    #[test]
    fn session_happy_path_with_duplicates() {
        let d = replay(
            1000,
            100,
            &[
                ("LHLO client.test\r\n", &[250]),
                (
                    "MAIL FROM:<sender@x.test> BODY=8BITMIME SIZE=20\r\n",
                    &[250],
                ),
                ("RCPT TO:<alice@mx.test>\r\n", &[250]),
                ("RCPT TO:<nobody@mx.test>\r\n", &[550]),
                ("RCPT TO:<bob@mx.test>\r\n", &[250]),
                ("RCPT TO:<alice@mx.test>\r\n", &[250]),
                ("DATA\r\n", &[354]),
                ("Subject: hi\r\n\r\n..dot\r\n.\r\n", &[250, 250, 250]),
                ("QUIT\r\n", &[221]),
                ("NOOP\r\n", &[]),
            ],
        );
        let (tx, msg) = &d.transactions[0];
        assert_eq!(tx.client, "client.test");
        assert_eq!(tx.mail_from.to_string(), "<sender@x.test>");
        assert_eq!(tx.params.size, Some(20));
        let rcpts: Vec<_> = tx.recipients.iter().map(Mailbox::as_str).collect();
        assert_eq!(rcpts, ["alice@mx.test", "bob@mx.test", "alice@mx.test"]);
        assert!(!tx.too_big);
        assert_eq!(msg, b"Subject: hi\r\n\r\n.dot\r\n");
    }

    #[test]
    fn session_sequencing_errors() {
        replay(
            1000,
            100,
            &[
                ("MAIL FROM:<>\r\n", &[503]),
                ("RCPT TO:<alice@mx.test>\r\n", &[503]),
                ("DATA\r\n", &[503]),
                ("RSET\r\n", &[250]),
                ("MAIL FROM:<>\r\n", &[503]),
                ("HELO client.test\r\n", &[500]),
                ("EHLO client.test\r\n", &[500]),
                ("LHLO client.test\r\n", &[250]),
                ("RCPT TO:<alice@mx.test>\r\n", &[503]),
                ("DATA\r\n", &[503]),
                ("MAIL FROM:<>\r\n", &[250]),
                ("MAIL FROM:<>\r\n", &[503]),
                ("DATA\r\n", &[503]),
                ("RCPT TO:<alice@mx.test>\r\n", &[250]),
                ("MAIL FROM:<>\r\n", &[503]),
                ("RSET\r\n", &[250]),
                ("RCPT TO:<alice@mx.test>\r\n", &[503]),
                ("MAIL FROM:<>\r\n", &[250]),
                ("LHLO again.test\r\n", &[250]),
                ("RCPT TO:<alice@mx.test>\r\n", &[503]),
                ("NOOP\r\n", &[250]),
                ("VRFY alice\r\n", &[252]),
                ("HELP\r\n", &[214]),
                ("FOO\r\n", &[500]),
                ("MAIL FROM:<a@b> RET=FULL\r\n", &[555]),
                ("MAIL FROM:<a@b> SIZE=1001\r\n", &[552]),
                ("MAIL FROM:<a@b> SIZE=1000\r\n", &[250]),
                ("QUIT\r\n", &[221]),
            ],
        );
    }

    #[test]
    fn session_all_recipients_rejected_data_is_503() {
        // The client pipelined its message; after the 503 the body lines are commands.
        replay(
            1000,
            100,
            &[
                ("LHLO c\r\nMAIL FROM:<>\r\n", &[250, 250]),
                ("RCPT TO:<nobody@mx.test>\r\n", &[550]),
                ("RCPT TO:<full@mx.test>\r\n", &[452]),
                ("RCPT TO:<tmp@mx.test>\r\n", &[451]),
                ("RCPT TO:<plugin@mx.test>\r\n", &[550]),
                ("DATA\r\n", &[503]),
                ("Subject: x\r\n", &[500]),
                (".\r\n", &[500]),
                ("RSET\r\n", &[250]),
            ],
        );
    }

    #[test]
    fn session_too_many_recipients() {
        let d = replay(
            1000,
            2,
            &[
                ("LHLO c\r\nMAIL FROM:<>\r\n", &[250, 250]),
                ("RCPT TO:<alice@x>\r\nRCPT TO:<alice@x>\r\n", &[250, 250]),
                ("RCPT TO:<bob@x>\r\n", &[452]),
                ("DATA\r\nx\r\n.\r\n", &[354, 250, 250]),
            ],
        );
        assert_eq!(d.transactions[0].0.recipients.len(), 2);
    }

    #[test]
    fn session_too_big_message_then_next_transaction() {
        let d = replay(
            10,
            100,
            &[
                (
                    "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@x>\r\nRCPT TO:<bob@x>\r\n",
                    &[250, 250, 250, 250],
                ),
                ("DATA\r\n", &[354]),
                ("0123456789\r\nmore\r\n.\r\n", &[552, 552]),
                (
                    "MAIL FROM:<>\r\nRCPT TO:<bob@x>\r\nDATA\r\nok\r\n.\r\n",
                    &[250, 250, 354, 250],
                ),
            ],
        );
        assert!(d.transactions[0].0.too_big);
        assert!(d.transactions[0].1.is_empty());
        assert_eq!(d.transactions[1].1, b"ok\r\n");
    }

    #[test]
    fn session_delivery_failures_per_recipient() {
        replay(
            1000,
            100,
            &[
                ("LHLO c\r\nMAIL FROM:<>\r\n", &[250, 250]),
                ("RCPT TO:<alice@x>\r\nRCPT TO:<disk@x>\r\n", &[250, 250]),
                ("RCPT TO:<broken@x>\r\nRCPT TO:<gone@x>\r\n", &[250, 250]),
                ("RCPT TO:<\"a b\"@x>\r\n", &[250]),
                ("DATA\r\nhi\r\n.\r\n", &[354, 250, 452, 451, 451, 250]),
            ],
        );
    }

    #[test]
    fn session_line_too_long_then_continues() {
        let long = format!("NOOP {}\r\n", "x".repeat(100));
        replay(
            1000,
            100,
            &[
                ("LHLO c\r\n", &[250]),
                (long.as_str(), &[500]),
                ("NOOP\r\n", &[250]),
            ],
        );
    }

    #[test]
    fn session_smuggled_terminator_is_message_content() {
        let d = replay(
            1000,
            100,
            &[
                (
                    "LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@x>\r\nDATA\r\n",
                    &[250, 250, 250, 354],
                ),
                ("a\n.\nMAIL FROM:<evil@x>\nRCPT TO:<bob@x>\r\n.\r\n", &[250]),
                ("QUIT\r\n", &[221]),
            ],
        );
        assert_eq!(d.transactions.len(), 1);
        assert_eq!(
            d.transactions[0].1,
            b"a\r\n.\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<bob@x>\r\n"
        );
    }

    #[test]
    fn session_greeting_and_lhlo_wire_form() {
        let mut s = Session::new("mx.test", 1000, 100);
        assert_eq!(
            s.greeting().to_bytes(),
            b"220 mx.test LMTP nestbox ready\r\n"
        );
        let Step::Reply(r) = s.handle(parse_command(b"LHLO c")) else {
            panic!()
        };
        assert_eq!(
            r.to_bytes(),
            b"250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n\
              250-8BITMIME\r\n250 SIZE 1000\r\n"
        );
    }

    #[test]
    fn session_error_replies_wire_form() {
        let mut s = Session::new("mx.test", 1000, 1);
        let reply = |s: &mut Session, line: &[u8]| match s.handle(parse_command(line)) {
            Step::Reply(r) | Step::StartData(r) | Step::Close(r) | Step::StartTls(r) => {
                r.to_bytes()
            }
            Step::CheckRecipient(m) => s.recipient_result(m, RecipientCheck::Ok).to_bytes(),
        };
        assert_eq!(
            reply(&mut s, b"MAIL FROM:<>"),
            b"503 5.5.1 send LHLO first\r\n"
        );
        let helo = reply(&mut s, b"HELO x");
        assert!(helo.starts_with(b"500 5.5.1 "));
        assert!(String::from_utf8_lossy(&helo).contains("LHLO"));
        reply(&mut s, b"LHLO c");
        assert!(reply(&mut s, b"MAIL FROM:<> SIZE=1001").starts_with(b"552 5.3.4 "));
        reply(&mut s, b"MAIL FROM:<>");
        assert!(reply(&mut s, b"DATA").starts_with(b"503 5.5.1 "));
        assert!(reply(&mut s, b"RCPT TO:<a@b>").starts_with(b"250 2.1.5 "));
        assert!(reply(&mut s, b"RCPT TO:<a@b>").starts_with(b"452 4.5.3 "));
        assert!(reply(&mut s, b"RCPT TO:<a@b> X=1").starts_with(b"555 5.5.4 "));
        assert!(reply(&mut s, b"RSET").starts_with(b"250 2.0.0 "));
        assert!(reply(&mut s, b"QUIT").starts_with(b"221 2.0.0 "));
    }

    #[test]
    fn session_delivery_reply_codes() {
        let mut s = Session::new("h", 1000, 100);
        s.handle(parse_command(b"LHLO c"));
        s.handle(parse_command(b"MAIL FROM:<>"));
        for _ in 0..8 {
            let Step::CheckRecipient(m) = s.handle(parse_command(b"RCPT TO:<a@b>")) else {
                panic!()
            };
            s.recipient_result(m, RecipientCheck::Ok);
        }
        assert!(matches!(
            s.handle(parse_command(b"DATA")),
            Step::StartData(_)
        ));
        let tx = s.data_done(false).unwrap();
        assert_eq!(tx.recipients.len(), 8);
        let replies = s.delivery_replies(&[
            RcptOutcome::Delivered,
            RcptOutcome::UnknownUser,
            RcptOutcome::TooBig,
            RcptOutcome::OverQuota,
            RcptOutcome::StorageFailure,
            RcptOutcome::DiskFull,
            RcptOutcome::Rejected {
                code: 554,
                enhanced: (5, 7, 1),
                text: "spam".into(),
            },
        ]);
        let got: Vec<_> = replies.iter().map(|r| (r.code, r.enhanced)).collect();
        assert_eq!(
            got,
            [
                (250, Some((2, 1, 5))),
                (550, Some((5, 1, 1))),
                (552, Some((5, 3, 4))),
                (452, Some((4, 2, 2))),
                (451, Some((4, 3, 0))),
                (452, Some((4, 3, 1))),
                (554, Some((5, 7, 1))),
                (451, Some((4, 3, 0))), // missing outcome
            ]
        );
        // Back to Ready: a new MAIL works, and a second delivery_replies is empty.
        assert!(s.delivery_replies(&[]).is_empty());
        assert_eq!(
            s.handle(parse_command(b"MAIL FROM:<>")),
            Step::Reply(Reply::new(250, (2, 1, 0), "sender OK"))
        );
    }

    #[test]
    fn session_custom_codes_cannot_claim_success() {
        let mut s = Session::new("h", 1000, 100);
        s.handle(parse_command(b"LHLO c"));
        s.handle(parse_command(b"MAIL FROM:<>"));
        let Step::CheckRecipient(m) = s.handle(parse_command(b"RCPT TO:<a@b>")) else {
            panic!()
        };
        let r = s.recipient_result(
            m,
            RecipientCheck::Rejected {
                code: 250,
                enhanced: (2, 0, 0),
                text: "ok".into(),
            },
        );
        assert_eq!((r.code, r.enhanced), (451, Some((4, 3, 0))));
        // The recipient was not accepted, so DATA is refused.
        assert!(matches!(s.handle(parse_command(b"DATA")), Step::Reply(r) if r.code == 503));
    }

    #[test]
    fn session_driver_misuse_is_harmless() {
        let mut s = Session::new("h", 1000, 100);
        assert_eq!(s.data_done(false), None);
        assert!(s.delivery_replies(&[RcptOutcome::Delivered]).is_empty());
        let m = match parse_command(b"RCPT TO:<a@b>") {
            Ok(Command::Rcpt { to }) => to,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.recipient_result(m, RecipientCheck::Ok).code, 503);
    }

    fn cmd(s: &mut Session, line: &str) -> Step {
        s.handle(parse_command(line.as_bytes()))
    }

    fn lhlo_lines(s: &mut Session) -> Vec<String> {
        match cmd(s, "LHLO mta.example") {
            Step::Reply(r) => r.lines,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn starttls_offered_then_session_resets() {
        let mut s = Session::new("h", 1000, 10).with_starttls(true);
        assert!(matches!(cmd(&mut s, "STARTTLS"), Step::Reply(r) if r.code == 503));
        assert!(lhlo_lines(&mut s).contains(&"STARTTLS".to_string()));
        match cmd(&mut s, "STARTTLS") {
            Step::StartTls(r) => assert_eq!(r.to_bytes(), b"220 2.0.0 Ready to start TLS\r\n"),
            other => panic!("{other:?}"),
        }
        s.tls_started();
        assert!(s.is_tls());
        // RFC 3207 §4.2: the LHLO is forgotten.
        assert!(matches!(cmd(&mut s, "MAIL FROM:<a@b>"), Step::Reply(r) if r.code == 503));
        assert!(!lhlo_lines(&mut s).contains(&"STARTTLS".to_string()));
        assert!(matches!(cmd(&mut s, "STARTTLS"), Step::Reply(r) if r.code == 503));
        assert!(matches!(cmd(&mut s, "MAIL FROM:<a@b>"), Step::Reply(r) if r.code == 250));
    }

    #[test]
    fn starttls_not_offered_or_mid_transaction() {
        let mut s = Session::new("h", 1000, 10);
        assert!(!lhlo_lines(&mut s).contains(&"STARTTLS".to_string()));
        assert!(matches!(cmd(&mut s, "STARTTLS"), Step::Reply(r) if r.code == 502));
        let mut s = Session::new("h", 1000, 10).with_starttls(true);
        lhlo_lines(&mut s);
        assert!(matches!(cmd(&mut s, "MAIL FROM:<a@b>"), Step::Reply(r) if r.code == 250));
        assert!(matches!(cmd(&mut s, "STARTTLS"), Step::Reply(r) if r.code == 503));
        assert!(matches!(cmd(&mut s, "STARTTLS now"), Step::Reply(r) if r.code == 501));
    }
}
