"""Files mail that an upstream spam filter marked (`X-Spam-Flag: YES`, or an
`X-Spam-Status` starting with `Yes`) into the Junk folder with the `$Junk` keyword.

The Python twin of plugins/spam-to-junk (Rust): same headers, same tests, same
settings: `folder` (default `Junk`), `keyword` (default `$Junk`).
Build: ./build.sh OUT.wasm (componentize-py, world filter-plugin).
"""

from wit_world import exports
from wit_world.exports.filter import Delivery, Envelope, Verdict, Verdict_Accept
from wit_world.imports import host, types

# The characters Rust's str::trim removes (Unicode White_Space), so that this plugin
# trims exactly like the Rust one.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def is_yes(value: str) -> bool:
    """`yes` in any ASCII case, surrounding whitespace ignored."""
    v = value.strip(WHITESPACE)
    return v.isascii() and v.lower() == "yes"


def starts_with_yes(value: str) -> bool:
    """Starts with `yes` (any ASCII case) not followed by a letter or digit, e.g.
    `Yes, score=7.1` but not `Yesterday`."""
    v = value.strip(WHITESPACE)
    head, after = v[:3], v[3:4]
    if not (head.isascii() and head.lower() == "yes"):
        return False
    return not (after.isascii() and after.isalnum())


def is_spam(msg: types.Message) -> bool:
    return any(is_yes(v) for v in msg.header("X-Spam-Flag")) or any(
        starts_with_yes(v) for v in msg.header("X-Spam-Status")
    )


class Filter(exports.Filter):
    def filter(self, env: Envelope, msg: types.Message) -> Verdict:
        if not is_spam(msg):
            return Verdict_Accept(Delivery(mailbox=None, add_flags=[]))
        folder = host.config("folder")
        keyword = host.config("keyword")
        return Verdict_Accept(
            Delivery(
                mailbox="Junk" if folder is None else folder,
                add_flags=["$Junk" if keyword is None else keyword],
            )
        )
