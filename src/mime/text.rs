//! The text a search looks at, defined once for SEARCH's matcher (`imap::search`) and
//! the full-text index (`store::fts`), so that the index answers exactly what a scan
//! of the messages would.
//!
//! A search string matches a text when the text, case-folded ([`fold_char`]), contains
//! the folded string (RFC 9051 §6.4.4: string keys are substring matches). The texts
//! of a message, by [`TextKind`]:
//! - the header: the raw header block (the delivery prefix included), and the decoded
//!   value of every field that holds RFC 2047 encoded-words;
//! - one field (From, To, Cc, Bcc, Subject, or any name): each such field's unfolded
//!   raw value and its decoded value;
//! - the body: the raw body with the content of base64-encoded parts cut out (their
//!   encoding is not text anyone searches for), and the decoded text of every `text/*`
//!   part (transfer encoding removed, charset converted).
//!
//! The index keeps the *words* of these texts: maximal runs of alphanumeric characters,
//! folded ([`terms`]). A search string that is one such run (no space or punctuation)
//! is in a text exactly when it is inside one of its words, so the index alone answers
//! it; any other string is in a text only if each of its runs is inside a word, so
//! the index narrows the messages and the text confirms.

use mail_parser::decoders::charsets::map::charset_decoder;

use super::{BodyPart, MessageMeta, PartKind, header_fields, unfold};

/// Which texts of a message a search key looks at; the index keeps its words apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKind {
    Body = 0,
    /// The whole header (SEARCH TEXT, and HEADER with a name not below).
    Header = 1,
    From = 2,
    To = 3,
    Cc = 4,
    Bcc = 5,
    Subject = 6,
}

/// How many [`TextKind`]s there are.
pub const KINDS: usize = 7;

/// The kinds SEARCH TEXT looks at: the whole header and the body.
pub const TEXT_KINDS: [TextKind; 7] = [
    TextKind::Header,
    TextKind::From,
    TextKind::To,
    TextKind::Cc,
    TextKind::Bcc,
    TextKind::Subject,
    TextKind::Body,
];

/// The kinds whose words together are the header's words (the index keeps a header
/// word under [`TextKind::Header`] only when no field kind of that message has it):
/// [`TEXT_KINDS`] without the body.
pub const HEADER_KINDS: &[TextKind] = TEXT_KINDS.split_at(6).0;

/// The fields with words of their own in the index.
const FIELDS: [(&str, TextKind); 5] = [
    ("from", TextKind::From),
    ("to", TextKind::To),
    ("cc", TextKind::Cc),
    ("bcc", TextKind::Bcc),
    ("subject", TextKind::Subject),
];

impl TextKind {
    /// The kind of a field name (ASCII case-insensitive), when it has one.
    pub fn of_field(name: &[u8]) -> Option<TextKind> {
        FIELDS
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, k)| k)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// This kind alone, as a slice.
    pub fn alone(self) -> &'static [TextKind] {
        match self {
            TextKind::Body => &[TextKind::Body],
            TextKind::Header => &[TextKind::Header],
            TextKind::From => &[TextKind::From],
            TextKind::To => &[TextKind::To],
            TextKind::Cc => &[TextKind::Cc],
            TextKind::Bcc => &[TextKind::Bcc],
            TextKind::Subject => &[TextKind::Subject],
        }
    }
}

/// Folds one character for comparison: ASCII letters lower-cased; Latin, Greek and
/// Cyrillic letters without their accents (the first character of the canonical
/// decomposition when the rest are accents: é -> e, ñ -> n, U+212A KELVIN SIGN -> K),
/// then Unicode lower-cased; an accent on its own (Combining Diacritical Marks) folds to
/// nothing; final sigma folds to sigma. Other scripts are only lower-cased: their marks
/// (Japanese voicing, Indic and Thai vowel signs) tell words apart.
pub fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    if is_accent(c) {
        return;
    }
    let base = if has_accents_to_drop(c) { strip(c) } else { c };
    for l in base.to_lowercase() {
        if !is_accent(l) {
            out.push(if l == 'ς' { 'σ' } else { l });
        }
    }
}

/// Latin (with its extended blocks and the Kelvin and Angstrom signs), Greek and
/// Cyrillic: the scripts whose accents searching ignores.
fn has_accents_to_drop(c: char) -> bool {
    matches!(c, '\u{80}'..='\u{52F}' | '\u{1E00}'..='\u{1FFF}' | '\u{212A}' | '\u{212B}')
}

