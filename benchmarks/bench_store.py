"""Event store throughput: jobledger's append and replay, each against a bare Redis peer on the same bytes.

Appends: ``EventStore.append`` (its whole Lua script, envelope encoding, and the ``Recorded`` it returns)
against a bare Lua script that only checks the aggregate's LLEN, XADDs and RPUSHes, called with
pre-encoded envelopes of the same shape. Three shapes:

* ``single``: one event per call, one call per round trip, each event on a new aggregate (expected 0);
* ``batch10``: ten events of one new aggregate per call (``append`` of a 10-event batch);
* ``pipelined``: the single-event calls sent 100 to a pipeline round trip. The store has no pipelined
  API, so the jobledger side calls the store's own registered script (``store._append``) with the exact
  keys and args ``append`` builds (encoding included) and turns the replies into ``Recorded`` as
  ``append`` does.

The bare peer gets its envelopes already encoded; jobledger's figures include encoding them.

With ``--durability replicated``: a replica on loopback follows the server, and the ``single`` and ``batch10``
appends of an ``EventStore`` that WAITs for it (``JOBLEDGER_DURABILITY=replicated``) are measured against
the same appends of one that does not (``local``), alternating, in the same run; no replay.

Replay: a log of realistic events (definitions, then interleaved runs that succeed, retry, fail or are
cancelled) folded by ``readmodels.rebuild`` (what ``replay --verify`` times: read + decode + fold, then
drop + write of a scratch namespace), against a bare XRANGE of the same log in batches of 1,000 with
orjson decoding and a trivial fold (count per type, last envelope per aggregate).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import redis
from _harness import code_under_test, emit, figure, interruptible, machine, parse_args, progress, ratio
from _redis import RedisServer

from queue_core.eventlog.events import (
    DefinitionCreated,
    Event,
    NameClaimed,
    NewEvent,
    Recorded,
    RunAttemptFailed,
    RunCancelled,
    RunFailed,
    RunQueued,
    RunRetryScheduled,
    RunStarted,
    RunSubmitted,
    RunSucceeded,
    encode,
)
from queue_core.eventlog.store import READ_BATCH, EventStore
from queue_core.keys import Keys
from queue_core.readmodels.materialized import ReadModels, rebuild
from queue_core.specs.definitions import normalize_definition
from queue_core.timefmt import utc_now

APPENDS = 5_000
BATCH = 10
PIPELINE_CALLS = 100
REPLAY_EVENTS = 200_000
DEFINITIONS = 50
IN_FLIGHT_RUNS = 64
SEED = 20240601

BARE_APPEND = """
-- KEYS[1] the log, KEYS[2] the aggregate's position list; ARGV[1] expected version, ARGV[2..] envelopes.
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[1]) then return {'CONFLICT'} end
local result = {'OK'}
for i = 2, #ARGV do
  local position = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
  redis.call('RPUSH', KEYS[2], position)
  result[#result + 1] = position
end
return result
"""


# -- append workloads ---------------------------------------------------------------------------


def queued_events(count: int, per_aggregate: int) -> list[list[NewEvent]]:
    """``count`` RunQueued events in batches of ``per_aggregate``, each batch on a new aggregate."""
    batches = []
    for _ in range(count // per_aggregate):
        run_id = str(uuid.uuid4())
        batches.append(
            [NewEvent(run_id, RunQueued(attempt=i + 1, job_id=f"{run_id}-{i + 1}")) for i in range(per_aggregate)]
        )
    return batches


def envelopes(batches: list[list[NewEvent]]) -> list[tuple[str, list[bytes]]]:
    """The same batches as the bare peer gets them: aggregate position-list key and pre-encoded envelopes."""
    now, keys = utc_now(), Keys()
    return [(keys.aggregate(b[0].aggregate), [encode(n, v + 1, now) for v, n in enumerate(b)]) for b in batches]


def jobledger_calls(store: EventStore, batches: list[list[NewEvent]]) -> None:
    for batch in batches:
        store.append(batch, {batch[0].aggregate: 0})


def jobledger_pipelined(store: EventStore, batches: list[list[NewEvent]]) -> None:
    """Single-event appends, PIPELINE_CALLS per round trip, with the keys/args/replies of ``append``."""
    for start in range(0, len(batches), PIPELINE_CALLS):
        pipe = store.redis.pipeline(transaction=False)
        now = utc_now()
        sent = batches[start : start + PIPELINE_CALLS]
        for (new,) in sent:
            keys = [store.keys.log, store.keys.epoch, store.keys.aggregate(new.aggregate)]  # the layout append() uses
            store._append(keys=keys, args=[store.epoch, 1, 0, 1, new.event_id, encode(new, 1, now)], client=pipe)
        for reply, (new,) in zip(pipe.execute(), sent, strict=True):
            if reply[0] != b"OK":
                raise RuntimeError(f"append refused: {reply!r}")
            Recorded(reply[1].decode(), new.event_id, type(new.event).__name__, new.aggregate, 1, now, new.event)


def bare_calls(script: Any, log_key: str, prepared: list[tuple[str, list[bytes]]]) -> None:
    for agg_key, payloads in prepared:
        if script(keys=[log_key, agg_key], args=[0, *payloads])[0] != b"OK":
            raise RuntimeError("bare append refused")


def bare_pipelined(connection: redis.Redis, script: Any, log_key: str, prepared: list[tuple[str, list[bytes]]]) -> None:
    for start in range(0, len(prepared), PIPELINE_CALLS):
        pipe = connection.pipeline(transaction=False)
        for agg_key, payloads in prepared[start : start + PIPELINE_CALLS]:
            script(keys=[log_key, agg_key], args=[0, *payloads], client=pipe)
        if any(reply[0] != b"OK" for reply in pipe.execute()):
            raise RuntimeError("bare append refused")


def timed_rate(events: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return events / (time.perf_counter() - started)


def append_round(connection: redis.Redis, store: EventStore, bare: Any, flip: bool) -> dict[str, tuple[float, float]]:
    """One repeat of every shape: (jobledger appends/s, bare appends/s), run in alternating order."""
    log_key = store.keys.log
    rates: dict[str, tuple[float, float]] = {}
    for shape in ("single", "batch10", "pipelined"):
        batches = queued_events(APPENDS, BATCH if shape == "batch10" else 1)
        prepared = envelopes(batches)
        if shape == "pipelined":
            sides = {
                "jobledger": lambda b=batches: jobledger_pipelined(store, b),
                "bare": lambda p=prepared: bare_pipelined(connection, bare, log_key, p),
            }
        else:
            sides = {
                "jobledger": lambda b=batches: jobledger_calls(store, b),
                "bare": lambda p=prepared: bare_calls(bare, log_key, p),
            }
        measured = {}
        for side in ["bare", "jobledger"] if flip else ["jobledger", "bare"]:
            empty_store(connection, store)
            measured[side] = timed_rate(APPENDS, sides[side])
        rates[shape] = (measured["jobledger"], measured["bare"])
        progress(f"append {shape}: jobledger {measured['jobledger']:,.0f}/s, bare {measured['bare']:,.0f}/s")
    return rates


def empty_store(connection: redis.Redis, store: EventStore) -> None:
    """Start a new log: the store would rightly refuse to append to an emptied one under its old epoch."""
    connection.flushall()
    store.epoch = ""


# -- replay workload ----------------------------------------------------------------------------


def definition_events(count: int) -> Iterator[tuple[NewEvent, int]]:
    """Each definition: its name claimed, then created with a realistic spec."""
    for i in range(count):
        spec = normalize_definition(
            {
                "name": f"nightly-export-{i}",
                "description": "exports yesterday's orders to the warehouse",
                "config": {
                    "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
                    "type": "PYTHON" if i % 2 else "SHELL",
                    "sourceLocation": f"export_{i}.py" if i % 2 else f"export_{i}.sh",
                    "args": f"--date yesterday --shard {i % 8}",
                    "retryStrategy": {"numRetries": 2, "delayBetweenRetries": 1, "retryOnTimeout": False},
                    "timeout": 30,
                    "envVars": {"STAGE": "prod", "WAREHOUSE": "orders"},
                },
                "cluster": {"name": "default"},
            }
        )
        definition_id = str(uuid.uuid4())
        claim = NameClaimed(kind="definition", name=spec["name"], owner=definition_id)
        yield NewEvent(f"name:definition:{spec['name']}", claim), 1
        yield NewEvent(definition_id, DefinitionCreated(name=spec["name"], spec=spec)), 1


def run_story(rng: random.Random, definition: tuple[str, dict[str, Any]]) -> list[Event]:
    """One run's events: 84% succeed, 10% succeed on a retry, 5% fail, 1% are cancelled while queued."""
    definition_id, spec = definition
    run = [
        RunSubmitted(
            definition_id=definition_id,
            definition=spec["name"],
            definition_version=1,
            cluster="default",
            job=spec["config"],
        )
    ]
    worker = {
        "worker": f"worker-{rng.randrange(8)}.{rng.randrange(1000, 9999)}",
        "host": "node-1",
        "pid": rng.randrange(1000, 60000),
    }
    failed = {"reason": "NonZeroExitCode", "exit_code": 1, "message": "exit code 1"}
    roll = rng.random()
    if roll < 0.01:
        return [*run, RunQueued(attempt=1, job_id="x-1"), RunCancelled()]
    run += [RunQueued(attempt=1, job_id="x-1"), RunStarted(attempt=1, **worker)]
    if roll < 0.85:
        return [*run, RunSucceeded(attempt=1)]
    run.append(RunAttemptFailed(attempt=1, **failed))
    if roll < 0.95:
        not_before = "2024-06-01T00:01:00.000000Z"
        return [
            *run,
            RunRetryScheduled(attempt=2, not_before=not_before),
            RunStarted(attempt=2, **worker),
            RunSucceeded(attempt=2),
        ]
    return [*run, RunFailed(attempt=1, **failed)]


def realistic_log(total: int) -> Iterator[tuple[NewEvent, int]]:
    """Definitions, then runs interleaved as a busy fleet writes them; each event with its new version."""
    rng = random.Random(SEED)
    definitions = []
    emitted = 0
    for new, version in definition_events(DEFINITIONS):
        if isinstance(new.event, DefinitionCreated):
            definitions.append((new.aggregate, dict(new.event.spec)))
        emitted += 1
        yield new, version
    active: list[tuple[str, list[Event], int]] = []
    while emitted < total:
        while len(active) < IN_FLIGHT_RUNS:
            active.append((str(uuid.uuid4()), run_story(rng, rng.choice(definitions)), 0))
        slot = rng.randrange(len(active))
        run_id, story, done = active[slot]
        yield NewEvent(run_id, story[done]), done + 1
        emitted += 1
        if done + 1 == len(story):
            active[slot] = active[-1]
            active.pop()
        else:
            active[slot] = (run_id, story, done + 1)


def load_log(store: EventStore, total: int) -> dict[str, int]:
    """Append the realistic log through the store's own script, pipelined 1,000 calls a round trip."""
    types: dict[str, int] = {}
    runs = set()
    pipe = store.redis.pipeline(transaction=False)
    now = utc_now()
    for count, (new, version) in enumerate(realistic_log(total), start=1):
        keys = [store.keys.log, store.keys.epoch, store.keys.aggregate(new.aggregate)]  # the layout append() uses
        store._append(
            keys=keys, args=[store.epoch, 1, version - 1, 1, new.event_id, encode(new, version, now)], client=pipe
        )
        name = type(new.event).__name__
        types[name] = types.get(name, 0) + 1
        if name == "RunSubmitted":
            runs.add(new.aggregate)
        if count % 1000 == 0:
            if any(reply[0] != b"OK" for reply in pipe.execute()):
                raise RuntimeError("generating the log: an append was refused")
            now = utc_now()
    pipe.execute()
    return {"events": sum(types.values()), "runs": len(runs), **dict(sorted(types.items()))}


def bare_fold(connection: redis.Redis, log_key: str) -> int:
    """Replay's peer: XRANGE 1,000 at a time, orjson.loads, count per type, last envelope per aggregate."""
    per_type: dict[str, int] = {}
    last: dict[str, dict[str, Any]] = {}
    start = "-"
    while True:
        entries = connection.xrange(log_key, min=start, max="+", count=READ_BATCH)
        for _position, fields in entries:
            envelope = orjson.loads(fields[b"e"])
            per_type[envelope["type"]] = per_type.get(envelope["type"], 0) + 1
            last[envelope["agg"]] = envelope
        if len(entries) < READ_BATCH:
            return sum(per_type.values())
        start = "(" + entries[-1][0].decode()


def replay_round(store: EventStore, index: int, flip: bool) -> dict[str, float]:
    """One repeat: rebuild into a fresh scratch namespace, and the bare fold, in alternating order."""
    figures: dict[str, float] = {}
    for side in ["bare", "jobledger"] if flip else ["jobledger", "bare"]:
        if side == "jobledger":
            scratch = ReadModels(store, f"bench-scratch-{index}")
            started = time.perf_counter()
            rebuilt = rebuild(store, scratch)
            count, fold_seconds = rebuilt.events, rebuilt.seconds
            total_seconds = time.perf_counter() - started
            scratch.drop()
            figures["fold"] = count / fold_seconds
            figures["fold_and_write"] = count / total_seconds
        else:
            started = time.perf_counter()
            count = bare_fold(store.redis, store.keys.log)
            figures["bare"] = count / (time.perf_counter() - started)
    progress(
        f"replay: fold {figures['fold']:,.0f} ev/s, fold+write {figures['fold_and_write']:,.0f} ev/s, "
        f"bare {figures['bare']:,.0f} ev/s"
    )
    return figures


# -- the benchmark ------------------------------------------------------------------------------


def durability_round(connection: redis.Redis, stores: dict[str, EventStore], flip: bool) -> dict[str, dict[str, float]]:
    """One repeat of single and batch10 appends: appends/s of the replicated store and of the local one."""
    rates: dict[str, dict[str, float]] = {}
    for shape in ("single", "batch10"):
        batches = queued_events(APPENDS, BATCH if shape == "batch10" else 1)
        measured = {}
        for side in ["local", "replicated"] if flip else ["replicated", "local"]:
            empty_store(connection, stores[side])
            measured[side] = timed_rate(APPENDS, lambda b=batches, st=stores[side]: jobledger_calls(st, b))
        rates[shape] = measured
        progress(f"append {shape}: replicated {measured['replicated']:,.0f}/s, local {measured['local']:,.0f}/s")
    return rates


def durability_report(rounds: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "unit": "events appended per second",
        "events_per_figure": APPENDS,
        "what": "EventStore.append with JOBLEDGER_DURABILITY=replicated (the append script, then WAIT 1 on the "
        "same connection, one round trip) against local (the append script alone), same server",
    }
    for shape in ("single", "batch10"):
        replicated = [r[shape]["replicated"] for r in rounds]
        local = [r[shape]["local"] for r in rounds]
        report[shape] = {
            "replicated": figure(replicated, 0),
            "local": figure(local, 0),
            "ratio_replicated_local": ratio(replicated, local),
        }
    return report


def replicated_main(args: Any, result: dict[str, Any]) -> None:
    result["redis"] += "; one replica (replicaof, same options) on loopback"
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start("--repl-diskless-sync-delay", "0")
        replica = RedisServer(Path(tmp) / "replica").start("--replicaof", "127.0.0.1", str(server.port))
        try:
            connection = server.client()
            while not _replica_online(connection):
                time.sleep(0.05)
            stores = {"local": EventStore(connection, Keys()), "replicated": EventStore(connection, Keys(), replicas=1)}
            rounds = [durability_round(connection, stores, flip=k % 2 == 1) for k in range(args.repeat)]
            result["durability"] = durability_report(rounds)
        finally:
            replica.stop()
            server.stop()


def _replica_online(connection: redis.Redis) -> bool:
    info: Any = connection.info("replication")
    return any(key.startswith("slave") and value.get("state") == "online" for key, value in info.items())


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], replay_events=REPLAY_EVENTS, durability=True)
    result: dict[str, Any] = {
        "benchmark": "bench_store",
        "machine": machine(),
        "code": code_under_test(),
        "placement": "client (this process) and one redis-server, both unpinned on the machine's cores",
        "redis": "private redis-server 7 on loopback TCP: appendonly yes, appendfsync everysec, noeviction",
        "repeat": args.repeat,
    }
    if args.durability == "replicated":
        replicated_main(args, result)
        result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        emit(result)
        return
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            connection = server.client()
            store = EventStore(connection, Keys())
            bare = connection.register_script(BARE_APPEND)
            result["parser"] = type(connection.connection_pool.make_connection()._parser).__name__
            appends = [append_round(connection, store, bare, flip=k % 2 == 1) for k in range(args.repeat)]
            result["append"] = append_report(appends)
            empty_store(connection, store)
            progress(f"generating a log of {args.replay_events:,} events")
            result["replay_log"] = load_log(store, args.replay_events)
            replays = [replay_round(store, k, flip=k % 2 == 1) for k in range(args.repeat)]
            result["replay"] = replay_report(replays)
        finally:
            server.stop()
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(result)


