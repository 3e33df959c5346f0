//! A tiered quota policy: per-user storage and message-count limits with per-user
//! overrides, stricter limits while the server disk is nearly full, and a disk reserve.
//!
//! Settings (all optional; see README.md): `storage_mib`, `messages`,
//! `user.NAME.storage_mib`, `user.NAME.messages` (`none` = no limit),
//! `disk_low_percent` (10), `disk_low_limit_percent` (50), `disk_reserve_mib` (16).

mod policy;

use nestbox_plugin_sdk::quota::{
    Action, Decision, DiskStatus, Level, Limits, Quota, Rejection, Request, Usage, host,
};

struct QuotaTiered;

/// Reads the settings for `user`, logging malformed ones in one warn line.
fn settings(user: &str) -> policy::Settings {
    let s = policy::Settings::read(&|key| host::config(key), user);
    if !s.warnings.is_empty() {
        host::log(
            Level::Warn,
            &format!("ignoring malformed settings: {}", s.warnings.join("; ")),
        );
    }
    s
}

impl Quota for QuotaTiered {
    fn check(req: Request) -> Decision {
        let s = settings(&req.user);
        let kind = match req.action {
            Action::Move => policy::Kind::Move,
            Action::Deliver | Action::Append | Action::Copy | Action::Import => policy::Kind::Adds,
        };
        let r = policy::Request {
            user: &req.user,
            kind,
            size: req.size,
            count: req.count,
            messages: req.total.messages,
            logical_bytes: req.total.logical_bytes,
            disk_free: req.disk.free_bytes,
            disk_total: req.disk.total_bytes,
        };
        match policy::check(&s, &r) {
            policy::Outcome::Allow => Decision::Allow,
            policy::Outcome::Deny { permanent, text } => {
                Decision::Deny(Rejection { permanent, text })
            }
        }
    }

    fn limits(user: String, _total: Usage, disk: DiskStatus) -> Limits {
        let l = settings(&user).limits(disk.free_bytes, disk.total_bytes);
        Limits {
            storage_bytes: l.storage_bytes,
            messages: l.messages,
        }
    }
}

nestbox_plugin_sdk::export_quota!(QuotaTiered);