/// The combining marks searching ignores: the diacritical marks blocks.
fn is_accent(c: char) -> bool {
    matches!(
        c,
        '\u{300}'..='\u{36F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// `c` without its accents: the first character of its canonical decomposition when
/// all the others are accents, else `c`.
fn strip(c: char) -> char {
    let mut first = None;
    let mut only_accents = true;
    unicode_normalization::char::decompose_canonical(c, |d| {
        if first.is_none() {
            first = Some(d);
        } else if !is_accent(d) {
            only_accents = false;
        }
    });
    match first {
        Some(f) if only_accents => f,
        _ => c,
    }
}

fn is_combining_mark(c: char) -> bool {
    unicode_normalization::char::is_combining_mark(c)
}

/// Whether `c` belongs to a word: letters and digits, and combining marks (a mark
/// written as a character of its own does not split the word it sits in).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// A text folded character by character ([`fold_char`]); invalid UTF-8 is replaced.
pub fn fold(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// Whether `hay` contains `needle` after folding both (see the module text). When both
/// are ASCII this is a byte-wise comparison with ASCII case folding, without a copy.
/// The empty needle matches.
pub fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if !needle.is_ascii() || !hay.is_ascii() {
        return fold(hay).contains(&fold(needle));
    }
    let Some(&first) = needle.first() else {
        return true;
    };
    // Jump to each place the first byte occurs, in either case, and compare from there.
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, hay).any(|at| {
        hay.get(at..at.saturating_add(needle.len()))
            .is_some_and(|w| w.len() == needle.len() && w.eq_ignore_ascii_case(needle))
    })
}

/// Calls `f` with each word of `text`: a maximal run of alphanumeric characters,
/// folded. Invalid UTF-8 separates words.
pub fn terms(text: &[u8], f: &mut dyn FnMut(&str)) {
    let mut word = String::new();
    if text.is_ascii() {
        for &b in text {
            if b.is_ascii_alphanumeric() {
                word.push(char::from(b.to_ascii_lowercase()));
            } else if !word.is_empty() {
                f(&word);
                word.clear();
            }
        }
    } else {
        for c in String::from_utf8_lossy(text).chars() {
            if is_word_char(c) {
                fold_char(c, &mut word);
            } else if !word.is_empty() {
                f(&word);
                word.clear();
            }
        }
    }
    if !word.is_empty() {
        f(&word);
    }
}

/// Whether `needle` is one word as [`terms`] reads it (word characters only, and at
/// least one letter or digit): the index answers such a string alone.
pub fn is_one_word(needle: &[u8]) -> bool {
    match std::str::from_utf8(needle) {
        Ok(s) => s.chars().all(is_word_char) && s.chars().any(char::is_alphanumeric),
        Err(_) => false,
    }
}

/// A field value with RFC 2047 encoded-words decoded; `None` when there is nothing to
/// decode (no `=?`).
fn decoded_field(value: &[u8]) -> Option<String> {
    memchr::memmem::find(value, b"=?").map(|_| super::header::decoded(value))
}

/// The texts of the header (see the module text); stops when `f` returns true and
/// then returns true.
pub fn header_texts(header: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    if f(header) {
        return true;
    }
    header_fields(header).any(|field| decoded_field(field.value).is_some_and(|d| f(d.as_bytes())))
}

/// The texts of every field called `name` (ASCII case-insensitive): its unfolded raw
/// value and its decoded value. Stops when `f` returns true and then returns true.
pub fn field_texts(header: &[u8], name: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    header_fields(header)
        .filter(|field| field.name.eq_ignore_ascii_case(name))
        .any(|field| {
            f(&unfold(field.value)) || decoded_field(field.value).is_some_and(|d| f(d.as_bytes()))
        })
}

/// The texts of the body: `raw` is the whole message as stored (a prefix of
/// `prefix_len` bytes, then the blob that `meta` describes). Stops when `f` returns
/// true and then returns true.
pub fn body_texts(
    raw: &[u8],
    prefix_len: usize,
    meta: &MessageMeta,
    f: &mut dyn FnMut(&[u8]) -> bool,
) -> bool {
    let at = |offset: u64| {
        usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .saturating_add(prefix_len)
            .min(raw.len())
    };
    let mut leaves: Vec<&BodyPart> = Vec::new();
    visit_leaves(&meta.body, 0, &mut |part| leaves.push(part));
    // The raw body, without the content of base64 parts.
    let mut cuts: Vec<(usize, usize)> = leaves
        .iter()
        .filter(|p| p.encoding.eq_ignore_ascii_case(b"base64"))
        .map(|p| (at(p.header_end), at(p.body_end)))
        .collect();
    cuts.sort_unstable();
    let mut from = at(meta.body.header_end);
    for (start, end) in cuts {
        if start > from && f(raw.get(from..start).unwrap_or_default()) {
            return true;
        }
        from = from.max(end);
    }
    if from < raw.len() && f(raw.get(from..).unwrap_or_default()) {
        return true;
    }
    // The decoded text of text parts.
    leaves.iter().any(|part| {
        if !part.media_type.eq_ignore_ascii_case(b"text") {
            return false;
        }
        let (start, end) = (at(part.header_end), at(part.body_end));
        let Some(bytes) = raw.get(start..end.max(start)) else {
            return false;
        };
        let Ok(decoded) = super::cte::decode(&part.encoding, bytes) else {
            return false;
        };
        let charset = part
            .params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(b"charset"))
            .map(|p| p.value.as_slice());
        match charset.and_then(charset_decoder) {
            Some(decode) => f(decode(&decoded).as_bytes()),
            None => f(&decoded),
        }
    })
}

