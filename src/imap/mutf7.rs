//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3; RFC 9051 Appendix A), strict: malformed
//! input is refused rather than repaired (PROTOCOL.md 1.3 item 37).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn value(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|c| *c == b).map(|p| p as u32)
}

/// Decodes a modified UTF-7 name. `None` for anything malformed: 8-bit or control bytes,
/// an unterminated or empty shift, leftover bits, broken surrogates, printable ASCII
/// needlessly encoded, or two encoded runs back to back.
pub fn decode(input: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    let mut last_was_encoded = false;
    while let Some(&b) = input.get(i) {
        if !(0x20..=0x7e).contains(&b) {
            return None;
        }
        if b != b'&' {
            out.push(char::from(b));
            i += 1;
            last_was_encoded = false;
            continue;
        }
        let rest = input.get(i + 1..)?;
        let end = rest.iter().position(|c| *c == b'-')?;
        let run = rest.get(..end)?;
        i += end + 2;
        if run.is_empty() {
            out.push('&');
            last_was_encoded = false;
            continue;
        }
        if last_was_encoded {
            return None;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0u32;
        let mut units: Vec<u16> = Vec::new();
        for c in run {
            bits = (bits << 6) | value(*c)?;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push(((bits >> nbits) & 0xFFFF) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        if nbits >= 6 || bits != 0 || units.is_empty() {
            return None;
        }
        let text: String = char::decode_utf16(units.iter().copied())
            .collect::<Result<_, _>>()
            .ok()?;
        if text.chars().any(|c| (' '..='~').contains(&c)) {
            return None;
        }
        out.push_str(&text);
        last_was_encoded = true;
    }
    Some(out)
}

/// Encodes a name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let mut bits: u32 = 0;
        let mut nbits = 0u32;
        for u in pending.drain(..) {
            bits = (bits << 16) | u32::from(u);
            nbits += 16;
            while nbits >= 6 {
                nbits -= 6;
                let idx = ((bits >> nbits) & 0x3F) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            }
            bits &= (1 << nbits) - 1;
        }
        if nbits > 0 {
            let idx = ((bits << (6 - nbits)) & 0x3F) as usize;
            out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
        }
        out.push('-');
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (utf8, m7) in [
            ("INBOX", "INBOX"),
            ("a&b", "a&-b"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("台北", "&U,BTFw-"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("😀", "&2D3eAA-"),
        ] {
            assert_eq!(encode(utf8), m7);
            assert_eq!(decode(m7.as_bytes()).as_deref(), Some(utf8), "{m7}");
        }
    }

    #[test]
    fn malformed_is_refused() {
        let refused: &[&str] = &[
            "&",
            "&U,BTFw",
            "&AGE-",              // "a" needlessly encoded
            "&U,BTFw-&ZeVnLIqe-", // two runs back to back
            "&2D0-",              // lone surrogate
            "&U,BTF-",            // leftover bits
            "&U,BTFx-",           // non-zero padding
            "a\u{e9}",            // 8-bit
            "&!!-",
        ];
        crate::testing::assert_refused(|bad: &str| decode(bad.as_bytes()), refused);
    }
}
