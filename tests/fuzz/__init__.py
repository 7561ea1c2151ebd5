"""Fuzzers: generated hostile inputs, with a fixed budget and a printed seed (``JOBLEDGER_FUZZ_SEED`` replays one)."""
