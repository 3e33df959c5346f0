//! Content-Transfer-Encoding removal (RFC 2045 §6), as robust as RFC 2045 asks decoders
//! to be: mail that was mangled on its way (a list footer appended to a base64 part, a
//! bad `=` escape in quoted-printable) still decodes to what can be read of it, for
//! `BINARY` (RFC 3516), body search and PREVIEW. Only an encoding we do not know fails.

use std::borrow::Cow;

/// The part's Content-Transfer-Encoding is not one of RFC 2045's (`x-uuencode`, say):
/// `BINARY` answers `NO [UNKNOWN-CTE]` (RFC 3516 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCte;

/// `body` with its Content-Transfer-Encoding `encoding` removed.
pub fn decode<'b>(encoding: &[u8], body: &'b [u8]) -> Result<Cow<'b, [u8]>, UnknownCte> {
    let is = |name: &str| encoding.eq_ignore_ascii_case(name.as_bytes());
    if is("7bit") || is("8bit") || is("binary") {
        Ok(Cow::Borrowed(body))
    } else if is("base64") {
        Ok(Cow::Owned(base64(body)))
    } else if is("quoted-printable") {
        Ok(Cow::Owned(quoted_printable(body)))
    } else {
        Err(UnknownCte)
    }
}

/// What a byte is to the base64 decoder: its digit value (0 to 63, RFC 2045 §6.8,
/// Table 1), or one of the classes below.
const PAD: u8 = 64;
const LINE_END: u8 = 65;
const SPACE: u8 = 66;
const OTHER: u8 = 67;

const fn class(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => b.wrapping_sub(b'A'),
        b'a'..=b'z' => b.wrapping_sub(b'a').wrapping_add(26),
        b'0'..=b'9' => b.wrapping_sub(b'0').wrapping_add(52),
        b'+' => 62,
        b'/' => 63,
        b'=' => PAD,
        b'\n' => LINE_END,
        b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c' => SPACE,
        _ => OTHER,
    }
}

/// [`class`] of every byte, looked up once per byte of a base64 body.
#[allow(clippy::indexing_slicing)] // built at compile time: an index out of range fails the build
static CLASSES: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0u8;
    loop {
        t[b as usize] = class(b);
        if b == u8::MAX {
            break t;
        }
        b = b.wrapping_add(1);
    }
};

/// Decodes base64 (RFC 2045 §6.8): characters outside the alphabet (line ends, spaces,
/// anything else) are ignored, and the first `=` ends the data ("the occurrence of any
/// '=' characters may be taken as evidence that the end of the data has been
/// reached"). Text appended to unpadded data (a mailing list footer) is not base64
/// either: once data has been read, an empty line, or a line with anything but base64
/// digits and white space, ends it. An incomplete last group gives the whole bytes it
/// holds. One pass: a line found not to be data is taken back.
pub fn base64(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity((body.len() / 4).saturating_mul(3).saturating_add(3));
    let (mut acc, mut n) = (0u32, 0u8);
    // Where the current line began: (output length, group, digits in it).
    let mut line_start = (0usize, 0u32, 0u8);
    // Data was read on an earlier line; this line has digits, other characters, a `=`.
    let (mut started, mut digits, mut junk, mut padded) = (false, false, false, false);
    // The end of the body ends its last line too.
    for &b in body.iter().chain(std::iter::once(&b'\n')) {
        let c = CLASSES.get(usize::from(b)).copied().unwrap_or(OTHER);
        if c < PAD {
            if padded {
                continue;
            }
            digits = true;
            acc = (acc << 6) | u32::from(c);
            n = n.wrapping_add(1);
            if n == 4 {
                let [_, b1, b2, b3] = acc.to_be_bytes();
                out.extend_from_slice(&[b1, b2, b3]);
                (acc, n) = (0, 0);
            }
            continue;
        }
        match c {
            LINE_END => {
                if started && (junk || !digits) {
                    (acc, n) = (line_start.1, line_start.2);
                    out.truncate(line_start.0);
                    break;
                }
                if padded {
                    break;
                }
                started |= digits;
                line_start = (out.len(), acc, n);
                (digits, junk) = (false, false);
            }
            // The rest of a padded line is only looked at: is it data at all?
            PAD => padded = true,
            OTHER => junk = true,
            _ => {}
        }
    }
    // 2 digits hold one byte (12 bits), 3 hold two (18 bits); a lone digit holds none.
    let [_, _, x, y] = acc.to_be_bytes();
    let [_, _, p, q] = (acc >> 2).to_be_bytes();
    match n {
        2 => out.push(x << 4 | y >> 4),
        3 => out.extend_from_slice(&[p, q]),
        _ => {}
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b.wrapping_sub(b'0')),
        b'A'..=b'F' => Some(b.wrapping_sub(b'A').wrapping_add(10)),
        // RFC 2045 §6.7 (1): lower case is not allowed, but a robust decoder reads it.
        b'a'..=b'f' => Some(b.wrapping_sub(b'a').wrapping_add(10)),
        _ => None,
    }
}

