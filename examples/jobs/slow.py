"""Sleeps far past its per-attempt timeout: ends FAILED with reason Timeout."""

import time

print("starting a slow query", flush=True)
time.sleep(300)
