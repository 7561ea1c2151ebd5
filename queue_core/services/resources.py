"""Versioned job resources: add a version under a claimed name, read versions, fetch content from Redis or S3."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

from queue_core.domain.resources import (
    MAX_RESOURCE_BYTES,
    REDIS_STORAGE,
    RESOURCE_KIND,
    S3_PREFIX,
    apply_resource,
)
from queue_core.errors import AlreadyExists, ConcurrencyError, InvalidInput, NotFound, Remedy
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import NewEvent, ResourceAdded
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.names import owner_of, with_claim
from queue_core.settings import Settings
from queue_core.specs.definitions import check_name
from queue_core.specs.hive import hive_to_duckdb
from queue_core.specs.resources import CONFIG_KINDS, is_archive, kind_of

__all__ = ["ResourceStore"]


class ResourceStore:
    """Add versions, read them, and fetch their content from Redis or the configured S3 bucket."""

    def __init__(self, store: EventStore, settings: Settings) -> None:
        self.store = store
        self.redis = store.redis
        self.settings = settings

    def _owner(self, name: str) -> tuple[str | None, int]:
        return owner_of(self.store, RESOURCE_KIND, name)

    def get(self, name: str) -> dict[str, Any]:
        """The resource with every version; ``NotFound`` when no resource has that name."""
        check_name(name, "resource")
        owner, _ = self._owner(name)
        doc = load_state(self.store, owner, apply_resource)[0] if owner else None
        if doc is None:
            raise NotFound(f"no resource named {name!r}", remedy=Remedy.ADD_RESOURCE, subject=name)
        return doc

    def version(self, name: str, version: int | None) -> dict[str, Any]:
        """One version of a resource (the latest when ``version`` is None)."""
        doc = self.get(name)
        wanted = doc["version"] if version is None else version
        for entry in doc["versions"]:
            if entry["version"] == wanted:
                return {"name": doc["name"], **entry}
        raise NotFound(f"resource {name!r} has no version {wanted} (latest is {doc['version']})")

    def pinned(self, job: dict[str, Any]) -> dict[str, Any]:
        """A run's job with its RESOURCE source pinned to the version it will run (the one named, else the latest
        now), and, when the job names no entry file, the script's own file name as its entry; its ``configFiles``
        (``xml`` resources) pinned too. Refused here, at submit: a jar with no Java runtime on this machine,
        a Hive script that does not transpile, a configuration file as the entry.
        """
        if job.get("configFiles"):
            job = {**job, "configFiles": [self._config_file(ref, i) for i, ref in enumerate(job["configFiles"])]}
        if job["source"]["type"] != "RESOURCE":
            return job
        sdef = job["source"]["sourceDef"]
        version = self.version(sdef["name"], sdef.get("version"))
        location = job["sourceLocation"]
        if location is None:
            if is_archive(version["kind"]):
                raise InvalidInput(
                    f"is required: resource {sdef['name']!r} version {version['version']} is an archive, "
                    "so the file to run in it must be named",
                    "sourceLocation",
                )
            location = version["filename"]
        self._check_runnable(version, location)
        source = {"type": "RESOURCE", "sourceDef": {**sdef, "version": version["version"]}}
        return {**job, "source": source, "sourceLocation": location}

    def _config_file(self, ref: dict[str, Any], index: int) -> dict[str, Any]:
        version = self.version(ref["name"], ref.get("version"))
        if version["kind"] not in CONFIG_KINDS:
            raise InvalidInput(
                f"resource {ref['name']!r} is a {version['kind']} file; configuration files are xml",
                f"configFiles[{index}]",
            )
        return {"name": ref["name"], "version": version["version"]}

    def _check_runnable(self, version: dict[str, Any], location: str) -> None:
        said = f"resource {version['name']!r} version {version['version']}"
        lower = location.lower()
        if lower.endswith(".xml"):
            raise InvalidInput(
                f"{said} is a configuration file: name it in configFiles, not as the entry", "sourceLocation"
            )
        if lower.endswith(".jar") and shutil.which("java") is None:
            raise InvalidInput(
                f"{said} is a jar, run with java -jar, and there is no Java runtime (java on PATH) here to run it",
                "sourceLocation",
            )
        if version["kind"] == "hql":
            try:
                text = self.content(version).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{said} is not UTF-8 text", "sourceLocation") from None
            hive_to_duckdb(text, f"resource {version['name']} version {version['version']}")

    def list(self, read_models: ReadModels) -> list[dict[str, Any]]:
        """Every resource, by name."""
        read_models.catch_up()
        names = sorted(d["name"] for d in read_models.all("names").values() if d and d["kind"] == RESOURCE_KIND)
        return [self.get(name) for name in names]

    def add(self, name: str, path: str | Path) -> tuple[dict[str, Any], bool]:
        """Register the file as the next version; identical content to the latest makes none.

        Returns the version and whether it is new.
        """
        check_name(name, "resource")
        path = Path(path)
        kind = kind_of(path.name)
        try:
            content = path.read_bytes() if path.stat().st_size <= MAX_RESOURCE_BYTES else None
        except OSError as exc:
            raise InvalidInput(f"{path} cannot be read: {exc.strerror}", "resource") from exc
        if content is None:
            raise InvalidInput(f"{path} is larger than {MAX_RESOURCE_BYTES} bytes", "resource")
        if not content:
            raise InvalidInput(f"{path} is empty", "resource")
        checksum = hashlib.sha256(content).hexdigest()
        owner, name_version = self._owner(name)
        doc, version = load_state(self.store, owner, apply_resource) if owner else (None, 0)
        if doc is not None and doc["versions"][-1]["checksum"] == checksum:
            return {"name": name, **doc["versions"][-1]}, False
        storage = self._put(checksum, content)
        number = 1 if doc is None else doc["version"] + 1
        added = ResourceAdded(
            name=name,
            resource_version=number,
            checksum=checksum,
            kind=kind,
            size=len(content),
            filename=path.name,
            storage=storage,
        )
        resource_id = owner or str(uuid.uuid4())
        batch = [NewEvent(resource_id, added)]
        expected = {resource_id: version}
        if owner is None:
            batch, expected = with_claim(RESOURCE_KIND, name, resource_id, name_version, batch, expected)
        try:
            recorded = self.store.append(batch, expected)
        except ConcurrencyError as exc:
            raise AlreadyExists(f"resource {name!r} was changed by another writer; run the command again") from exc
        folded = apply_resource(doc, recorded[-1])
        assert folded is not None
        return {"name": name, **folded["versions"][-1]}, True

    # -- content ------------------------------------------------------------------------------

    def _s3(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.settings.resource_endpoint_url)

    def _put(self, checksum: str, content: bytes) -> str:
        bucket = self.settings.resource_bucket
        if bucket:
            key = S3_PREFIX + checksum
            self._s3().put_object(Bucket=bucket, Key=key, Body=content)
            return f"s3://{bucket}/{key}"
        # Content-addressed: the same bytes under two names are stored once.
        self.redis.set(self.store.keys.resource_blob(checksum), content, nx=True)
        return REDIS_STORAGE

    def content(self, version: dict[str, Any]) -> bytes:
        """The bytes of one version, checked against its recorded checksum; ``NotFound`` if gone."""
        storage = version["storage"]
        if storage == REDIS_STORAGE:
            data: Any = self.redis.get(self.store.keys.resource_blob(version["checksum"]))
        else:
            bucket, _, key = storage.removeprefix("s3://").partition("/")
            try:
                data = self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:  # botocore's errors have no common root worth importing here
                raise NotFound(f"resource content at {storage} cannot be read: {exc}") from exc
        if data is None:
            raise NotFound(f"resource content {version['checksum']} is missing from the store")
        if hashlib.sha256(data).hexdigest() != version["checksum"]:
            raise NotFound(f"resource content {version['checksum']} does not match its checksum")
        return bytes(data)
