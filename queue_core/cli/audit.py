"""The audit verbs: export, import, archive, restore, trim, check, and verify of a file or an archive."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

from queue_core.cli.argtypes import non_negative_int, positive_int
from queue_core.cli.output import print_json
from queue_core.client import Client
from queue_core.errors import DamagedFile, InvalidInput
from queue_core.eventlog.archive import (
    DEFAULT_SEGMENT_SIZE,
    ArchiveLocation,
    archive_log,
    hash_before,
    history,
    restore_log,
    trim_log,
    trim_point,
    verify_archive,
    verify_log,
)
from queue_core.eventlog.chain import ChainReport
from queue_core.eventlog.events import Recorded
from queue_core.eventlog.health import record_epoch
from queue_core.eventlog.maintenance_mode import check_maintenance, maintenance
from queue_core.eventlog.positions import as_position
from queue_core.eventlog.seals import LedgerVerifier, SealCheck, load_signer, load_verifier
from queue_core.eventlog.transfer import ensure_empty, import_export, verify_export, write_export
from queue_core.readmodels.materialized import ReadModels, rebuild
from queue_core.readmodels.oracle import check_log, quarantine_line
from queue_core.services.compaction import archive_location, compact_runs, trim_to_window
from queue_core.services.imports import check_export
from queue_core.settings import Settings
from queue_core.timefmt import parse_duration

__all__ = ["add_audit_commands"]

UNPLACED = "-"  # the ``broken_at`` of damage no single event can be blamed for (a checksum, the gzip layer)


def _location(args: argparse.Namespace) -> ArchiveLocation:
    if args.folder:
        return ArchiveLocation("", args.prefix, None, str(Path(args.folder).expanduser().resolve()))
    return ArchiveLocation(args.bucket, args.prefix, args.endpoint_url)


def _where(location: ArchiveLocation) -> str:
    return location.where


def events(args: argparse.Namespace) -> int:
    client = Client.from_env()
    since = as_position(args.since, "--since", end=False) if args.since else None
    until = as_position(args.until, "--until") if args.until else None
    found = client.events(aggregate=args.aggregate, type=args.type, limit=args.limit, since=since, until=until)
    if args.json and not args.follow:
        print_json([rec.to_json_dict() for rec in found])
        return 0
    for rec in found:
        _print_event(rec, args.json)
    if args.follow:
        after = found[-1].position if found else (until or client.store.last_position())
        for rec in client.follow_events(after, aggregate=args.aggregate, type=args.type):
            _print_event(rec, args.json)
    return 0


def _print_event(rec: Recorded, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(rec.to_json_dict()).decode(), flush=True)
        return
    data = orjson.dumps(rec.event.to_data()).decode()
    print(f"{rec.position}  {rec.time}  {rec.type}  {rec.aggregate}  v{rec.version}  {data}", flush=True)


def replay(args: argparse.Namespace) -> int:
    from queue_core.cli.progress import replay_progress

    client = Client.from_env()
    if args.rebuild:
        with replay_progress(client, "rebuilding") as progress:
            rebuilt = client.rebuild_read_models(progress)
        rate = rebuilt.events / rebuilt.seconds if rebuilt.seconds else 0.0
        print(f"rebuilt the read models from {rebuilt.events} events ({rate:,.0f} events/s folded)")
        return 0
    with replay_progress(client, "replaying") as progress:
        result = client.replay_verify(progress)
    print(f"replayed {result.events} events in {result.seconds:.3f} s ({result.events_per_second:,.0f} events/s)")
    if result.largest:
        print(f"largest aggregate: {result.largest[0]} ({result.largest[1]} events)")
    for entry in client.read_models.quarantined():
        print(quarantine_line(entry))
    if result.identical:
        print("identical")
        return 0
    print(f"different: {result.difference}")
    return 1


def export(args: argparse.Namespace) -> int:
    client = Client.from_env()
    store = client.store
    since = as_position(args.since, "--since", end=False) if args.since else "-"
    until = as_position(args.until, "--until") if args.until else "+"
    start = hash_before(store, since) if since != "-" else ""
    signer = load_signer(client.settings)
    header = write_export(args.file, history(store, until=until, since=since), chain_start=start, signer=signer)
    print(f"exported {header.events} events ({header.first or '-'} .. {header.last or '-'}) to {args.file}")
    if signer is not None:
        print(f"signed by the ledger key {signer.key_id}")
    else:
        print(
            f"not signed: no ledger key at {client.settings.ledger_key_path}; "
            "verify and import with the ledger's public key will refuse this file"
        )
    return 0


def _verifier(args: argparse.Namespace, settings: Settings) -> LedgerVerifier | None:
    """The public key ``--public-key`` names, else the settings' public key file, else None (and said)."""
    verifier = load_verifier(settings, args.public_key)
    if verifier is None:
        print(
            f"note: no public key of the ledger at {settings.ledger_public_key_path} (give --public-key FILE): "
            "seals and signatures are not checked, so a re-chained forgery would pass"
        )
    return verifier


