//! Files mail that an upstream spam filter marked (`X-Spam-Flag: YES`, or an
//! `X-Spam-Status` starting with `Yes`) into the Junk folder with the `$Junk` keyword.
//!
//! Settings: `folder` (default `Junk`), `keyword` (default `$Junk`).

use nestbox_plugin_sdk::{Envelope, Filter, Message, Verdict, accept, file_into, setting};

struct SpamToJunk;

fn is_spam(msg: &Message) -> bool {
    let yes = |v: &str, prefix_ok: bool| {
        let v = v.trim();
        if prefix_ok {
            v.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("yes"))
                && !v
                    .get(3..4)
                    .is_some_and(|c| c.chars().all(|c| c.is_ascii_alphanumeric()))
        } else {
            v.eq_ignore_ascii_case("yes")
        }
    };
    msg.header("X-Spam-Flag").iter().any(|v| yes(v, false))
        || msg.header("X-Spam-Status").iter().any(|v| yes(v, true))
}

impl Filter for SpamToJunk {
    fn filter(_env: Envelope, msg: &Message) -> Verdict {
        if !is_spam(msg) {
            return accept();
        }
        let folder = setting("folder").unwrap_or_else(|| "Junk".into());
        let keyword = setting("keyword").unwrap_or_else(|| "$Junk".into());
        file_into(&folder, &[keyword.as_str()])
    }
}

nestbox_plugin_sdk::export_filter!(SpamToJunk);
