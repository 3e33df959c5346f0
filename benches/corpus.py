"""The benchmark corpus as the bench scripts use it (imported by nb_gen_mbox in
benches/common.sh and by benches/churn.sh)."""
import os


def without_message_id(corpus):
    """Each message of the folder `corpus` (sorted by file name) as (file name, text with
    LF line ends ending in LF), its Message-ID header dropped with its folded continuation
    lines: the caller gives every copy a fresh one, so no copy is byte-identical to
    another and content dedup cannot hide the cost."""
    out = []
    for name in sorted(os.listdir(corpus)):
        with open(os.path.join(corpus, name), 'rb') as f:
            raw = f.read().replace(b'\r\n', b'\n')
        head, sep, body = raw.partition(b'\n\n')
        if not sep:
            head, body = raw.rstrip(b'\n'), b''
        lines, skip = [], False
        for line in head.split(b'\n'):
            if skip and line[:1] in (b' ', b'\t'):
                continue
            skip = line.lower().startswith(b'message-id:')
            if not skip:
                lines.append(line)
        text = b'\n'.join(lines) + b'\n\n' + body
        if not text.endswith(b'\n'):
            text += b'\n'
        out.append((name, text))
    return out
