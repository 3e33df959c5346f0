//! Streaming decoder for the DATA phase (RFC 5321 §4.1.1.4, §4.5.2, §2.3.8; RFC 2033 §4.2).
//!
//! Policy, chosen against the SMTP-smuggling class of bugs (the end-of-data marker must
//! mean the same thing to every hop):
//!
//! - **End of data** is only `CRLF . CRLF`, where the first CRLF is the end of the
//!   previous line or of the `DATA` command itself. `LF.LF`, `LF.CRLF`, `CRLF.LF`,
//!   `CR.CR` and every other mix never end the data (RFC 5321 §2.3.8, §4.1.1.4).
//! - **Bare LF** (an LF without a CR before it) is stored as CRLF. DEVIATION: RFC 5321
//!   §2.3.8 says a receiver should not treat bare LF as a line end; we do for storage
//!   (LMTP peers hand over local mail that may use Unix line ends) but *not* for the
//!   dot rules: the octet after a bare LF is not a line start, so `LF.CRLF` neither ends
//!   the data nor loses its dot.
//! - **Bare CR** (a CR not followed by LF) is also stored as CRLF and is likewise not a
//!   line start for the dot rules. Stored messages therefore contain CR and LF only as
//!   CRLF pairs, so sizes seen later by IMAP and POP3 match (PROTOCOL.md §3.15).
//! - **Dot-stuffing** (RFC 5321 §4.5.2): a line that starts with `.` after a real CRLF
//!   and has further characters loses that first `.`.
//! - **NUL** octets are kept as they are (storage is 8-bit clean; the IMAP and POP3
//!   output layers decide what to send, cf. PROTOCOL.md Q7); [`DataDecoder::contains_nul`]
//!   reports them for a driver that wants to refuse with `554 5.6.0`.
//! - **Size cap** (RFC 1870 §6.3; RFC 3463 5.3.4): once the decoded size passes
//!   `max_size`, the decoder drops what it has and keeps nothing more, but keeps
//!   scanning for the terminator so the connection stays in step with the client;
//!   [`DataDecoder::too_big`] then says so. Memory held is at most `max_size` octets.
//!
//! The result is identical however the input is split into [`DataDecoder::feed`] calls.

/// Where the decoder stands after a [`DataDecoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataState {
    /// The terminator has not been seen yet: feed more input.
    NeedMore,
    /// `CRLF.CRLF` was consumed; the message is complete.
    Done,
}

/// Scanner position, i.e. what the bytes just before the next one were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Right after a real CRLF (or at the start of the data).
    LineStart,
    /// After CRLF `.`.
    Dot,
    /// After CRLF `.` CR.
    DotCr,
    /// Inside a line.
    Mid,
    /// After a CR whose meaning depends on the next octet.
    Cr,
    /// After the terminator.
    Done,
}

/// Decodes one DATA body: dot-unstuffing, line-end normalisation, size cap.
#[derive(Debug)]
pub struct DataDecoder {
    scan: Scan,
    out: Vec<u8>,
    size: u64,
    max_size: u64,
    too_big: bool,
    nul: bool,
}

impl DataDecoder {
    /// A decoder that keeps at most `max_size` decoded octets (the LHLO `SIZE` value).
    pub fn new(max_size: u64) -> Self {
        Self {
            scan: Scan::LineStart,
            out: Vec::new(),
            size: 0,
            max_size,
            too_big: false,
            nul: false,
        }
    }

    /// Feeds input; returns how many octets were consumed and whether the data ended.
    /// On [`DataState::Done`] the octets after the terminator were not consumed: they
    /// belong to the next (pipelined, RFC 2920 §3) command. After `Done` every call
    /// consumes nothing.
    pub fn feed(&mut self, input: &[u8]) -> (usize, DataState) {
        let mut pos = 0;
        while let Some(rest) = input.get(pos..) {
            let Some(&b) = rest.first() else {
                break;
            };
            if self.scan == Scan::Done {
                break;
            }
            if self.scan == Scan::Mid {
                // Fast path: copy a run of ordinary octets in one go.
                let run = rest
                    .iter()
                    .position(|&c| c == b'\r' || c == b'\n')
                    .unwrap_or(rest.len());
                if run > 0 {
                    self.emit(rest.get(..run).unwrap_or_default());
                    pos = pos.saturating_add(run);
                    continue;
                }
            }
            self.step(b);
            pos = pos.saturating_add(1);
        }
        let state = if self.scan == Scan::Done {
            DataState::Done
        } else {
            DataState::NeedMore
        };
        (pos, state)
    }