/// Decodes quoted-printable (RFC 2045 §6.7):
/// - `=XX` is the byte XX (hex, either case);
/// - `=` at the end of a line, white space allowed after it, is a soft line break;
/// - white space at the end of a line is dropped (rule 3: transports add it);
/// - a `=` followed by anything else stays as it is, with what follows (note 2's
///   suggestion), and every other byte passes through.
///
/// Line ends are CRLF or a bare LF, and come out as they were.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let (text, end): (&[u8], &[u8]) = match line.strip_suffix(b"\r\n") {
            Some(t) => (t, b"\r\n"),
            None => match line.strip_suffix(b"\n") {
                Some(t) => (t, b"\n"),
                None => (line, b""),
            },
        };
        let text = text.trim_ascii_end();
        let (text, soft) = match text.strip_suffix(b"=") {
            Some(t) => (t, true),
            None => (text, false),
        };
        let mut i = 0;
        while let Some(&b) = text.get(i) {
            if b == b'='
                && let (Some(h), Some(l)) = (
                    text.get(i.wrapping_add(1)).copied().and_then(hex),
                    text.get(i.wrapping_add(2)).copied().and_then(hex),
                )
            {
                out.push(h << 4 | l);
                i = i.wrapping_add(3);
                continue;
            }
            out.push(b);
            i = i.wrapping_add(1);
        }
        if !soft {
            out.extend_from_slice(end);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a robust decoder reads (RFC 2045 §6.7, §6.8): (encoding, body, decoded).
    #[test]
    fn damaged_bodies_decode_to_what_can_be_read() {
        let table: &[(&str, &[u8], &[u8])] = &[
            ("base64", b"aGk=\r\n", b"hi"),
            ("BASE64", b"aGVs\r\nbG8=", b"hello"),
            ("base64", b"aGVsbG8gd29ybGQ=", b"hello world"),
            ("base64", b"", b""),
            ("base64", b"\r\n", b""),
            // Unpadded groups: 3 digits, 2 digits, a lone digit.
            ("base64", b"aGk", b"hi"),
            ("base64", b"aA", b"h"),
            ("base64", b"a", b""),
            // Stray characters in a line are ignored; a list footer is not decoded,
            // after the padding or after unpadded data.
            ("base64", b"aG k=", b"hi"),
            ("base64", b"a.G-k", b"hi"),
            ("base64", b"aGk=\r\n\r\n_____\r\nSign up now\r\n", b"hi"),
            ("base64", b"aGVs\r\nbG8h\r\n\r\nFooter\r\n", b"hello!"),
            ("base64", b"aGVs\r\nbG8h\r\n-----\r\nabcd\r\n", b"hello!"),
            ("base64", b"\r\n\r\naGVs\r\nbG8h\r\n", b"hello!"),
            ("base64", b"aGVs\r\nPrice = $5\r\n", b"hel"),
            ("base64", b"aGVs\r\nbG8h\r\nFooter, no line end", b"hello!"),
            ("quoted-printable", b"a=3Db=\r\nc", b"a=bc"),
            ("Quoted-Printable", b"caf=C3=A9\r\n", b"caf\xc3\xa9\r\n"),
            ("quoted-printable", b"lower =c3=a9", b"lower \xc3\xa9"),
            // Trailing white space is dropped, also after a soft break's `=`.
            ("quoted-printable", b"end  \r\nnext", b"end\r\nnext"),
            ("quoted-printable", b"soft= \t\r\nbreak", b"softbreak"),
            ("quoted-printable", b"bare\nlf=\nx", b"bare\nlfx"),
            // A bad escape stays as written.
            ("quoted-printable", b"=so =vs 100%=", b"=so =vs 100%"),
            ("quoted-printable", b"=3", b"=3"),
            ("quoted-printable", b"a=\r\n", b"a"),
            ("quoted-printable", b"", b""),
            ("quoted-printable", b"\xff8bit", b"\xff8bit"),
            ("8bit", b"\xff", b"\xff"),
            ("binary", b"\x00", b"\x00"),
        ];
        for (encoding, body, want) in table {
            let got = decode(encoding.as_bytes(), body);
            assert_eq!(
                got.as_deref(),
                Ok(*want),
                "{encoding} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn only_unknown_encodings_fail() {
        assert_eq!(decode(b"x-uuencode", b"begin").as_deref(), Err(&UnknownCte));
    }
}
