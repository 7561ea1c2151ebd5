"""``jobledger secret rotate-key``: every value re-encrypted under a new key, recorded; a crash loses nothing, a
concurrent set is kept, a rerun finishes the job; a process without the new key says which key it lacks."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from queue_core import Client, Settings
from queue_core.keys import Keys
from queue_core.secret_cipher import SecretKeyMissing, decode_keyring, key_id, sealed_key_id
from queue_core.services.secrets import SecretStore
from tests.support.processes import Procs, eventually

VALUES = {f"rotation-secret-{i:04d}": f"value-{i:04d}-{'x' * 40}" for i in range(600)}
PIPE_BYTES = 4096  # the smallest pipe Linux gives: rotate-key blocks on its progress lines long before the end


def _keys_in_file(client: Client) -> list[str]:
    path = client.settings.secret_key_path
    return [key_id(key) for key in decode_keyring(path.read_bytes(), path)]


def _key_ids_in_store(connection: redis.Redis) -> dict[str, str | None]:
    stored: dict[bytes, bytes] = connection.hgetall(Keys().secrets)  # type: ignore[assignment]
    return {field.decode(): sealed_key_id(value) for field, value in stored.items() if not field.startswith(b"@")}


def _rotations(client: Client) -> list[tuple[str, str]]:
    return [(r.event.old_key_id, r.event.new_key_id) for r in client.events(type="SecretKeyRotated")]  # type: ignore[attr-defined]


def test_rotate_key_reencrypts_every_value_records_it_and_keeps_only_the_new_key(
    client: Client, procs: Procs, connection: redis.Redis
):
    client.set_secret("one", "first value")
    client.set_secret("two", "second\nvalue, two lines")
    (old,) = _keys_in_file(client)
    result = procs.cli("secret", "rotate-key")
    assert result.returncode == 0, result.stderr
    (new,) = _keys_in_file(client)
    assert new != old
    assert sorted(result.stdout.splitlines()[:2]) == ["re-encrypted one", "re-encrypted two"]
    assert f"secret key rotated: {old} -> {new}" in result.stdout
    assert _key_ids_in_store(connection) == {"one": new, "two": new}
    assert client.secrets.resolve(["one", "two"]) == {"one": "first value", "two": "second\nvalue, two lines"}
    assert _rotations(client) == [(old, new)]
    events = json.loads(procs.cli("events", "--json", "--aggregate", "secret-key").stdout)
    assert [e["data"] for e in events] == [{"old_key_id": old, "new_key_id": new}]


def test_a_rotation_killed_midway_loses_no_value_keeps_a_concurrent_set_and_a_rerun_finishes_it(
    client: Client, env: dict[str, str], connection: redis.Redis
):
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("needs Linux's F_SETPIPE_SZ to give rotate-key a pipe it fills")
    for name, value in VALUES.items():
        client.set_secret(name, value)
    (old,) = _keys_in_file(client)
    reader, writer = os.pipe()
    fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    # Nobody reads the pipe: once it and Python's buffer are full, the rotation blocks mid-way, for as long as
    # it takes to see it there; the kill lands at a point the test observed, not at a point it hoped for.
    rotation = subprocess.Popen(
        [sys.executable, "-m", "queue_core", "secret", "rotate-key"], env=env, stdout=writer, stderr=subprocess.DEVNULL
    )
    os.close(writer)
    try:
        moved = eventually(
            lambda: [n for n, kid in _key_ids_in_store(connection).items() if kid not in (old, None)],
            what="the rotation to re-encrypt some values",
        )
        new = sealed_key_id(connection.hget(Keys().secrets, moved[0]))  # type: ignore[arg-type]
        client.set_secret("set-during-rotation", "a value set while the rotation ran")
        assert rotation.poll() is None
        ids = _key_ids_in_store(connection)
        assert {ids[name] for name in VALUES} == {old, new}  # part-way: both keys in use
        rotation.send_signal(signal.SIGKILL)
        rotation.wait()
    finally:
        os.close(reader)
        if rotation.poll() is None:
            rotation.kill()
    assert _keys_in_file(client) == [new, old]  # the old key is still there: nothing sealed under it is lost
    assert _key_ids_in_store(connection)["set-during-rotation"] == new
    everything = {**VALUES, "set-during-rotation": "a value set while the rotation ran"}
    fresh = Client(settings=client.settings)
    assert fresh.secrets.resolve(everything) == everything
    assert _rotations(client) == []

    rerun = subprocess.run(
        [sys.executable, "-m", "queue_core", "secret", "rotate-key"], env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"secret key rotated: {old} -> {new}" in rerun.stdout  # the interrupted rotation, finished
    assert _keys_in_file(client) == [new]
    assert set(_key_ids_in_store(connection).values()) == {new}
    assert Client(settings=client.settings).secrets.resolve(everything) == everything
    assert _rotations(client) == [(old, new)]


def test_a_process_without_the_new_key_fails_with_one_line_naming_its_id(
    client: Client, procs: Procs, tmp_path: Path, env: dict[str, str]
):
    client.set_secret("one", "first value")
    stale = tmp_path / "stale-keys"
    stale.mkdir(mode=0o700)
    shutil.copy2(client.settings.secret_key_path, stale / "secret.key")
    assert procs.cli("secret", "rotate-key").returncode == 0
    (new,) = _keys_in_file(client)
    elsewhere = Settings(**{**client.settings.__dict__, "secret_key_file": stale / "secret.key"})
    with pytest.raises(SecretKeyMissing, match=f"key {new},.*JOBLEDGER_SECRET_KEY_FILE") as missing:
        SecretStore(client.store, elsewhere).resolve(["one"])
    assert missing.value.key_id == new
    length = client.store.length()
    refused = subprocess.run(
        [sys.executable, "-m", "queue_core", "secret", "set", "two"],
        env={**env, "JOBLEDGER_SECRET_KEY_FILE": str(stale / "secret.key")},
        input="second value",
        capture_output=True,
        text=True,
    )
    assert (refused.returncode, refused.stderr.count("\n")) == (2, 1), refused.stderr
    assert new in refused.stderr and "JOBLEDGER_SECRET_KEY_FILE" in refused.stderr
    assert client.store.length() == length and client.list_secrets() == ["one"]