    /// One octet through the state machine.
    fn step(&mut self, b: u8) {
        self.scan = match (self.scan, b) {
            (Scan::Done, _) => Scan::Done,
            (Scan::LineStart, b'.') => Scan::Dot,
            (Scan::Dot, b'\r') => Scan::DotCr,
            (Scan::DotCr, b'\n') => Scan::Done,
            // ".<x>": the line has more than the dot, so the dot goes (RFC 5321 §4.5.2).
            (Scan::Dot, _) => self.mid(b),
            // ".<CR><x>": same, and the CR was bare.
            (Scan::DotCr, _) => {
                self.emit(b"\r\n");
                self.mid(b)
            }
            (Scan::Cr, b'\n') => {
                self.emit(b"\r\n");
                Scan::LineStart
            }
            // The pending CR was bare.
            (Scan::Cr, _) => {
                self.emit(b"\r\n");
                self.mid(b)
            }
            (Scan::LineStart | Scan::Mid, _) => self.mid(b),
        };
    }

    /// An octet inside a line.
    fn mid(&mut self, b: u8) -> Scan {
        match b {
            b'\r' => Scan::Cr,
            b'\n' => {
                self.emit(b"\r\n");
                Scan::Mid
            }
            _ => {
                self.emit(&[b]);
                Scan::Mid
            }
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        if bytes.contains(&0) {
            self.nul = true;
        }
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.size = self.size.saturating_add(len);
        if self.size > self.max_size {
            if !self.too_big {
                self.too_big = true;
                self.out = Vec::new();
            }
        } else {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Whether the terminator has been consumed.
    pub fn is_done(&self) -> bool {
        self.scan == Scan::Done
    }

    /// Whether the decoded message exceeded `max_size` (answer `552 5.3.4` for every
    /// recipient, RFC 1870 §6.3, RFC 2033 §4.2).
    pub fn too_big(&self) -> bool {
        self.too_big
    }

    /// Whether the message contains a NUL octet.
    pub fn contains_nul(&self) -> bool {
        self.nul
    }

    /// Decoded size so far, counted even past the cap.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Takes the decoded message (CRLF line ends, dot-stuffing removed). Empty if the
    /// message was too big; meaningful only once [`DataState::Done`] was returned.
    pub fn take_message(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` octets; returns (consumed, done, message, too_big).
    fn run(input: &[u8], chunk: usize, max: u64) -> (usize, bool, Vec<u8>, bool) {
        let mut d = DataDecoder::new(max);
        let mut consumed = 0;
        let mut done = false;
        for piece in input.chunks(chunk) {
            let (n, state) = d.feed(piece);
            consumed += n;
            if state == DataState::Done {
                done = true;
                assert!(n <= piece.len());
                break;
            }
            assert_eq!(n, piece.len(), "NeedMore must consume everything");
        }
        (consumed, done, d.take_message(), d.too_big())
    }

    fn decode(input: &[u8]) -> (usize, bool, Vec<u8>) {
        let (n, done, msg, _) = run(input, input.len().max(1), 1 << 20);
        (n, done, msg)
    }

    #[test]
    fn data_simple_and_empty() {
        assert_eq!(decode(b".\r\n"), (3, true, b"".to_vec()));
        assert_eq!(decode(b"a\r\n.\r\n"), (6, true, b"a\r\n".to_vec()));
        assert_eq!(decode(b"\r\n.\r\n"), (5, true, b"\r\n".to_vec()));
    }

    #[test]
    fn data_dot_unstuffing() {
        assert_eq!(
            decode(b"..\r\n..x\r\n...\r\nx.y\r\n.\r\n").2,
            b".\r\n.x\r\n..\r\nx.y\r\n".to_vec()
        );
        // A leading dot without stuffing still loses it (RFC 5321 §4.5.2).
        assert_eq!(decode(b".x\r\n.\r\n").2, b"x\r\n".to_vec());
    }

    #[test]
    fn data_bytes_after_terminator_not_consumed() {
        let input = b"hi\r\n.\r\nQUIT\r\n";
        let (n, done, msg) = decode(input);
        assert!(done);
        assert_eq!(n, 7);
        assert_eq!(&input[n..], b"QUIT\r\n");
        assert_eq!(msg, b"hi\r\n");
    }

    #[test]
    fn data_bare_lf_does_not_end() {
        // "\n.\n" must not end the data; bare LFs become CRLF, the dot stays.
        let (n, done, msg) = decode(b"a\n.\nb\r\n.\r\n");
        assert!(done);
        assert_eq!(n, 10);
        assert_eq!(msg, b"a\r\n.\r\nb\r\n".to_vec());
    }

    #[test]
    fn data_smuggling_markers_never_end() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\n.\nX", b"a\r\n.\r\nX"),
            (b"a\n.\r\nX", b"a\r\n.\r\nX"),
            (b"a\r\n.\nX", b"a\r\n\r\nX"),
            (b"a\r.\rX", b"a\r\n.\r\nX"),
            (b"a\r\n.\rX", b"a\r\n\r\nX"),
            (b"a\r.\r\nX", b"a\r\n.\r\nX"),
            (b"a\r\n.\r\r\nX", b"a\r\n\r\n\r\nX"),
            (b"a\r\n \r\n.X", b"a\r\n \r\nX"),
        ];
        for (body, want) in cases {
            let mut input = body.to_vec();
            input.extend_from_slice(b"\r\n.\r\nMAIL FROM:<>\r\n");
            for chunk in 1..=16 {
                let (n, done, msg, _) = run(&input, chunk, 1 << 20);
                assert!(done, "{body:?}");
                assert_eq!(&input[n..], b"MAIL FROM:<>\r\n", "{body:?} chunk {chunk}");
                let mut expect = want.to_vec();
                expect.extend_from_slice(b"\r\n");
                assert_eq!(msg, expect, "{body:?} chunk {chunk}");
            }
        }
    }

    #[test]
    fn data_bare_cr_and_lf_normalised() {
        let (_, _, msg) = decode(b"a\rb\nc\r\r\n\n\r\n.\r\n");
        assert_eq!(msg, b"a\r\nb\r\nc\r\n\r\n\r\n\r\n".to_vec());
        // Every CR and LF in the output is part of a CRLF pair.
        for (i, &b) in msg.iter().enumerate() {
            if b == b'\r' {
                assert_eq!(msg[i + 1], b'\n');
            }
            if b == b'\n' {
                assert_eq!(msg[i - 1], b'\r');
            }
        }
    }

    #[test]
    fn data_nul_kept_and_flagged() {
        let mut d = DataDecoder::new(100);
        assert_eq!(d.feed(b"a\0b\r\n.\r\n"), (8, DataState::Done));
        assert!(d.contains_nul());
        assert_eq!(d.take_message(), b"a\0b\r\n".to_vec());
    }

    #[test]
    fn data_size_cap() {
        // Exactly at the cap is fine.
        let (_, done, msg, big) = run(b"12345678\r\n.\r\n", 3, 10);
        assert!(done && !big);
        assert_eq!(msg, b"12345678\r\n".to_vec());
        // One over: nothing kept, but the terminator is still found.
        let input = b"123456789\r\nmore\r\n.\r\nQUIT\r\n";
        for chunk in 1..=16 {
            let (n, done, msg, big) = run(input, chunk, 10);
            assert!(done && big);
            assert!(msg.is_empty());
            assert_eq!(&input[n..], b"QUIT\r\n");
        }
    }

    #[test]
    fn data_size_counts_past_cap() {
        let mut d = DataDecoder::new(2);
        d.feed(b"abcdef\r\n.\r\n");
        assert_eq!(d.size(), 8);
        assert!(d.is_done());
    }

    #[test]
    fn data_done_consumes_nothing_more() {
        let mut d = DataDecoder::new(100);
        assert_eq!(d.feed(b".\r\n"), (3, DataState::Done));
        assert_eq!(d.feed(b"x\r\n.\r\n"), (0, DataState::Done));
    }

    #[test]
    fn data_chunked_equivalence() {
        let input: &[u8] = b"From: a\r\nSubject: \0x\r\n\r\n..stuffed\r\n.\rbare\n.\n\
            line\r\r\n.\r\n..\r\n \r\n.x\r\n\r\n.\r\nRSET\r\n";
        let whole = run(input, input.len(), 1 << 20);
        assert!(whole.1);
        for chunk in 1..=16 {
            assert_eq!(run(input, chunk, 1 << 20), whole, "chunk {chunk}");
        }
        let capped = run(input, input.len(), 20);
        assert!(capped.3);
        for chunk in 1..=16 {
            assert_eq!(run(input, chunk, 20), capped, "capped chunk {chunk}");
        }
    }

    #[test]
    fn data_incomplete_needs_more() {
        let mut d = DataDecoder::new(100);
        assert_eq!(d.feed(b"abc\r\n."), (6, DataState::NeedMore));
        assert_eq!(d.feed(b"\r"), (1, DataState::NeedMore));
        assert_eq!(d.feed(b"\n"), (1, DataState::Done));
        assert_eq!(d.take_message(), b"abc\r\n".to_vec());
    }

    /// Deterministic pseudo-random inputs over the octets that matter: the result must
    /// not depend on chunking, and CR/LF appear in the output only as CRLF pairs.
    #[test]
    fn data_random_chunking_and_crlf_invariant() {
        let alphabet = b"\r\n.a\0";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..40 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                input.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            input.extend_from_slice(b"\r\n.\r\nTAIL");
            let whole = run(&input, input.len(), 1 << 20);
            assert!(whole.1);
            for chunk in 1..=16 {
                assert_eq!(
                    run(&input, chunk, 1 << 20),
                    whole,
                    "{input:?} chunk {chunk}"
                );
            }
            let msg = &whole.2;
            for (i, &b) in msg.iter().enumerate() {
                if b == b'\r' {
                    assert_eq!(msg.get(i + 1), Some(&b'\n'), "{input:?}");
                }
                if b == b'\n' {
                    assert_eq!(i.checked_sub(1).map(|j| msg[j]), Some(b'\r'), "{input:?}");
                }
            }
        }
    }
}
