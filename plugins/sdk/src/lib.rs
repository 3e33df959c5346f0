//! Write nestbox plugins in Rust.
//!
//! A filter is a type implementing [`Filter`] plus one line, [`export_filter!`]:
//!
//! ```ignore
//! use nestbox_plugin_sdk::{Envelope, Filter, Message, Verdict};
//!
//! struct Junk;
//!
//! impl Filter for Junk {
//!     fn filter(_env: Envelope, msg: &Message) -> Verdict {
//!         if msg.header("x-spam-flag").iter().any(|v| v.eq_ignore_ascii_case("yes")) {
//!             return nestbox_plugin_sdk::file_into("Junk", &["$Junk"]);
//!         }
//!         nestbox_plugin_sdk::accept()
//!     }
//! }
//!
//! nestbox_plugin_sdk::export_filter!(Junk);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to configure in `config.ron`.
//! The interface is `wit/nestbox-plugin.wit` of the nestbox repository.

/// The generated bindings of `world filter-plugin`.
#[doc(hidden)]
pub mod filter_bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "filter-plugin",
        pub_export_macro: true,
        export_macro_name: "export_filter_world",
        default_bindings_module: "nestbox_plugin_sdk::filter_bindings",
    });
}

pub use filter_bindings::exports::nestbox::plugin::filter::{
    Delivery, Envelope, Guest as Filter, Verdict,
};
pub use filter_bindings::nestbox::plugin::host::{self, Level};
pub use filter_bindings::nestbox::plugin::types::{Header, Message, Rejection};

/// Exports `$t` (a type implementing [`Filter`]) as the plugin's filter.
#[macro_export]
macro_rules! export_filter {
    ($t:ident) => {
        $crate::filter_bindings::export_filter_world!($t with_types_in $crate::filter_bindings);
    };
}

/// The plugin's setting `key` from `config.ron` (`settings: {"key": "value"}`).
pub fn setting(key: &str) -> Option<String> {
    host::config(key)
}

/// Writes one line to the server log, prefixed with the plugin's name.
pub fn log(level: Level, text: &str) {
    host::log(level, text);
}

/// Deliver unchanged.
pub fn accept() -> Verdict {
    Verdict::Accept(Delivery {
        mailbox: None,
        add_flags: Vec::new(),
    })
}

/// Deliver into `mailbox` (created if missing), adding `flags` (e.g. `"$Junk"`,
/// `"\\Seen"`).
pub fn file_into(mailbox: &str, flags: &[&str]) -> Verdict {
    Verdict::Accept(Delivery {
        mailbox: Some(mailbox.to_string()),
        add_flags: flags.iter().map(|f| f.to_string()).collect(),
    })
}

/// Deliver where it was going, adding `flags`.
pub fn add_flags(flags: &[&str]) -> Verdict {
    Verdict::Accept(Delivery {
        mailbox: None,
        add_flags: flags.iter().map(|f| f.to_string()).collect(),
    })
}

/// Refuse this recipient's copy: `permanent` gives LMTP 550, otherwise 450 (retry).
pub fn reject(permanent: bool, text: &str) -> Verdict {
    Verdict::Reject(Rejection {
        permanent,
        text: text.to_string(),
    })
}

/// Acknowledge and drop silently.
pub fn discard() -> Verdict {
    Verdict::Discard
}

/// The quota world (feature `quota`): implement [`quota::Quota`], then
/// `nestbox_plugin_sdk::export_quota!(MyType);`.
#[cfg(feature = "quota")]
pub mod quota {
    #[doc(hidden)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "quota-plugin",
            pub_export_macro: true,
            export_macro_name: "export_quota_world",
            default_bindings_module: "nestbox_plugin_sdk::quota::bindings",
        });
    }
    pub use bindings::exports::nestbox::plugin::quota::{
        Action, Decision, Guest as Quota, Request,
    };
    pub use bindings::nestbox::plugin::host::{self, Level};
    pub use bindings::nestbox::plugin::types::{
        DiskStatus, Limits, MailboxUsage, Rejection, Usage,
    };

    /// Exports `$t` (implementing [`Quota`]) as the plugin's quota policy.
    #[macro_export]
    macro_rules! export_quota {
        ($t:ident) => {
            $crate::quota::bindings::export_quota_world!($t with_types_in $crate::quota::bindings);
        };
    }
}

/// The retention world (feature `retention`): implement [`retention::Retention`], then
/// `nestbox_plugin_sdk::export_retention!(MyType);`.
#[cfg(feature = "retention")]
pub mod retention {
    #[doc(hidden)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "retention-plugin",
            pub_export_macro: true,
            export_macro_name: "export_retention_world",
            default_bindings_module: "nestbox_plugin_sdk::retention::bindings",
        });
    }
    pub use bindings::exports::nestbox::plugin::retention::{
        Action, Decision, Guest as Retention, MailboxInfo, Summary,
    };
    pub use bindings::nestbox::plugin::host::{self, Level};
    pub use bindings::nestbox::plugin::types::{DiskStatus, Limits, Usage};

    /// Exports `$t` (implementing [`Retention`]) as the plugin's retention rules.
    #[macro_export]
    macro_rules! export_retention {
        ($t:ident) => {
            $crate::retention::bindings::export_retention_world!($t with_types_in $crate::retention::bindings);
        };
    }
}
