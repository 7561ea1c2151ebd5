"""Catching up folds to the log's head as it is once there is more than a batch to fold: appends that keep
landing cannot keep it folding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queue_core import Client
from queue_core.eventlog.events import Recorded
from queue_core.readmodels import materialized
from tests.support.ledger import append_clusters


def test_catch_up_returns_while_appends_land_after_every_batch_it_reads(
    client: Client, monkeypatch: pytest.MonkeyPatch
):
    append_clusters(client.store, [f"before-{n}" for n in range(5)])
    head = client.store.last_position()
    batches_read = 0
    real_batches = materialized.event_batches

    def batches_with_an_append_behind_each(*args: object, **kwargs: object) -> Iterator[list[Recorded]]:
        nonlocal batches_read
        for batch in real_batches(*args, **kwargs):  # type: ignore[arg-type]
            batches_read += 1
            if batches_read > 50:
                raise AssertionError("catch_up kept folding the appends that landed after it started")
            append_clusters(client.store, [f"during-{batches_read}"])  # as a busy client does meanwhile
            yield batch

    monkeypatch.setattr(materialized, "CATCH_UP_BATCH", 1)
    monkeypatch.setattr(materialized, "event_batches", batches_with_an_append_behind_each)
    checkpoint = client.read_models.catch_up()
    # The head it folds to is read after the first full batch, which had one append behind it.
    assert checkpoint == next(client.store.read(after=head)).position
    folded = {doc["name"] for doc in client.read_models.all("clusters").values()}
    assert {f"before-{n}" for n in range(5)} | {"during-1"} == folded
    assert batches_read == 6  # the others are left for the next call
    monkeypatch.undo()
    assert client.read_models.catch_up() == client.store.last_position()
