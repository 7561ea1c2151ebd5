"""Row 37: zip slip and archive bombs in a resource's archive.

Every entry is checked before anything is written: an absolute path, a ``..``, a link pointing out (or an
entry through one), a hard link out, a device node; more than 10,000 entries, more than 512 MB, or a
compression ratio over 200 refuse the whole archive (``unsafe_archive``); a zip's inflated bytes are
counted as they come (a size field can lie), and tar extraction also goes through ``filter='data'``.
Nothing is written outside the extraction folder; a run of such a resource fails ``SourceUnavailable``.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from queue_core import Client
from tests.support.archive_files import tar_bytes, tar_entry, zeros_tar_gz, zip_bytes
from tests.support.faults import assert_log_holds
from tests.support.jobs import resource_definition
from tests.support.processes import Procs
from workers.sources.archives import Limits, UnsafeArchive, extract_archive


def attacks(outside: Path) -> dict[str, tuple[str, bytes]]:
    """Each attack aims at ``outside``, a folder beside the extraction's."""
    return {
        "tar ../evil": ("tar", tar_bytes([(tar_entry("ok.sh"), b"x"), (tar_entry("../evil"), b"pwned")])),
        "tar /abs/evil": ("tar", tar_bytes([(tar_entry(f"{outside}/abs-evil"), b"pwned")])),
        "tar symlink out then through it": (
            "tar",
            tar_bytes([(tar_entry("link", tarfile.SYMTYPE, str(outside)), None), (tar_entry("link/evil"), b"pwned")]),
        ),
        "tar relative symlink out": ("tar", tar_bytes([(tar_entry("a/link", tarfile.SYMTYPE, "../../x"), None)])),
        "tar hardlink out": ("tar", tar_bytes([(tar_entry("hard", tarfile.LNKTYPE, "../outside"), None)])),
        "tar device node": ("tar", tar_bytes([(tar_entry("dev", tarfile.CHRTYPE), None)])),
        "tar.gz ../evil": ("tar.gz", tar_bytes([(tar_entry("a/../../evil"), b"pwned")], gz=True)),
        "zip ../evil": ("zip", zip_bytes([("ok.sh", b"x", stat.S_IFREG | 0o644), ("../evil", b"pwned", 0)])),
        "zip /abs/evil": ("zip", zip_bytes([(f"{outside}/abs-evil", b"pwned", 0)])),
        "zip symlink out": ("zip", zip_bytes([("link", str(outside).encode(), stat.S_IFLNK | 0o777)])),
    }


ATTACK_NAMES = list(attacks(Path("/nowhere")))


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_an_archive_attack_refuses_the_whole_archive_and_writes_nothing(attack: str, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    kind, content = attacks(outside)[attack]
    target = tmp_path / "extract" / "tree"
    with pytest.raises(UnsafeArchive, match="unsafe_archive"):
        extract_archive(content, kind, target)
    assert list((tmp_path / "extract").iterdir()) == []
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_an_archive_bomb_is_refused_by_size_and_ratio_limits(kind: str, tmp_path: Path):
    zeros = b"\0" * (4 * 1024 * 1024)
    if kind == "zip":
        content = zip_bytes([("zeros", zeros, stat.S_IFREG | 0o644)])
    else:
        content = tar_bytes([(tar_entry("zeros"), zeros)], gz=True)
    with pytest.raises(UnsafeArchive, match="bomb"):
        extract_archive(content, kind, tmp_path / "ratio" / "tree", Limits(ratio=100))
    with pytest.raises(UnsafeArchive, match="past 1048576 bytes"):
        extract_archive(content, kind, tmp_path / "size" / "tree", Limits(total_bytes=1024 * 1024, ratio=10**9))
    assert not (tmp_path / "ratio" / "tree").exists() and not (tmp_path / "size" / "tree").exists()


def test_a_gigabyte_of_zeros_is_refused_by_the_default_limits_before_any_byte_is_written(tmp_path: Path):
    content = zeros_tar_gz(gigabytes=1)
    assert len(content) < 2 * 1024 * 1024
    with pytest.raises(UnsafeArchive, match="past 536870912 bytes"):
        extract_archive(content, "tar.gz", tmp_path / "bomb" / "tree")
    assert list((tmp_path / "bomb").iterdir()) == []


def test_a_run_of_a_zip_slip_resource_fails_source_unavailable(
    client: Client, procs: Procs, redis_url: str, tmp_path: Path
):
    procs.fleet(redis_url)
    archive = tmp_path / "files" / "slip.zip"
    archive.parent.mkdir()
    archive.write_bytes(zip_bytes([("run.sh", b"echo ran\n", stat.S_IFREG | 0o755), ("../../escaped.sh", b"pwned", 0)]))
    client.add_resource("slip", archive)
    client.define(resource_definition("slip-job", "slip", "run.sh"))
    run = client.wait(client.submit("slip-job"), timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "SourceUnavailable")
    assert "unsafe_archive" in client.run_detail(run["id"])["message"]
    assert [line.line for line in client.logs(run["id"]) if line.stream == "stdout"] == []
    assert not _found(tmp_path, "escaped.sh")
    assert_log_holds(client, [run["id"]])


def _found(root: Path, name: str) -> list[str]:
    """Paths named ``name`` under ``root``; a folder the worker removes while we look (an attempt's) is skipped."""
    return [os.path.join(folder, name) for folder, _dirs, files in os.walk(root) if name in files]
