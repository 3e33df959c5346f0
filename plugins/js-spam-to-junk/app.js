// Files mail that an upstream spam filter marked (`X-Spam-Flag: YES`, or an
// `X-Spam-Status` starting with `Yes`) into the Junk folder with the `$Junk` keyword.
//
// The JavaScript twin of plugins/spam-to-junk (Rust): same headers, same tests, same
// settings: `folder` (default `Junk`), `keyword` (default `$Junk`).
// Build: ./build.sh OUT.wasm (componentize-js, world filter-plugin).

import { config } from "nestbox:plugin/host@0.2.0";

// The characters Rust's str::trim removes (Unicode White_Space), so that this plugin
// trims exactly like the Rust one (String.prototype.trim differs: U+FEFF, U+0085).
const WHITESPACE =
  "\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005" +
  "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";

function trim(s) {
  let start = 0;
  let end = s.length;
  while (start < end && WHITESPACE.includes(s[start])) start++;
  while (end > start && WHITESPACE.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

// `yes` in any ASCII case (toLowerCase would also fold non-ASCII letters).
function isAsciiYes(s) {
  return /^[yY][eE][sS]$/.test(s);
}

// `yes` in any ASCII case, surrounding whitespace ignored.
function isYes(value) {
  return isAsciiYes(trim(value));
}

// Starts with `yes` (any ASCII case) not followed by a letter or digit, e.g.
// `Yes, score=7.1` but not `Yesterday`.
function startsWithYes(value) {
  const v = trim(value);
  return isAsciiYes(v.slice(0, 3)) && !/^[A-Za-z0-9]/.test(v.slice(3, 4));
}

function isSpam(msg) {
  return (
    msg.header("X-Spam-Flag").some(isYes) ||
    msg.header("X-Spam-Status").some(startsWithYes)
  );
}

export const filter = {
  filter(env, msg) {
    if (!isSpam(msg)) {
      return { tag: "accept", val: { mailbox: undefined, addFlags: [] } };
    }
    const folder = config("folder");
    const keyword = config("keyword");
    return {
      tag: "accept",
      val: {
        mailbox: folder ?? "Junk",
        addFlags: [keyword ?? "$Junk"],
      },
    };
  },
};