def _filling_client() -> Client:
    """A client for import and restore: they fill a store that came back empty, so its epoch is not held against it."""
    return Client(settings=Settings.from_env(), check_epoch=False)


def import_(args: argparse.Namespace) -> int:
    client = _filling_client()
    store = client.store
    check_maintenance(store)
    ensure_empty(store)
    check_export(args.file)  # every event readable, foldable and lawful, before anything is written
    verifier = _verifier(args, client.settings)
    # Held from before the first entry to after the read models: no process writes or trusts a half-loaded log.
    with maintenance(store, "import"):
        header = import_export(store, args.file, verifier)
        record_epoch(store, client.settings)
        rebuild(store, ReadModels(store))
    print(f"imported {header.events} events ({header.first or '-'} .. {header.last or '-'}); read models rebuilt")
    return 0


def archive(args: argparse.Namespace) -> int:
    location = _location(args)
    client = Client.from_env()
    added = archive_log(client.store, location, args.segment_size, signer=load_signer(client.settings))
    if not added:
        print(f"nothing new to archive at {_where(location)} (only full segments older than the newest event are)")
        return 0
    events = sum(s.count for s in added)
    print(f"archived {events} events in {len(added)} segments up to {added[-1].last} at {_where(location)}")
    return 0


def restore(args: argparse.Namespace) -> int:
    client = _filling_client()
    store = client.store
    check_maintenance(store)
    verifier = _verifier(args, client.settings)
    with maintenance(store, "restore"):  # as for an import: nothing trusts the store until it is whole
        count, last = restore_log(store, _location(args), verifier)
        record_epoch(store, client.settings)
        rebuild(store, ReadModels(store))
    print(f"restored {count} events up to {last} from {_where(_location(args))}; read models rebuilt")
    print("events after the archive's last segment are not in the archive, so not in this store")
    return 0


def trim(args: argparse.Namespace) -> int:
    client = Client.from_env()
    if args.bucket or args.folder:
        location = _location(args)
    else:
        point = trim_point(client.store)
        if point is None:
            raise InvalidInput("give --bucket or --folder: the archive that must hold what the trim drops", "trim")
        location = point[1]
    before = as_position(args.before, "--before", end=False)
    client.read_models.catch_up()  # the live read models must have folded what leaves Redis
    dropped = trim_log(client.store, location, before)
    print(f"trimmed {dropped} events before {before} from Redis; {_where(location)} holds them")
    return 0


