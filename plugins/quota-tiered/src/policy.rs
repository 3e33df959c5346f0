//! The decision logic of quota-tiered, free of wasm bindings so that `cargo test` runs
//! it on the host.

/// One MiB in bytes.
const MIB: u64 = 1 << 20;

/// The kind of request, as far as the policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Deliver, append, copy, import: the user's usage grows.
    Adds,
    /// MOVE between the user's own mailboxes: the total does not grow, so it is always
    /// allowed (otherwise a user over quota could not move mail to Trash to free space).
    Move,
}

/// What `check` gets, in plain types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub user: &'a str,
    pub kind: Kind,
    /// Octets about to be added.
    pub size: u64,
    /// Messages about to be added.
    pub count: u64,
    /// Usage before the request.
    pub messages: u64,
    pub logical_bytes: u64,
    pub disk_free: u64,
    pub disk_total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny { permanent: bool, text: String },
}

/// Effective limits for one user; `None` = no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Limits {
    pub storage_bytes: Option<u64>,
    pub messages: Option<u64>,
    /// The limits were scaled down because the disk is nearly full.
    pub disk_low: bool,
}

/// The settings, read through `get` (the host's `config`). Malformed values are reported
/// in `warnings` and treated as absent (defaults apply).
pub struct Settings {
    pub storage_mib: Option<u64>,
    pub messages: Option<u64>,
    pub disk_low_percent: u64,
    pub disk_low_limit_percent: u64,
    pub disk_reserve_mib: u64,
    pub warnings: Vec<String>,
}

/// A value that is either a number or `none` (no limit).
enum Limit {
    Absent,
    Unlimited,
    Value(u64),
}

impl Settings {
    /// Reads the settings that apply to `user`: the global limits, overridden by
    /// `user.NAME.storage_mib` / `user.NAME.messages`. The host only looks keys up, so
    /// NAME is tried as given and then in lower case: write it in lower case in
    /// config.ron to match the login name in any case.
    pub fn read(get: &dyn Fn(&str) -> Option<String>, user: &str) -> Settings {
        let mut warnings = Vec::new();
        let limit = |key: &str, warnings: &mut Vec<String>| match get(key) {
            None => Limit::Absent,
            Some(v) => {
                let t = v.trim();
                if t.eq_ignore_ascii_case("none") {
                    Limit::Unlimited
                } else if let Some(n) = parse_u64(t) {
                    Limit::Value(n)
                } else {
                    warnings.push(format!("{key}={v:?} is not a number or \"none\""));
                    Limit::Absent
                }
            }
        };
        let lower = user.to_lowercase();
        let mut names = vec![user];
        if lower != user {
            names.push(&lower);
        }
        let resource = |what: &str, warnings: &mut Vec<String>| {
            for name in &names {
                match limit(&format!("user.{name}.{what}"), warnings) {
                    Limit::Absent => continue,
                    Limit::Unlimited => return None,
                    Limit::Value(n) => return Some(n),
                }
            }
            match limit(what, warnings) {
                Limit::Value(n) => Some(n),
                Limit::Absent | Limit::Unlimited => None,
            }
        };
        let storage_mib = resource("storage_mib", &mut warnings);
        let messages = resource("messages", &mut warnings);
        let mut number = |key: &str, default: u64, max: u64| match get(key) {
            None => default,
            Some(v) => match parse_u64(v.trim()) {
                Some(n) if n <= max => n,
                _ => {
                    warnings.push(format!(
                        "{key}={v:?} is not a number from 0 to {max}, using {default}"
                    ));
                    default
                }
            },
        };
        let disk_low_percent = number("disk_low_percent", 10, 100);
        let disk_low_limit_percent = number("disk_low_limit_percent", 50, 100);
        let disk_reserve_mib = number("disk_reserve_mib", 16, u64::MAX >> 20);
        Settings {
            storage_mib,
            messages,
            disk_low_percent,
            disk_low_limit_percent,
            disk_reserve_mib,
            warnings,
        }
    }

    /// True when the disk's free bytes are below `disk_low_percent` of its total. An
    /// unknown disk (total 0) is never low.
    pub fn disk_low(&self, free: u64, total: u64) -> bool {
        total > 0 && u128::from(free) * 100 < u128::from(total) * u128::from(self.disk_low_percent)
    }

    /// The effective limits, scaled to `disk_low_limit_percent` when the disk is low.
    pub fn limits(&self, disk_free: u64, disk_total: u64) -> Limits {
        let low = self.disk_low(disk_free, disk_total);
        let scale = |n: u64| {
            if low {
                let v = u128::from(n) * u128::from(self.disk_low_limit_percent) / 100;
                u64::try_from(v).unwrap_or(u64::MAX)
            } else {
                n
            }
        };
        Limits {
            storage_bytes: self.storage_mib.map(|m| scale(m.saturating_mul(MIB))),
            messages: self.messages.map(scale),
            disk_low: low,
        }
    }
}