def append_report(rounds: list[dict[str, tuple[float, float]]]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "unit": "events appended per second",
        "events_per_figure": APPENDS,
        "shapes": {
            "single": "1 event per call, 1 call per round trip, new aggregate each (expected version 0)",
            "batch10": "10 events of one new aggregate per call (EventStore.append of a 10-event batch)",
            "pipelined": f"1 event per call, {PIPELINE_CALLS} calls per pipeline round trip (jobledger: "
            "store._append with append()'s keys/args, replies turned into Recorded as append() does)",
        },
        "peer": "bare Lua: XLEN check of the aggregate stream, XADD log, XADD aggregate; the same envelope "
        "bytes, encoded beforehand (jobledger's figures include encoding them)",
    }
    for shape in ("single", "batch10", "pipelined"):
        jl = [r[shape][0] for r in rounds]
        bare = [r[shape][1] for r in rounds]
        report[shape] = {
            "jobledger": figure(jl, 0),
            "bare": figure(bare, 0),
            "ratio_jobledger_bare": ratio(jl, bare),
        }
    report["aim"] = "ratio >= 0.8"
    return report


def replay_report(rounds: list[dict[str, float]]) -> dict[str, Any]:
    fold = [r["fold"] for r in rounds]
    written = [r["fold_and_write"] for r in rounds]
    bare = [r["bare"] for r in rounds]
    return {
        "unit": "events per second",
        "fold": {
            "what": "readmodels.rebuild fold time: XRANGE + decode to Recorded + fold into every read "
            "model, in memory (what replay --verify reports)",
            **figure(fold, 0),
        },
        "fold_and_write": {
            "what": "the whole readmodels.rebuild: the fold, then drop + write_all of a fresh scratch namespace",
            **figure(written, 0),
        },
        "bare": {
            "what": "XRANGE 1,000 at a time + orjson.loads + count per type + last envelope per "
            "aggregate, same connection and hiredis parser",
            **figure(bare, 0),
        },
        "ratio_fold_bare": ratio(fold, bare),
        "ratio_fold_and_write_bare": ratio(written, bare),
        "aim": "fold >= 200,000 events/s and ratio_fold_bare >= 0.7",
    }


if __name__ == "__main__":
    main()