def compact(args: argparse.Namespace) -> int:
    client = Client.from_env()
    settings = client.settings
    try:
        window = parse_duration(args.window) if args.window is not None else settings.hot_window_delta
    except ValueError as exc:
        raise InvalidInput(str(exc), "--window") from None
    keep = args.keep if args.keep is not None else settings.hot_runs_cap
    folder = client.store.cold.folder() or settings.cold_path
    done = compact_runs(client.store, client.read_models, client.run_log, folder, window, keep)
    print(
        f"compacted {done.runs} runs ({done.events} events, {done.lines} output lines) into the cold tier "
        f"in {folder}; they answer from there"
    )
    location = archive_location(client.store, settings)
    signer = load_signer(settings)
    trimmed = trim_to_window(client.store, client.read_models, location, window, signer, args.segment_size)
    print(f"trimmed {trimmed} log entries older than the window from Redis; {location.where} holds them")
    return 0


def verify(args: argparse.Namespace) -> int:
    note = None
    if args.file and (args.bucket or args.folder):
        raise InvalidInput("give FILE or an archive, not both", "verify")
    settings = Settings.from_env()
    verifier = load_verifier(settings, args.public_key)
    seals = SealCheck(verifier)
    if args.file:
        report, seals = _verify_file(args.file, verifier)
    elif args.bucket or args.folder:
        report = verify_archive(_location(args), verifier, check=seals)
    else:
        report, note = verify_log(Client.from_env().store, check=seals)
    code = _print_report(report, seals, note, args.json)
    if verifier is None and not args.json:
        print(f"seals and signatures not checked: no public key of the ledger at {settings.ledger_public_key_path}")
    if code == 0 and args.max_unsealed is not None and (verifier is None or seals.unsealed > args.max_unsealed):
        # A forger who rewrites the log from some point and drops the seals after it leaves a long unsealed tail.
        if not args.json:
            print(f"refused: more than {args.max_unsealed} entries are not vouched for by a checked seal")
        return 1
    return code


def _verify_file(path: str, verifier: LedgerVerifier | None) -> tuple[ChainReport, SealCheck]:
    """Walk an export's chain and seals; damage the checksum or the gzip layer finds is reported, with no position."""
    try:
        return verify_export(path, verifier)
    except DamagedFile as exc:
        return ChainReport(0, UNPLACED, str(exc), ""), SealCheck(verifier)


def _print_report(report: ChainReport, seals: SealCheck, note: str | None, as_json: bool) -> int:
    if as_json:
        shown: dict[str, Any] = {
            "checked": report.checked,
            "intact": report.intact,
            "broken_at": report.broken_at,
            "reason": report.reason,
            "head": report.head,
            "seals": {
                "checked": seals.verifier is not None,
                "key_id": seals.verifier.key_id if seals.verifier else None,
                "count": seals.seals,
                "sealed_through": seals.sealed_through,
                "unsealed": seals.unsealed if seals.verifier else None,
                "adopted_at": seals.adopted_at,
                "before_adoption": seals.before_adoption,
            },
        }
        print_json({**shown, "note": note} if note else shown)
        return 0 if report.intact else 1
    if note:
        print(f"note: {note}")
    if report.intact:
        print(f"chain intact: {report.checked} events, head {report.head or '-'}")
        print(seals.summary())
    elif report.broken_at == UNPLACED:
        print(f"damaged: {report.reason}")
    elif seals.failed:
        vouched = f"sealed and intact through {seals.sealed_through}" if seals.sealed_through else "no seal holds"
        print(f"chain broken at {report.broken_at}: {report.reason} ({vouched})")
    else:
        print(f"chain broken at {report.broken_at}: {report.reason} ({report.checked} events before it check out)")
    return 0 if report.intact else 1


def check(args: argparse.Namespace) -> int:
    report = check_log(Client.from_env().store, require_terminal=args.ended)
    if args.json:
        print_json({"ok": report.ok, **report.__dict__})
    else:
        print(report.summary())
        for problem in report.problems[1:]:
            print(f"  {problem}")
    return 0 if report.ok else 1


def _archive_options(parser: argparse.ArgumentParser, required: bool) -> None:
    where = parser.add_mutually_exclusive_group(required=required)
    where.add_argument("--bucket", help="an S3 bucket")
    where.add_argument("--folder", help="a local folder instead of a bucket")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint (default: AWS)")