/// Digits only (no sign, no `+`), at most u64.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Bytes as MiB with one decimal, e.g. `12.5`.
fn mib(bytes: u64) -> String {
    let tenths = (u128::from(bytes) * 10 + u128::from(MIB) / 2) / u128::from(MIB);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// How one resource fares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Fits,
    WouldCross,
    Full,
}

fn judge(before: u64, add: u64, limit: Option<u64>) -> Verdict {
    let Some(limit) = limit else {
        return Verdict::Fits;
    };
    if u128::from(before) + u128::from(add) <= u128::from(limit) {
        Verdict::Fits
    } else if before >= limit || add > limit {
        Verdict::Full
    } else {
        Verdict::WouldCross
    }
}

/// The quota decision for `req` under `settings`.
pub fn check(settings: &Settings, req: &Request) -> Outcome {
    if req.kind == Kind::Move {
        return Outcome::Allow;
    }
    // The disk reserve applies to everyone, limits or not.
    if req.disk_total > 0
        && req.disk_free.saturating_sub(req.size) < settings.disk_reserve_mib.saturating_mul(MIB)
    {
        return Outcome::Deny {
            permanent: false,
            text: "disk nearly full, try again later".into(),
        };
    }
    let limits = settings.limits(req.disk_free, req.disk_total);
    let storage = judge(req.logical_bytes, req.size, limits.storage_bytes);
    let messages = judge(req.messages, req.count, limits.messages);
    let worst = storage.max(messages);
    if worst == Verdict::Fits {
        return Outcome::Allow;
    }
    let reduced = if limits.disk_low {
        " (limit reduced while the server disk is nearly full)"
    } else {
        ""
    };
    // Describe the resource that decided (storage first when both are equally bad).
    let text = if storage == worst {
        let limit = limits.storage_bytes.unwrap_or(0);
        if worst == Verdict::Full {
            format!(
                "mailbox full: {} of {} MiB used{reduced}",
                mib(req.logical_bytes),
                mib(limit)
            )
        } else {
            format!(
                "near the limit: {} of {} MiB used, this message needs {} MiB more{reduced}",
                mib(req.logical_bytes),
                mib(limit),
                mib(req.size)
            )
        }
    } else {
        let limit = limits.messages.unwrap_or(0);
        if worst == Verdict::Full {
            format!(
                "mailbox full: {} of {limit} messages{reduced}",
                req.messages
            )
        } else {
            format!(
                "near the limit: {} of {limit} messages, {} more do not fit{reduced}",
                req.messages, req.count
            )
        }
    };
    Outcome::Deny {
        permanent: worst == Verdict::Full,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const GIB: u64 = 1 << 30;

    fn settings(pairs: &[(&str, &str)], user: &str) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::read(&|k| map.get(k).cloned(), user)
    }

    /// A request on a roomy disk (100 GiB, half free).
    fn req(user: &str, bytes: u64, msgs: u64, size: u64, count: u64) -> Request<'_> {
        Request {
            user,
            kind: Kind::Adds,
            size,
            count,
            messages: msgs,
            logical_bytes: bytes,
            disk_free: 50 * GIB,
            disk_total: 100 * GIB,
        }
    }

    fn deny(o: &Outcome) -> (bool, &str) {
        match o {
            Outcome::Deny { permanent, text } => (*permanent, text),
            Outcome::Allow => panic!("allowed"),
        }
    }

    #[test]
    fn no_settings_no_limits() {
        let s = settings(&[], "alice");
        assert!(s.warnings.is_empty());
        assert_eq!(
            s.limits(50 * GIB, 100 * GIB),
            Limits {
                storage_bytes: None,
                messages: None,
                disk_low: false
            }
        );
        assert_eq!(
            check(&s, &req("alice", 99 * GIB, 1 << 40, GIB, 1)),
            Outcome::Allow
        );
    }

    #[test]
    fn storage_allow_up_to_the_limit_inclusive() {
        let s = settings(&[("storage_mib", "10")], "alice");
        assert_eq!(check(&s, &req("alice", 9 * MIB, 0, MIB, 1)), Outcome::Allow);
        assert_eq!(check(&s, &req("alice", 0, 0, 10 * MIB, 1)), Outcome::Allow);
    }

    #[test]
    fn storage_full_is_permanent() {
        let s = settings(&[("storage_mib", "10")], "alice");
        let o = check(&s, &req("alice", 10 * MIB, 3, 1, 1));
        assert_eq!(deny(&o), (true, "mailbox full: 10.0 of 10.0 MiB used"));
        let o = check(&s, &req("alice", 11 * MIB, 3, 1, 1));
        assert!(deny(&o).0);
    }

    #[test]
    fn a_message_larger_than_the_limit_is_permanent() {
        let s = settings(&[("storage_mib", "10")], "alice");
        let o = check(&s, &req("alice", 0, 0, 10 * MIB + 1, 1));
        assert!(deny(&o).0, "{o:?}");
    }

    #[test]
    fn crossing_the_limit_is_temporary() {
        let s = settings(&[("storage_mib", "10")], "alice");
        let o = check(&s, &req("alice", 9 * MIB, 0, 2 * MIB, 1));
        let (permanent, text) = deny(&o);
        assert!(!permanent);
        assert!(
            text.starts_with("near the limit: 9.0 of 10.0 MiB used"),
            "{text}"
        );
    }

    #[test]
    fn message_count_branches() {
        let s = settings(&[("messages", "100")], "alice");
        assert_eq!(check(&s, &req("alice", 0, 99, 10, 1)), Outcome::Allow);
        assert_eq!(check(&s, &req("alice", 0, 50, 10, 50)), Outcome::Allow);
        let o = check(&s, &req("alice", 0, 100, 10, 1));
        assert_eq!(deny(&o), (true, "mailbox full: 100 of 100 messages"));
        let o = check(&s, &req("alice", 0, 0, 10, 101));
        assert!(deny(&o).0);
        let o = check(&s, &req("alice", 0, 90, 10, 20));
        let (permanent, text) = deny(&o);
        assert!(!permanent);
        assert_eq!(
            text,
            "near the limit: 90 of 100 messages, 20 more do not fit"
        );
    }

    #[test]
    fn worst_resource_decides() {
        let s = settings(&[("storage_mib", "10"), ("messages", "100")], "alice");
        // Storage would cross (temporary), messages full (permanent): permanent.
        let o = check(&s, &req("alice", 9 * MIB, 100, 2 * MIB, 1));
        let (permanent, text) = deny(&o);
        assert!(permanent);
        assert!(text.contains("messages"), "{text}");
        // Both full: storage is described.
        let o = check(&s, &req("alice", 10 * MIB, 100, 1, 1));
        assert!(deny(&o).1.contains("MiB"));
        // Storage fine, messages crossing: temporary.
        let o = check(&s, &req("alice", 0, 99, 1, 2));
        assert!(!deny(&o).0);
    }

    #[test]
    fn per_user_overrides_and_none() {
        let pairs = [
            ("storage_mib", "10"),
            ("messages", "100"),
            ("user.bob.storage_mib", "1000"),
            ("user.carol.storage_mib", "none"),
            ("user.carol.messages", "NONE"),
        ];
        let alice = settings(&pairs, "alice");
        assert_eq!(alice.storage_mib, Some(10));
        let bob = settings(&pairs, "bob");
        assert_eq!((bob.storage_mib, bob.messages), (Some(1000), Some(100)));
        assert_eq!(
            check(&bob, &req("bob", 500 * MIB, 0, MIB, 1)),
            Outcome::Allow
        );
        let carol = settings(&pairs, "carol");
        assert_eq!((carol.storage_mib, carol.messages), (None, None));
        assert!(carol.warnings.is_empty());
        assert_eq!(
            check(&carol, &req("carol", 50 * GIB, 1 << 30, MIB, 1)),
            Outcome::Allow
        );
    }

    #[test]
    fn user_names_match_case_insensitively_via_lower_case_keys() {
        let pairs = [("storage_mib", "10"), ("user.bob.storage_mib", "20")];
        assert_eq!(settings(&pairs, "Bob").storage_mib, Some(20));
        assert_eq!(settings(&pairs, "BOB").storage_mib, Some(20));
        // An exact-case key wins over the lower-case one.
        let pairs = [
            ("user.Bob.storage_mib", "30"),
            ("user.bob.storage_mib", "20"),
        ];
        assert_eq!(settings(&pairs, "Bob").storage_mib, Some(30));
    }

    #[test]
    fn malformed_numbers_warn_and_count_as_absent() {
        let pairs = [
            ("storage_mib", "ten"),
            ("messages", "-5"),
            ("user.bob.storage_mib", "1e3"),
            ("disk_low_percent", "150"),
            ("disk_low_limit_percent", "x"),
            ("disk_reserve_mib", " "),
        ];
        let s = settings(&pairs, "bob");
        assert_eq!(s.storage_mib, None);
        assert_eq!(s.messages, None);
        assert_eq!(s.disk_low_percent, 10);
        assert_eq!(s.disk_low_limit_percent, 50);
        assert_eq!(s.disk_reserve_mib, 16);
        assert_eq!(s.warnings.len(), 6, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("user.bob.storage_mib"));
        // A malformed override falls back to the global value.
        let s = settings(
            &[("storage_mib", "10"), ("user.bob.storage_mib", "?")],
            "bob",
        );
        assert_eq!(s.storage_mib, Some(10));
        assert_eq!(s.warnings.len(), 1);
        // Whitespace around a number is fine.
        let s = settings(&[("storage_mib", " 7 ")], "bob");
        assert_eq!(s.storage_mib, Some(7));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn disk_low_scales_every_limit() {
        let s = settings(&[("storage_mib", "100"), ("messages", "1000")], "alice");
        // 5% free of 100 GiB: below the default 10%.
        let l = s.limits(5 * GIB, 100 * GIB);
        assert_eq!(
            l,
            Limits {
                storage_bytes: Some(50 * MIB),
                messages: Some(500),
                disk_low: true
            }
        );
        // Exactly 10% free is not low.
        assert!(!s.limits(10 * GIB, 100 * GIB).disk_low);
        let mut r = req("alice", 60 * MIB, 0, MIB, 1);
        r.disk_free = 5 * GIB;
        let o = check(&s, &r);
        let (permanent, text) = deny(&o);
        assert!(permanent);
        assert!(
            text.ends_with("(limit reduced while the server disk is nearly full)"),
            "{text}"
        );
        // Custom thresholds.
        let s = settings(
            &[
                ("storage_mib", "100"),
                ("disk_low_percent", "60"),
                ("disk_low_limit_percent", "25"),
            ],
            "alice",
        );
        assert_eq!(s.limits(50 * GIB, 100 * GIB).storage_bytes, Some(25 * MIB));
        // An unknown disk (total 0) is never low.
        assert!(!s.limits(0, 0).disk_low);
    }

    #[test]
    fn disk_reserve_denies_everyone_temporarily() {
        let s = settings(&[], "alice");
        let mut r = req("alice", 0, 0, MIB, 1);
        r.disk_free = 16 * MIB;
        let o = check(&s, &r);
        assert_eq!(deny(&o), (false, "disk nearly full, try again later"));
        r.disk_free = 17 * MIB;
        assert_eq!(check(&s, &r), Outcome::Allow);
        let s = settings(&[("disk_reserve_mib", "0")], "alice");
        r.disk_free = 0;
        r.size = 0;
        assert_eq!(check(&s, &r), Outcome::Allow);
        // Unknown disk: no reserve check.
        let s = settings(&[], "alice");
        r.disk_total = 0;
        assert_eq!(check(&s, &r), Outcome::Allow);
    }

    #[test]
    fn move_is_always_allowed() {
        let s = settings(&[("storage_mib", "1")], "alice");
        let mut r = req("alice", 50 * MIB, 0, 10 * MIB, 1);
        r.kind = Kind::Move;
        r.disk_free = 0;
        assert_eq!(check(&s, &r), Outcome::Allow);
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let max = u64::MAX.to_string();
        let s = settings(
            &[
                ("storage_mib", &max),
                ("messages", &max),
                ("disk_reserve_mib", "0"),
            ],
            "alice",
        );
        let l = s.limits(1, 100);
        assert_eq!(l.storage_bytes, Some(u64::MAX / 2));
        let r = Request {
            user: "alice",
            kind: Kind::Adds,
            size: u64::MAX,
            count: u64::MAX,
            messages: u64::MAX,
            logical_bytes: u64::MAX,
            disk_free: u64::MAX,
            disk_total: u64::MAX,
        };
        let o = check(&s, &r);
        assert!(deny(&o).0);
        assert!(parse_u64("18446744073709551616").is_none());
    }

    #[test]
    fn texts_are_printable_ascii_one_line() {
        let s = settings(&[("storage_mib", "10"), ("messages", "5")], "alice");
        for r in [
            req("alice", 10 * MIB, 0, 1, 1),
            req("alice", 9 * MIB, 0, 2 * MIB, 1),
            req("alice", 0, 5, 1, 1),
            req("alice", 0, 4, 1, 2),
        ] {
            let o = check(&s, &r);
            let t = deny(&o).1;
            assert!(t.bytes().all(|b| (0x20..0x7f).contains(&b)), "{t:?}");
        }
    }

    #[test]
    fn mib_formatting() {
        assert_eq!(mib(0), "0.0");
        assert_eq!(mib(MIB / 2), "0.5");
        assert_eq!(mib(1536 * 1024), "1.5");
        assert_eq!(mib(u64::MAX), "17592186044416.0");
    }
}
