"""Masking a run log: lines/s of ``Masker.mask`` with many secrets, against the masker it replaced.

The peer is the earlier masker, kept here verbatim in spirit: one ``str.replace`` per form, for the
value and its URL-encodings only. jobledger's masks far more forms (lines, base64 at three alignments,
hex) in one compiled regular expression. Both mask the same lines, back to back in each repeat.
"""

from __future__ import annotations

import base64
import random
import string
import sys
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

from _harness import code_under_test, emit, figure, interruptible, machine, parse_args, progress, ratio

from queue_core.masking import Masker, forms_of

SEED = 15
LINES = 200_000
SECRETS = 50
PEM_SECRETS = 10  # of which this many are multi-line, like a PEM key (26 lines of 64 characters)
LEAK_EVERY = 100  # one line in this many carries a secret (or an encoding of one)


class ReplaceMasker:
    """The peer: the masker before this change (value and URL-encodings, one str.replace each)."""

    def __init__(self, values: Iterable[str]) -> None:
        forms = set()
        for value in values:
            forms.update({value, quote(value, safe=""), quote_plus(value), value.rstrip("\n")})
        forms.discard("")
        self._forms = sorted(forms, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, "***")
        return text


def _secrets(rng: random.Random) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-_/+=@!"
    values = ["".join(rng.choices(alphabet, k=rng.randint(16, 48))) for _ in range(SECRETS - PEM_SECRETS)]
    for _ in range(PEM_SECRETS):
        body = base64.b64encode(rng.randbytes(1200)).decode()
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        values.append("\n".join(["-----BEGIN PRIVATE KEY-----", *lines, "-----END PRIVATE KEY-----", ""]))
    return values


def _log(rng: random.Random, secrets: list[str]) -> list[str]:
    words = ["rows", "batch", "loaded", "user", "s3://bucket/key", "ok", "retry", "took", "ms", "GET", "200"]
    forms = [sorted(forms_of(value)) for value in secrets]
    lines = []
    for i in range(LINES):
        line = f"2026-12-06T13:{i % 60:02d}:{i % 60:02d}Z INFO " + " ".join(rng.choices(words, k=8))
        line += f" id={rng.randbytes(8).hex()} n={rng.randint(0, 10**6)}"
        if i % LEAK_EVERY == 0:
            line += " token=" + rng.choice(rng.choice(forms))
        lines.append(line)
    return lines


def _lines_per_second(mask: Callable[[str], str], lines: list[str]) -> float:
    start = time.perf_counter()
    for line in lines:
        mask(line)
    return len(lines) / (time.perf_counter() - start)


def main() -> None:
    args = parse_args("Masker.mask lines/s with many secrets, against the masker it replaced")
    rng = random.Random(SEED)
    secrets = _secrets(rng)
    lines = _log(rng, secrets)
    start = time.perf_counter()
    masker = Masker(secrets)
    build_seconds = time.perf_counter() - start
    peer = ReplaceMasker(secrets)
    ours, theirs = [], []
    with interruptible():
        for repeat in range(args.repeat):
            progress(f"repeat {repeat + 1}/{args.repeat}: {len(lines):,} lines, {len(secrets)} secrets")
            ours.append(_lines_per_second(masker.mask, lines))
            theirs.append(_lines_per_second(peer.mask, lines))
    leaked = sum(1 for line in lines for value in secrets if value in masker.mask(line))
    emit(
        {
            "benchmark": "masking",
            "machine": machine(),
            "code": code_under_test(),
            "placement": "one process, unpinned",
            "workload": {
                "lines": len(lines),
                "secrets": len(secrets),
                "multi_line_secrets": PEM_SECRETS,
                "forms_masked": len(set().union(*(forms_of(s) for s in secrets))),
                "forms_masked_by_peer": len(peer._forms),
                "lines_carrying_a_secret_form": len(lines[::LEAK_EVERY]),
            },
            "build_seconds": round(build_seconds, 3),
            "jobledger_lines_per_second": figure(ours, 0),
            "peer_lines_per_second": figure(theirs, 0),
            "ratio": ratio(ours, theirs),
            "values_left_in_masked_lines": leaked,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
