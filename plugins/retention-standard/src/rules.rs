//! The rules of retention-standard, free of wasm bindings so that `cargo test` runs them
//! on the host.

use std::collections::HashSet;

const DAY: i128 = 86_400;

/// The mailbox under review, in plain types.
pub struct Mailbox<'a> {
    /// Full name, `/` delimiter.
    pub name: &'a str,
    pub special_use: Option<&'a str>,
    pub annotations: &'a [(String, String)],
    pub disk_free: u64,
    pub disk_total: u64,
}

/// One message summary, in plain types.
pub struct Msg<'a> {
    pub uid: u32,
    pub internal_date: i64,
    pub save_date: i64,
    pub flags: &'a [String],
    pub pop3_retrieved: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    Expunge,
    MoveTo(String),
}

/// A day count: `None` = off (keep forever).
type Days = Option<u64>;

/// The settings that apply to one mailbox, read through `get` (the host's `config`).
/// Malformed values are reported in `warnings` and treated as absent (defaults apply).
#[derive(Debug)]
pub struct Settings {
    /// Max age by INTERNALDATE: annotation, else `max_age_days.MAILBOX`, else
    /// `default_max_age_days`.
    pub max_age: Days,
    /// Max age by SAVEDATE in this mailbox: `trash_days` for `\Trash`, `junk_days` for
    /// `\Junk`, off elsewhere.
    pub saved_max_age: Days,
    pub keep_flagged: bool,
    pub pop3: Days,
    /// `archive.MAILBOX`: (days, target).
    pub archive: Option<(u64, String)>,
    /// The disk is low: every day count above was already scaled.
    pub disk_low: bool,
    pub warnings: Vec<String>,
}

/// Digits only (no sign), at most u64.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A day count or `off`/`none`/`never`; `Err` when malformed.
fn parse_days(v: &str) -> Result<Days, ()> {
    let t = v.trim();
    if ["off", "none", "never"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        return Ok(None);
    }
    parse_u64(t).map(Some).ok_or(())
}

fn parse_bool(v: &str) -> Option<bool> {
    let t = v.trim();
    if ["true", "yes", "on", "1"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        Some(true)
    } else if ["false", "no", "off", "0"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        Some(false)
    } else {
        None
    }
}

fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// Same mailbox? INBOX is case-insensitive, every other name exact.
fn same_mailbox(a: &str, b: &str) -> bool {
    a == b || (is_inbox(a) && is_inbox(b))
}

impl Settings {
    pub fn read(get: &dyn Fn(&str) -> Option<String>, mbox: &Mailbox) -> Settings {
        let mut warnings = Vec::new();
        // Per-mailbox keys: the name as given, and `INBOX` for any spelling of it.
        let per_mailbox = |prefix: &str| -> Option<(String, String)> {
            let mut names = vec![mbox.name.to_string()];
            if is_inbox(mbox.name) && mbox.name != "INBOX" {
                names.push("INBOX".into());
            }
            names.into_iter().find_map(|n| {
                let key = format!("{prefix}.{n}");
                get(&key).map(|v| (key, v))
            })
        };
        let mut days = |key: &str, value: Option<String>, default: Days| match value {
            None => default,
            Some(v) => parse_days(&v).unwrap_or_else(|()| {
                warnings.push(format!("{key}={v:?} is not a number of days or \"off\""));
                default
            }),
        };

        let default_max_age = days("default_max_age_days", get("default_max_age_days"), None);
        let mut max_age = match per_mailbox("max_age_days") {
            Some((key, v)) => days(&key, Some(v), default_max_age),
            None => default_max_age,
        };
        let annotation = mbox
            .annotations
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("/private/retention"));
        if let Some((_, v)) = annotation {
            max_age = days("annotation /private/retention", Some(v.clone()), max_age);
        }
        let special = mbox.special_use.unwrap_or("");
        let saved_max_age = if special.eq_ignore_ascii_case("\\Trash") {
            days("trash_days", get("trash_days"), Some(30))
        } else if special.eq_ignore_ascii_case("\\Junk") {
            days("junk_days", get("junk_days"), Some(30))
        } else {
            None
        };
        let pop3 = days("pop3_days", get("pop3_days"), None);
        let archive = match per_mailbox("archive") {
            None => None,
            Some((key, v)) => {
                let parsed = v
                    .trim()
                    .split_once(|c: char| c.is_ascii_whitespace())
                    .and_then(|(n, target)| {
                        let target = target.trim();
                        parse_u64(n)
                            .filter(|_| !target.is_empty())
                            .map(|n| (n, target.to_string()))
                    });
                match parsed {
                    None => {
                        warnings.push(format!("{key}={v:?} is not \"DAYS TARGET\""));
                        None
                    }
                    Some((_, target)) if same_mailbox(&target, mbox.name) => {
                        warnings.push(format!(
                            "{key}={v:?} names the mailbox itself; not archiving"
                        ));
                        None
                    }
                    parsed => parsed,
                }
            }
        };