fn visit_leaves<'a>(part: &'a BodyPart, depth: usize, f: &mut dyn FnMut(&'a BodyPart)) {
    if depth > super::MAX_DEPTH {
        return;
    }
    match &part.kind {
        PartKind::Single => f(part),
        PartKind::Multipart { children, .. } => {
            for c in children {
                visit_leaves(c, depth.saturating_add(1), f);
            }
        }
        PartKind::Message { body, .. } => visit_leaves(body, depth.saturating_add(1), f),
    }
}

/// Every word of a message by kind, for the index: `header` is the header block (prefix
/// included); with `body` (the whole message, its prefix length and the structure of
/// the blob after the prefix) also the words of the whole header and of the body, else
/// only those of the fields with a kind of their own.
pub fn message_terms(
    header: &[u8],
    body: Option<(&[u8], usize, &MessageMeta)>,
    f: &mut dyn FnMut(TextKind, &str),
) {
    for (name, kind) in FIELDS {
        field_texts(header, name.as_bytes(), &mut |text| {
            terms(text, &mut |t| f(kind, t));
            false
        });
    }
    let Some((raw, prefix_len, meta)) = body else {
        return;
    };
    header_texts(header, &mut |text| {
        terms(text, &mut |t| f(TextKind::Header, t));
        false
    });
    body_texts(raw, prefix_len, meta, &mut |text| {
        terms(text, &mut |t| f(TextKind::Body, t));
        false
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        terms(text.as_bytes(), &mut |t| out.push(t.to_string()));
        out
    }

    #[test]
    fn words_are_folded_runs_of_letters_and_digits() {
        assert_eq!(words("Hello, World-42!"), ["hello", "world", "42"]);
        assert_eq!(words("Été à Zürich"), ["ete", "a", "zurich"]);
        // An accent written as a mark of its own stays in its word, and folds away.
        assert_eq!(words("cafe\u{301}s"), ["cafes"]);
        // Hangul syllables are not split into jamo, kana keep their voicing.
        assert_eq!(words("서울에서"), ["서울에서"]);
        assert_eq!(words("て\u{3099}で"), ["て\u{3099}で"]);
        assert_eq!(words("ΟΔΟΣ"), ["οδοσ"]);
        // CJK has no spaces: a run is one word, and a search string inside it is found
        // by substring.
        assert_eq!(words("東京で会議。明日"), ["東京で会議", "明日"]);
        assert_eq!(
            words("\u{212A}elvin İstanbul Ñandú"),
            ["kelvin", "istanbul", "nandu"]
        );
    }

    #[test]
    fn contains_folds_the_same_way_as_words() {
        assert!(contains_ci(b"Hello World", b"WORLD"));
        assert!(contains_ci("ÉTÉ".as_bytes(), "été".as_bytes()));
        assert!(contains_ci("ÉTÉ".as_bytes(), b"ete"));
        assert!(contains_ci(b"cafe", "CAFÉ".as_bytes()));
        assert!(contains_ci("ΟΔΟΣ ΟΔΟΣΟ".as_bytes(), "οδοσ".as_bytes()));
        assert!(contains_ci("\u{212A}elvin".as_bytes(), b"kelvin"));
        assert!(!contains_ci("café".as_bytes(), b"cafes"));
        assert!(contains_ci(b"anything", b""));
        assert!(is_one_word("東京".as_bytes()));
        assert!(is_one_word(b"abc42"));
        assert!(!is_one_word(b"a b"));
        assert!(!is_one_word(b""));
    }
}
