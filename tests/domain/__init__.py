"""Tests of queue_core/domain with no Redis and no clock: states folded from real events, decisions as tables."""
