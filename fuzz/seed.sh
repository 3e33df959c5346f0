#!/usr/bin/env bash
# Seeds the session fuzz targets with the client side of the transcripts: one input per
# transcript (tests/imap/*.txt -> fuzz/corpus/imap_session, tests/pop3/*.txt ->
# fuzz/corpus/pop3_session), its `C:` lines joined with CRLF after a mode byte of 0x00
# (the target logs in first) and cut at the targets' 4 KiB input limit; for IMAP also
# one input per command line, so short commands of every extension are in the corpus,
# and the same lines (without the mode byte) seed the grammar target
# (fuzz/corpus/imap_grammar).
#
#   fuzz/seed.sh        then   cargo +nightly fuzz run -s none -a imap_session ...
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import glob, os
for proto, target in (("imap", "imap_session"), ("pop3", "pop3_session")):
    out = os.path.join("corpus", target)
    os.makedirs(out, exist_ok=True)
    n = 0
    for path in sorted(glob.glob(f"../tests/{proto}/*.txt")):
        lines = [l[3:].rstrip("\n") for l in open(path, encoding="utf-8", errors="replace")
                 if l.startswith("C: ")]
        lines = [l for l in lines if "LOGIN" not in l and "<<" not in l and "<$" not in l]
        data = b"\x00" + "".join(l + "\r\n" for l in lines).encode()[:4096]
        name = os.path.basename(path).removesuffix(".txt")
        open(os.path.join(out, f"seed-{name}"), "wb").write(data)
        n += 1
        if proto == "imap":
            grammar = os.path.join("corpus", "imap_grammar")
            os.makedirs(grammar, exist_ok=True)
            for i, l in enumerate(lines):
                open(os.path.join(out, f"seed-{name}-{i}"), "wb").write(
                    b"\x00" + (l + "\r\n").encode()[:4096])
                open(os.path.join(grammar, f"seed-{name}-{i}"), "wb").write(
                    (l + "\r\n").encode()[:4096])
                n += 1
    print(f"{target}: {n} seeds in {out}")
PY