        let keep_flagged = match get("keep_flagged") {
            None => true,
            Some(v) => parse_bool(&v).unwrap_or_else(|| {
                warnings.push(format!("keep_flagged={v:?} is not true or false"));
                true
            }),
        };

        let mut percent = |key: &str, default: u64| match get(key) {
            None => default,
            Some(v) => match parse_u64(v.trim()) {
                Some(n) if n <= 100 => n,
                _ => {
                    warnings.push(format!(
                        "{key}={v:?} is not a number from 0 to 100, using {default}"
                    ));
                    default
                }
            },
        };
        let low_percent = percent("disk_low_percent", 10);
        let factor = percent("disk_low_factor_percent", 50);
        let disk_low = mbox.disk_total > 0
            && u128::from(mbox.disk_free) * 100
                < u128::from(mbox.disk_total) * u128::from(low_percent);

        let mut s = Settings {
            max_age,
            saved_max_age,
            keep_flagged,
            pop3,
            archive,
            disk_low,
            warnings,
        };
        if disk_low {
            let scale = |d: u64| {
                if d == 0 {
                    0
                } else {
                    let v = u128::from(d) * u128::from(factor) / 100;
                    u64::try_from(v).unwrap_or(u64::MAX).max(1)
                }
            };
            s.max_age = s.max_age.map(scale);
            s.saved_max_age = s.saved_max_age.map(scale);
            s.pop3 = s.pop3.map(scale);
            if let Some((d, _)) = &mut s.archive {
                *d = scale(*d);
            }
        }
        s
    }
}

/// Older than `days` at `now`? Zero days matches everything (also dates in the future).
fn older(now: i64, date: i64, days: u64) -> bool {
    days == 0 || i128::from(now) - i128::from(date) > i128::from(days) * DAY
}