def _public_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-key",
        metavar="FILE",
        help="the ledger's public key (PEM) to check seals and signatures with (default: the home's, if any)",
    )


def add_audit_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register the verbs on the log: events, replay, verify, export, import, archive, restore, trim, check."""
    p = sub.add_parser("events", help="read the event log, oldest first")
    p.add_argument("--aggregate")
    p.add_argument("--type")
    p.add_argument("--limit", type=positive_int)
    p.add_argument("--since", metavar="TIME|POSITION", help="from this point on (inclusive)")
    p.add_argument("--until", metavar="TIME|POSITION", help="up to this point (inclusive)")
    p.add_argument("--follow", "-f", action="store_true", help="then print new events as they land")
    p.add_argument("--json", action="store_true", help="a JSON array; with --follow, one JSON object a line")
    p.set_defaults(handler=events)

    p = sub.add_parser("replay", help="rebuild the read models from the log")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--verify", action="store_true", help="rebuild into a scratch copy, compare with the live ones")
    how.add_argument("--rebuild", action="store_true", help="drop the live read models and rebuild them in place")
    p.set_defaults(handler=replay)

    p = sub.add_parser("export", help="write the log (or part of it) to a gzip JSON-lines file with a checksum")
    p.add_argument("file")
    p.add_argument("--since", metavar="POSITION-or-TIME", help="first event (inclusive)")
    p.add_argument("--until", metavar="POSITION-or-TIME", help="last event (inclusive)")
    p.set_defaults(handler=export)

    p = sub.add_parser("import", help="load an export file into an empty store")
    p.add_argument("file")
    _public_key_option(p)
    p.set_defaults(handler=import_)

    p = sub.add_parser("archive", help="upload the log's closed segments to S3 (incremental)")
    _archive_options(p, required=True)
    p.add_argument("--segment-size", type=positive_int, default=DEFAULT_SEGMENT_SIZE, metavar="EVENTS")
    p.set_defaults(handler=archive)

    p = sub.add_parser("restore", help="rebuild an empty store from an S3 archive")
    _archive_options(p, required=True)
    _public_key_option(p)
    p.set_defaults(handler=restore)

    p = sub.add_parser("trim", help="drop archived events before POSITION from Redis, after checking the archive")
    p.add_argument("--before", required=True, metavar="POSITION")
    _archive_options(p, required=False)
    p.set_defaults(handler=trim)

    p = sub.add_parser("compact", help="move runs ended before the hot window out of Redis into the cold tier")
    p.add_argument("--window", metavar="DURATION", help="keep runs ended within this (default JOBLEDGER_HOT_WINDOW)")
    p.add_argument(
        "--keep", type=non_negative_int, metavar="RUNS", help="and at most this many ended runs (JOBLEDGER_HOT_RUNS)"
    )
    p.add_argument("--segment-size", type=positive_int, default=DEFAULT_SEGMENT_SIZE, metavar="EVENTS")
    p.set_defaults(handler=compact)

    p = sub.add_parser("check", help="check the whole log: nothing lost, nothing twice, every rule of a run kept")
    p.add_argument("--ended", action="store_true", help="also require every run and workflow run to have ended")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=check)

    p = sub.add_parser("verify", help="walk the log's hash chain and seals, and name the first entry that breaks it")
    p.add_argument("--json", action="store_true")
    p.add_argument("file", nargs="?", metavar="FILE", help="an export file instead of the log in Redis")
    _archive_options(p, required=False)
    _public_key_option(p)
    p.add_argument(
        "--max-unsealed",
        type=non_negative_int,
        metavar="N",
        help="exit 1 when more than N entries follow the last checked seal (or seals cannot be checked)",
    )
    p.set_defaults(handler=verify)
    del parser_class  # ``sub`` already makes parsers of main's class; kept in the signature for nested verbs
