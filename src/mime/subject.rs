//! Base subject extraction (RFC 5256 §2.1), shared by SORT SUBJECT and both THREAD
//! algorithms. Pure: a decoded subject in, the base subject out.

/// The base subject of `subject` (already RFC 2047-decoded, RFC 5256 §2.1 step 1), and
/// whether extraction removed a reply or forward marker (`re:`, `fw:`, `fwd:`, a
/// `(fwd)` trailer or a `[fwd: ...]` wrapper): THREAD=REFERENCES step 5 needs that.
///
/// The result keeps its case; SORT and THREAD compare it with the `i;ascii-casemap`
/// collation (RFC 5256 §2.2).
pub fn base_subject(subject: &str) -> (String, bool) {
    // Step 1: runs of whitespace (folding included) become one space.
    let mut s = String::with_capacity(subject.len());
    for word in subject.split([' ', '\t', '\r', '\n']) {
        if word.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(word);
    }
    let mut reply = false;
    loop {
        // Step 2: trailing `(fwd)` and whitespace.
        loop {
            let t = s.trim_end();
            let cut = t.len();
            if let Some(head) = strip_suffix_ci(t, "(fwd)") {
                reply = true;
                s.truncate(head.len());
            } else if cut != s.len() {
                s.truncate(cut);
            } else {
                break;
            }
        }
        // Steps 3-5: leaders (`re:`, `[blob] fwd:`, whitespace) and blobs, repeated.
        loop {
            let before = s.len();
            if let Some(rest) = strip_leader(&s) {
                reply = true;
                s = rest.to_string();
            } else if s.starts_with(' ') {
                s = s.trim_start().to_string();
            }
            // Step 4: a leading blob goes unless nothing would be left.
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest.to_string();
            }
            if s.len() == before {
                break;
            }
        }
        // Step 6: `[fwd: ... ]` wraps the whole subject.
        match s
            .get(..5)
            .filter(|h| h.eq_ignore_ascii_case("[fwd:"))
            .and_then(|_| s.strip_suffix(']'))
            .and_then(|inner| inner.get(5..))
        {
            Some(inner) => {
                reply = true;
                s = inner.to_string();
            }
            None => return (s, reply),
        }
    }
}

/// `subj-refwd` after any blobs: `*subj-blob ("re" / "fw" / "fwd") *WSP [subj-blob] ":"`;
/// the rest after the colon, or `None`.
fn strip_leader(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    let lower = rest
        .get(..3)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let after = if lower == "fwd" {
        rest.get(3..)?
    } else if lower.starts_with("re") || lower.starts_with("fw") {
        rest.get(2..)?
    } else {
        return None;
    };
    let mut after = after.trim_start_matches(' ');
    if let Some(r) = strip_blob(after) {
        after = r;
    }
    after.strip_prefix(':')
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`; the rest, or `None`.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find([']', '['])?;
    let rest = inner.get(end..)?.strip_prefix(']')?;
    Some(rest.trim_start_matches(' '))
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix)
        .then(|| s.get(..cut))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_per_rfc_5256() {
        for (input, base, reply) in [
            ("Hello", "Hello", false),
            ("Re: Hello", "Hello", true),
            ("RE: re: Hello", "Hello", true),
            ("Fwd: Hello", "Hello", true),
            ("fw: Hello", "Hello", true),
            ("Re [2]: Hello", "Hello", true),
            ("[list] Re: Hello", "Hello", true),
            ("[list] Hello", "Hello", false),
            ("[list]", "[list]", false),
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd)  ", "Hello", true),
            ("[Fwd: Re: Hello]", "Hello", true),
            ("  Hello \t  world  ", "Hello world", false),
            ("Re:", "", true),
            ("", "", false),
            ("Reply to all", "Reply to all", false),
            ("Résumé", "Résumé", false),
            ("[a][b] Re: [c] Fw: x", "x", true),
        ] {
            assert_eq!(base_subject(input), (base.to_string(), reply), "{input:?}");
        }
    }
}