/// The decisions for one batch: at most one per UID, only for UIDs in the batch, no move
/// into the mailbox under review.
pub fn review(s: &Settings, mbox: &Mailbox, now: i64, batch: &[Msg]) -> Vec<(u32, Act)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for m in batch {
        if !seen.insert(m.uid) {
            continue;
        }
        if s.keep_flagged && m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Flagged")) {
            continue;
        }
        let expunge = s.max_age.is_some_and(|d| older(now, m.internal_date, d))
            || s.saved_max_age.is_some_and(|d| older(now, m.save_date, d))
            || s.pop3
                .is_some_and(|d| m.pop3_retrieved.is_some_and(|t| older(now, t, d)));
        if expunge {
            out.push((m.uid, Act::Expunge));
            continue;
        }
        if let Some((days, target)) = &s.archive
            && !same_mailbox(target, mbox.name)
            && older(now, m.internal_date, *days)
        {
            out.push((m.uid, Act::MoveTo(target.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const NOW: i64 = 1_800_000_000;
    const D: i64 = 86_400;
    const GIB: u64 = 1 << 30;

    fn mbox<'a>(
        name: &'a str,
        special: Option<&'a str>,
        ann: &'a [(String, String)],
    ) -> Mailbox<'a> {
        Mailbox {
            name,
            special_use: special,
            annotations: ann,
            disk_free: 50 * GIB,
            disk_total: 100 * GIB,
        }
    }

    fn settings(pairs: &[(&str, &str)], mb: &Mailbox) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::read(&|k| map.get(k).cloned(), mb)
    }

    /// A message with internal date and save date `age` days (plus one second) ago.
    fn msg(uid: u32, age_days: i64, flags: &[String]) -> Msg<'_> {
        Msg {
            uid,
            internal_date: NOW - age_days * D - 1,
            save_date: NOW - age_days * D - 1,
            flags,
            pop3_retrieved: None,
        }
    }

    fn run(pairs: &[(&str, &str)], mb: &Mailbox, batch: &[Msg]) -> Vec<(u32, Act)> {
        let s = settings(pairs, mb);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        review(&s, mb, NOW, batch)
    }

    fn uids(d: &[(u32, Act)]) -> Vec<u32> {
        d.iter().map(|(u, _)| *u).collect()
    }

    #[test]
    fn nothing_configured_keeps_everything_outside_trash_and_junk() {
        let mb = mbox("INBOX", None, &[]);
        let s = settings(&[], &mb);
        assert_eq!(s.max_age, None);
        assert_eq!(s.saved_max_age, None);
        assert_eq!(s.pop3, None);
        assert!(s.keep_flagged);
        assert!(review(&s, &mb, NOW, &[msg(1, 10_000, &[])]).is_empty());
    }

    #[test]
    fn per_mailbox_max_age_and_default() {
        let pairs = [
            ("max_age_days.Lists/rust", "30"),
            ("default_max_age_days", "365"),
        ];
        let lists = mbox("Lists/rust", None, &[]);
        let batch = [msg(1, 29, &[]), msg(2, 30, &[]), msg(3, 400, &[])];
        let d = run(&pairs, &lists, &batch);
        assert_eq!(d, vec![(2, Act::Expunge), (3, Act::Expunge)]);
        let other = mbox("Lists/go", None, &[]);
        assert_eq!(uids(&run(&pairs, &other, &batch)), vec![3]);
        // `off` for one mailbox overrides the default.
        let pairs = [("max_age_days.Keep", "off"), ("default_max_age_days", "1")];
        assert!(run(&pairs, &mbox("Keep", None, &[]), &batch).is_empty());
    }

    #[test]
    fn age_is_strictly_greater_than_days() {
        let mb = mbox("A", None, &[]);
        let s = settings(&[("max_age_days.A", "1")], &mb);
        let f: [String; 0] = [];
        let exact = Msg {
            uid: 1,
            internal_date: NOW - D,
            save_date: NOW,
            flags: &f,
            pop3_retrieved: None,
        };
        let older = Msg {
            uid: 2,
            internal_date: NOW - D - 1,
            ..exact
        };
        assert_eq!(uids(&review(&s, &mb, NOW, &[exact, older])), vec![2]);
    }

    #[test]
    fn inbox_keys_match_any_spelling() {
        let pairs = [("max_age_days.INBOX", "1")];
        assert_eq!(
            uids(&run(&pairs, &mbox("inbox", None, &[]), &[msg(1, 5, &[])])),
            vec![1]
        );
    }

    #[test]
    fn trash_and_junk_by_save_date() {
        let trash = mbox("Trash", Some("\\Trash"), &[]);
        let junk = mbox("Spam", Some("\\junk"), &[]);
        let f: [String; 0] = [];
        // Saved 31 days ago, internal date recent: expunged (save date counts).
        let m = |uid, saved_days_ago: i64| Msg {
            uid,
            internal_date: NOW,
            save_date: NOW - saved_days_ago * D - 1,
            flags: &f,
            pop3_retrieved: None,
        };
        assert_eq!(uids(&run(&[], &trash, &[m(1, 29), m(2, 30)])), vec![2]);
        assert_eq!(uids(&run(&[], &junk, &[m(1, 29), m(2, 30)])), vec![2]);
        assert_eq!(
            uids(&run(&[("trash_days", "7")], &trash, &[m(1, 6), m(2, 7)])),
            vec![2]
        );
        assert!(run(&[("trash_days", "off")], &trash, &[m(1, 999)]).is_empty());
        assert!(run(&[("junk_days", "OFF")], &junk, &[m(1, 999)]).is_empty());
        // junk_days does not apply to Trash and vice versa.
        assert_eq!(
            uids(&run(&[("junk_days", "0")], &trash, &[m(1, 1)])),
            Vec::<u32>::new()
        );
        // No special-use, named Trash: not a trash mailbox.
        assert!(run(&[], &mbox("Trash", None, &[]), &[m(1, 999)]).is_empty());
    }

    #[test]
    fn zero_days_means_everything() {
        let trash = mbox("Trash", Some("\\Trash"), &[]);
        let f: [String; 0] = [];
        let now_saved = Msg {
            uid: 1,
            internal_date: NOW + 10, // even a date in the future
            save_date: NOW + 10,
            flags: &f,
            pop3_retrieved: None,
        };
        assert_eq!(
            uids(&run(&[("trash_days", "0")], &trash, &[now_saved])),
            vec![1]
        );
    }

    #[test]
    fn keep_flagged() {
        let flagged = ["\\Seen".to_string(), "\\flagged".to_string()];
        let mb = mbox("A", None, &[]);
        let batch = [msg(1, 100, &flagged), msg(2, 100, &[])];
        let pairs = [("max_age_days.A", "1"), ("archive.A", "1 Archive")];
        assert_eq!(uids(&run(&pairs, &mb, &batch)), vec![2]);
        let pairs = [("max_age_days.A", "1"), ("keep_flagged", "false")];
        assert_eq!(uids(&run(&pairs, &mb, &batch)), vec![1, 2]);
        let pairs = [("archive.A", "1 Archive"), ("keep_flagged", "no")];
        assert_eq!(
            run(&pairs, &mb, &batch),
            vec![
                (1, Act::MoveTo("Archive".into())),
                (2, Act::MoveTo("Archive".into()))
            ]
        );
        // Flagged survives Trash too.
        let trash = mbox("Trash", Some("\\Trash"), &[]);
        assert_eq!(uids(&run(&[("trash_days", "0")], &trash, &batch)), vec![2]);
    }

    #[test]
    fn pop3_days() {
        let mb = mbox("INBOX", None, &[]);
        let f: [String; 0] = [];
        let m = |uid, retrieved: Option<i64>| Msg {
            uid,
            internal_date: NOW,
            save_date: NOW,
            flags: &f,
            pop3_retrieved: retrieved,
        };
        let batch = [
            m(1, None),
            m(2, Some(NOW - 2 * D - 1)),
            m(3, Some(NOW - D)),
            m(4, Some(NOW)),
        ];
        // Default off.
        assert!(run(&[], &mb, &batch).is_empty());
        assert_eq!(uids(&run(&[("pop3_days", "1")], &mb, &batch)), vec![2]);
        assert_eq!(
            uids(&run(&[("pop3_days", "0")], &mb, &batch)),
            vec![2, 3, 4]
        );
        assert!(run(&[("pop3_days", "off")], &mb, &batch).is_empty());
    }

    #[test]
    fn archive_moves_old_mail_and_expunge_wins() {
        let mb = mbox("INBOX", None, &[]);
        let pairs = [
            ("archive.INBOX", "365 Archive/2025"),
            ("max_age_days.INBOX", "1000"),
        ];
        let batch = [msg(1, 10, &[]), msg(2, 365, &[]), msg(3, 1000, &[])];
        assert_eq!(
            run(&pairs, &mb, &batch),
            vec![(2, Act::MoveTo("Archive/2025".into())), (3, Act::Expunge)]
        );
        // Targets with spaces, extra whitespace.
        let pairs = [("archive.INBOX", "  30   Old mail  ")];
        assert_eq!(
            run(&pairs, &mb, &[msg(1, 31, &[])]),
            vec![(1, Act::MoveTo("Old mail".into()))]
        );
        // Other mailboxes are not archived.
        assert!(run(&pairs, &mbox("Sent", None, &[]), &[msg(1, 99, &[])]).is_empty());
    }

    #[test]
    fn never_moves_into_itself() {
        let mb = mbox("INBOX", None, &[]);
        let s = settings(&[("archive.INBOX", "1 inbox")], &mb);
        assert_eq!(s.archive, None);
        assert_eq!(s.warnings.len(), 1);
        assert!(review(&s, &mb, NOW, &[msg(1, 10, &[])]).is_empty());
        let mb = mbox("Archive", None, &[]);
        let s = settings(&[("archive.Archive", "1 Archive")], &mb);
        assert!(review(&s, &mb, NOW, &[msg(1, 10, &[])]).is_empty());
        // Even a hand-made Settings never moves into the reviewed mailbox.
        let s = Settings {
            max_age: None,
            saved_max_age: None,
            keep_flagged: true,
            pop3: None,
            archive: Some((0, "Archive".into())),
            disk_low: false,
            warnings: vec![],
        };
        assert!(review(&s, &mb, NOW, &[msg(1, 10, &[])]).is_empty());
    }

    #[test]
    fn annotation_overrides_max_age() {
        let ann = [("/private/retention".to_string(), "7".to_string())];
        let mb = mbox("Lists/rust", None, &ann);
        let pairs = [("max_age_days.Lists/rust", "365")];
        let batch = [msg(1, 6, &[]), msg(2, 7, &[])];
        assert_eq!(uids(&run(&pairs, &mb, &batch)), vec![2]);
        // `off` in the annotation keeps forever despite the default.
        let ann = [("/PRIVATE/retention".to_string(), "off".to_string())];
        let mb = mbox("A", None, &ann);
        assert!(run(&[("default_max_age_days", "1")], &mb, &batch).is_empty());
        // Other annotations are ignored.
        let ann = [("/private/comment".to_string(), "1".to_string())];
        assert!(run(&[], &mbox("A", None, &ann), &batch).is_empty());
        // A malformed annotation warns and leaves the configured age.
        let ann = [("/private/retention".to_string(), "a week".to_string())];
        let mb = mbox("A", None, &ann);
        let s = settings(&[("max_age_days.A", "6")], &mb);
        assert_eq!(s.max_age, Some(6));
        assert_eq!(s.warnings.len(), 1);
    }

    #[test]
    fn disk_low_scales_every_day_count() {
        let mut mb = mbox("INBOX", Some("\\Trash"), &[]);
        mb.disk_free = 5 * GIB; // 5% free
        let pairs = [
            ("max_age_days.INBOX", "100"),
            ("trash_days", "1"),
            ("pop3_days", "0"),
            ("archive.INBOX", "31 Archive"),
        ];
        let s = settings(&pairs, &mb);
        assert!(s.disk_low);
        assert_eq!(s.max_age, Some(50));
        assert_eq!(s.saved_max_age, Some(1)); // at least one day
        assert_eq!(s.pop3, Some(0)); // zero stays zero
        assert_eq!(s.archive, Some((15, "Archive".into()))); // rounded down
        let pairs = [
            ("max_age_days.INBOX", "100"),
            ("disk_low_percent", "60"),
            ("disk_low_factor_percent", "10"),
        ];
        mb.disk_free = 50 * GIB;
        let s = settings(&pairs, &mb);
        assert!(s.disk_low);
        assert_eq!(s.max_age, Some(10));
        // Exactly at the threshold, and an unknown disk: not low.
        mb.disk_free = 10 * GIB;
        assert!(!settings(&[], &mb).disk_low);
        mb.disk_free = 0;
        mb.disk_total = 0;
        assert!(!settings(&[], &mb).disk_low);
    }

    #[test]
    fn malformed_settings_warn_and_take_defaults() {
        let mb = mbox("Trash", Some("\\Trash"), &[]);
        let pairs = [
            ("max_age_days.Trash", "-1"),
            ("default_max_age_days", "x"),
            ("trash_days", "thirty"),
            ("keep_flagged", "maybe"),
            ("pop3_days", "1.5"),
            ("archive.Trash", "soon Archive"),
            ("disk_low_percent", "101"),
            ("disk_low_factor_percent", ""),
        ];
        let s = settings(&pairs, &mb);
        assert_eq!(s.warnings.len(), 8, "{:#?}", s.warnings);
        assert_eq!(s.max_age, None);
        assert_eq!(s.saved_max_age, Some(30));
        assert!(s.keep_flagged);
        assert_eq!(s.pop3, None);
        assert_eq!(s.archive, None);
        for bad in ["365", "Archive", "", "365 "] {
            let s = settings(&[("archive.Trash", bad)], &mb);
            assert_eq!(s.archive, None, "{bad:?}");
            assert_eq!(s.warnings.len(), 1, "{bad:?}: {:?}", s.warnings);
        }
    }

    #[test]
    fn only_batch_uids_once_each() {
        let mb = mbox("A", None, &[]);
        let batch = [msg(5, 10, &[]), msg(5, 10, &[]), msg(9, 10, &[])];
        assert_eq!(
            uids(&run(&[("max_age_days.A", "1")], &mb, &batch)),
            vec![5, 9]
        );
        assert!(run(&[("max_age_days.A", "1")], &mb, &[]).is_empty());
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mb = mbox("A", None, &[]);
        let max = u64::MAX.to_string();
        let f: [String; 0] = [];
        let m = Msg {
            uid: 1,
            internal_date: i64::MIN,
            save_date: i64::MIN,
            flags: &f,
            pop3_retrieved: Some(i64::MIN),
        };
        let s = settings(&[("max_age_days.A", &max), ("pop3_days", &max)], &mb);
        assert!(review(&s, &mb, i64::MAX, &[m]).is_empty());
        let s = settings(&[("max_age_days.A", "1")], &mb);
        let m = Msg {
            uid: 1,
            internal_date: i64::MIN,
            save_date: i64::MIN,
            flags: &f,
            pop3_retrieved: None,
        };
        assert_eq!(review(&s, &mb, i64::MAX, &[m]).len(), 1);
    }
}
