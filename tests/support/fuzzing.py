"""The fuzzers' budget and seed: one seed per session, printed in the report's header so a failure can be replayed."""

from __future__ import annotations

import os
import random

import pytest

SEED = int(os.environ.get("JOBLEDGER_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
# Generated inputs per fuzzer; their sum over the fuzzers is what one CI run tries (at least 2,000).
EXAMPLES = int(os.environ.get("JOBLEDGER_FUZZ_EXAMPLES") or 700)


def pytest_report_header(config: pytest.Config) -> str:
    return f"fuzz seed: {SEED} (replay with JOBLEDGER_FUZZ_SEED={SEED}); {EXAMPLES} inputs per fuzzer"
