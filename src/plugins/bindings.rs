//! Host bindings for the three worlds of `wit/nestbox-plugin.wit`.
//!
//! The filter world generates the shared import interfaces (`types` with the `message`
//! resource, and `host`); the quota and retention worlds reuse them (`with:`), so one
//! [`wasmtime::component::Linker`] with the filter world's imports links all three.

#![allow(clippy::all, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::unreachable, missing_docs)]

/// `world filter-plugin`.
pub mod filter {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "filter-plugin",
        with: { "nestbox:plugin/types.message": crate::plugins::message::MessageRes },
    });
}

/// A module of bindings for a world that reuses the filter world's `types` and `host`.
macro_rules! world_sharing_filter_imports {
    ($(#[$doc:meta])* $module:ident, $world:literal) => {
        $(#[$doc])*
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "wit",
                world: $world,
                with: {
                    "nestbox:plugin/types": crate::plugins::bindings::filter::nestbox::plugin::types,
                    "nestbox:plugin/host": crate::plugins::bindings::filter::nestbox::plugin::host,
                },
            });
        }
    };
}

world_sharing_filter_imports!(
    /// `world quota-plugin`.
    quota,
    "quota-plugin"
);
world_sharing_filter_imports!(
    /// `world retention-plugin`.
    retention,
    "retention-plugin"
);
world_sharing_filter_imports!(
    /// `world sieve-plugin` (0.2.0): imports `sieve-host` besides the shared interfaces.
    sieve,
    "sieve-plugin"
);

pub use filter::nestbox::plugin::host::Level;
pub use filter::nestbox::plugin::types as wit_types;
pub use filter::{FilterPlugin, FilterPluginPre};
pub use quota::{QuotaPlugin, QuotaPluginPre};
pub use retention::{RetentionPlugin, RetentionPluginPre};
pub use sieve::nestbox::plugin::sieve_host;
pub use sieve::{SievePlugin, SievePluginPre};

/// Generated types of the exported interfaces, for callers.
pub mod exports {
    pub use super::filter::exports::nestbox::plugin::filter;
    pub use super::quota::exports::nestbox::plugin::quota;
    pub use super::retention::exports::nestbox::plugin::retention;
    pub use super::sieve::exports::nestbox::plugin::sieve;
}
