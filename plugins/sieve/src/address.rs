//! Addresses in header fields (RFC 5322 §3.4, as far as Sieve needs them) and their
//! parts (RFC 5228 §2.7.4, RFC 5233 subaddress with `+` as separator).

use crate::compile::AddressPart;

/// The addr-specs of an address list: `"Bob" <bob@example.org>, alice@example.net`;
/// group names and comments are dropped.
pub fn parse_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut angle: Option<String> = None;
    let mut in_quote = false;
    let mut comment = 0u32;
    let mut chars = value.chars();
    let flush = |cur: &mut String, angle: &mut Option<String>, out: &mut Vec<String>| {
        let a = match angle.take() {
            Some(a) => a,
            None => cur.split_whitespace().collect::<Vec<_>>().join(""),
        };
        let a = a.trim().to_string();
        if !a.is_empty() {
            out.push(a);
        }
        cur.clear();
    };
    while let Some(c) = chars.next() {
        if in_quote {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                '"' => in_quote = false,
                c => cur.push(c),
            }
            continue;
        }
        if comment > 0 {
            match c {
                '(' => comment += 1,
                ')' => comment -= 1,
                '\\' => {
                    chars.next();
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '(' => comment = 1,
            '<' => {
                let mut a = String::new();
                for c in chars.by_ref() {
                    if c == '>' {
                        break;
                    }
                    a.push(c);
                }
                angle = Some(a);
            }
            // A group's display name: what came before is not an address.
            ':' => cur.clear(),
            ',' | ';' => flush(&mut cur, &mut angle, &mut out),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut angle, &mut out);
    out
}

/// The part of `addr` a test looks at; `None` when it has no such part (`:detail`
/// without a `+`, RFC 5233 §4).
pub fn part(addr: &str, part: AddressPart) -> Option<String> {
    let (local, domain) = match addr.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (addr, ""),
    };
    match part {
        AddressPart::All => Some(addr.to_string()),
        AddressPart::LocalPart => Some(local.to_string()),
        AddressPart::Domain => Some(domain.to_string()),
        AddressPart::User => Some(local.split_once('+').map_or(local, |(u, _)| u).to_string()),
        AddressPart::Detail => local.split_once('+').map(|(_, d)| d.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_parts() {
        assert_eq!(
            parse_list(r#""Bob, B." <bob@example.org>, alice@example.net (Alice), undisclosed:;"#),
            vec!["bob@example.org", "alice@example.net"]
        );
        assert_eq!(parse_list("Team: a@x, b@y;"), vec!["a@x", "b@y"]);
        assert_eq!(
            part("ken+sieve@example.org", AddressPart::User).unwrap(),
            "ken"
        );
        assert_eq!(
            part("ken+sieve@example.org", AddressPart::Detail).unwrap(),
            "sieve"
        );
        assert_eq!(part("ken@example.org", AddressPart::Detail), None);
        assert_eq!(
            part("ken@example.org", AddressPart::Domain).unwrap(),
            "example.org"
        );
        assert_eq!(
            part("ken@example.org", AddressPart::LocalPart).unwrap(),
            "ken"
        );
    }
}
