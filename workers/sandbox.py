"""The sandbox every attempt's process runs in: bubblewrap around the job, a scrubbed environment, a probe.

Each attempt's process (a PYTHON or SHELL job, the SQL runner, anything started for a job) is started
through ``Sandbox.wrap``: bubblewrap gives it its own PID, IPC and UTS namespaces (and, with
``network: none``, its own empty network), a read-only view of the system and of the Python it runs on,
a private ``/tmp``, and its own attempt folder, writable; nothing else of the machine's files — not the
jobledger home (store socket, AOF, key files, other attempts), not the worker's home, not the store's
socket folder. A worker running as root runs the job as ``settings.job_user``.

The environment is built from an allowlist whether the sandbox is on or off: see ``job_environment``.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from queue_core.errors import JobledgerError
from queue_core.settings import SANDBOX_MODES, Settings

__all__ = [
    "NETWORK_NONE",
    "Sandbox",
    "SandboxUnavailable",
    "job_environment",
    "probe",
    "sandbox_for",
]

NETWORK_NONE = "none"
# What of the worker's environment a job gets: nothing that could name a credential or a setting of jobledger.
ALLOWED_VARIABLES = ("PATH", "LANG", "TZ")
ALLOWED_PREFIXES = ("LC_",)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX_TMP = "/tmp"
# The system, read-only. On a merged-/usr system the top-level folders are symlinks into /usr.
SYSTEM_DIRS = ("/usr", "/etc")
TOP_LEVEL_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
FIX_HINT = "install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)"
PROBE_TIMEOUT_SECONDS = 10.0


class SandboxUnavailable(JobledgerError):
    """Raised at worker start when jobs would have to run unsandboxed and the settings do not allow it."""

    exit_code = 2


def job_environment(
    variables: Mapping[str, str], home: Path, tmpdir: str, inherited: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a job gets: the allowlisted part of the worker's, its ``HOME``/``TMPDIR``, then ``variables``.

    ``variables`` are the definition's ``envVars`` (secrets resolved) and ``JOBLEDGER_RUN_ID`` and the
    like; nothing else of the worker's (``REDIS_*``, ``JOBLEDGER_*``, ``AWS_*``) reaches the job.
    """
    source = os.environ if inherited is None else inherited
    env = {k: v for k, v in source.items() if k in ALLOWED_VARIABLES or k.startswith(ALLOWED_PREFIXES)}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(HOME=str(home), TMPDIR=tmpdir, PYTHONUNBUFFERED="1")
    env.update(variables)
    return env


@dataclass(frozen=True)
class JobUser:
    """The unprivileged user a root worker runs jobs as."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Sandbox:
    """How this worker starts an attempt's process: ``enabled`` (bubblewrap) or not, and as whom."""

    enabled: bool
    user: JobUser | None = None
    readable: tuple[Path, ...] = ()  # besides the system: the Python the jobs run on, jobledger's code
    hidden: tuple[Path, ...] = ()  # never visible, even where it lies inside a readable folder
    guarded: tuple[Path, ...] = ()  # never shown as a depot folder, nor anything in them
    bwrap: str = "bwrap"
    setpriv: str = "setpriv"
    notes: tuple[str, ...] = field(default=())  # what the worker says once at start

    def prepare(self, folder: Path, writable: Iterable[Path]) -> None:
        """Let the job's user into ``folder`` and write to ``writable`` (its parts of the attempt folder).

        ``folder`` itself stays the worker's: the note of which session the job leads lives there, and a
        job that could replace it could make a later worker kill another process group.
        """
        if not self.enabled or self.user is None:
            return
        folder.chmod(0o755)
        for top in writable:
            for path in [top, *top.rglob("*")]:
                os.lchown(path, self.user.uid, self.user.gid)

    def wrap(
        self, argv: list[str], folder: Path, cwd: Path, network: str | None = None, binds: Iterable[Path] = ()
    ) -> list[str]:
        """``argv`` run inside the sandbox, with ``folder`` (and ``binds``) writable; ``argv`` as is when off."""
        if not self.enabled:
            return argv
        head, seen, created = _system_view(self, network)
        args, mounted, made = list(head), list(seen), set(created)
        for path in self.hidden:  # looked at each time: a hidden folder made since is hidden too
            if path.is_dir() and _inside(path, mounted) and path not in mounted:
                args += ["--tmpfs", str(path)]
        # A depot folder holding the home (or being the store's, a key's or the runs' folder) is not shown:
        # a depot is anyone's to define, its path too.
        shown = [b for b in binds if not any(h == b or b in h.parents for h in self.hidden)]
        shown = [b for b in shown if not _inside(b, self.guarded)]
        for path in [folder, *shown]:
            args += [*_parents(path, mounted, made), "--bind", str(path), str(path)]
            mounted.append(path)
        args += ["--chdir", str(cwd)]
        if self.user is None:
            return [*args, "--", *argv]
        # bubblewrap drops every capability but these two; setpriv uses them to become the job user, who
        # then has none (and no_new_privs: nothing it executes can gain any).
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", self.setpriv]
        return [*args, f"--reuid={self.user.uid}", f"--regid={self.user.gid}", "--clear-groups", "--", *argv]


@functools.lru_cache(maxsize=8)
def _system_view(sandbox: Sandbox, network: str | None) -> tuple[tuple[str, ...], tuple[Path, ...], frozenset[Path]]:
    """bubblewrap's arguments for the system's view (the same for every attempt of a worker: looked at once),
    with the folders they mount and the ones they create; the hidden folders and the attempt's are added per
    attempt."""
    # bubblewrap leads the job's process group; it dies with the worker (--die-with-parent), and every
    # process of the sandbox with it. The worker spares it the SIGTERM meant for the job (see run_child).
    args = [sandbox.bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    if network == NETWORK_NONE:
        args.append("--unshare-net")
    args += ["--perms", "1777", "--tmpfs", SANDBOX_TMP, "--proc", "/proc", "--dev", "/dev"]
    mounted: list[Path] = []
    made: set[Path] = {Path("/"), Path(SANDBOX_TMP)}
    for name in TOP_LEVEL_LINKS:
        top = Path(name)
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), name]
        elif top.is_dir():
            args += ["--ro-bind", name, name]
            mounted.append(top)
    for path in [*map(Path, SYSTEM_DIRS), *sandbox.readable]:
        if path.is_dir() and not _inside(path, mounted):
            args += [*_parents(path, mounted, made), "--ro-bind", str(path), str(path)]
            mounted.append(path)
    return tuple(args), tuple(mounted), frozenset(made)


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def _parents(path: Path, mounted: list[Path], made: set[Path]) -> list[str]:
    """Folders leading to ``path`` that bubblewrap would otherwise create 0700 (a job user could not pass)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent not in made and not _inside(parent, mounted):
            args += ["--perms", "0755", "--dir", str(parent)]
            made.add(parent)
    return args


def _runtime_dirs() -> tuple[Path, ...]:
    """The Python the jobs run on (its prefix, its base installation) and jobledger's packages."""
    import queue_core

    packages = [Path(queue_core.__file__).resolve().parent, Path(__file__).resolve().parent]
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    return tuple(sorted(prefixes)) + tuple(packages)


def _socket_folder(url: str | None) -> Path | None:
    if not url:
        return None
    parts = urlsplit(url)
    return Path(parts.path).parent if parts.scheme == "unix" and parts.path else None


def _secret_folders(settings: Settings) -> list[Path]:
    """The store's socket folder (an external store's too) and the key files' folders."""
    folders = [settings.secret_key_path.parent, settings.ledger_key_path.parent]
    socket = _socket_folder(settings.redis_url)
    return [*folders, socket] if socket is not None else folders


def _hidden(settings: Settings) -> tuple[Path, ...]:
    hidden = [settings.home, Path.home(), *_secret_folders(settings)]
    return tuple(dict.fromkeys(p.resolve() for p in hidden if p.resolve() != Path("/")))


def _guarded(settings: Settings) -> tuple[Path, ...]:
    home = settings.home
    parts = [home / "runs", home / "redis", home / "cache", home / "keys", Path.home(), *_secret_folders(settings)]
    return tuple(dict.fromkeys(p.resolve() for p in parts if p.resolve() != Path("/")))


def _job_user(settings: Settings) -> JobUser | None:
    if os.geteuid() != 0:
        return None  # an unprivileged worker cannot switch user: jobs run as the worker's user, sandboxed
    try:
        entry = pwd.getpwnam(settings.job_user)
    except KeyError:
        raise SandboxUnavailable(
            f"job user {settings.job_user!r} does not exist on this machine: create it, or set JOBLEDGER_JOB_USER"
        ) from None
    if entry.pw_uid == 0:
        raise SandboxUnavailable(
            f"job user {settings.job_user!r} is root: set JOBLEDGER_JOB_USER to an unprivileged user"
        )
    return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


@functools.lru_cache(maxsize=8)
def probe(bwrap: str | None = None) -> str | None:
    """None when bubblewrap runs a command in new namespaces on this machine; else why not (one line)."""
    binary = bwrap or shutil.which("bwrap")
    if binary is None:
        return "bubblewrap (bwrap) is not installed"
    if sys.platform != "linux":
        return f"bubblewrap needs Linux namespaces, not {sys.platform}"
    command = [binary, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    command += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=PROBE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap cannot run: {exc}"
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap cannot create namespaces here ({reason[-1] if reason else f'exit {done.returncode}'})"
    return None


def is_embedded(settings: Settings) -> bool:
    """Whether the store is this home's own embedded one (one person's machine), not an external store."""
    from queue_core.eventlog.embedded import EmbeddedRedis

    return not settings.external_store or settings.redis_url == EmbeddedRedis(settings.home).url


def sandbox_for(settings: Settings) -> Sandbox:
    """The sandbox jobs get from this worker, per ``JOBLEDGER_SANDBOX``; ``SandboxUnavailable`` to refuse to start.

    ``on`` needs a working bubblewrap; ``off`` runs jobs unsandboxed (said once); ``auto`` sandboxes where it
    can, refuses an external store without it, and with the embedded store runs unsandboxed, loudly.
    """
    mode = settings.sandbox
    if mode not in SANDBOX_MODES:
        raise SandboxUnavailable(f"JOBLEDGER_SANDBOX must be one of {', '.join(SANDBOX_MODES)}, not {mode!r}")
    if mode == "off":
        return Sandbox(
            False,
            notes=("jobs run without a sandbox (JOBLEDGER_SANDBOX=off): each sees this machine as the worker does",),
        )
    problem = probe()
    if problem is None:
        bwrap, setpriv = shutil.which("bwrap"), shutil.which("setpriv")
        if bwrap and setpriv:
            user, readable, hidden = _job_user(settings), _runtime_dirs(), _hidden(settings)
            return Sandbox(True, user, readable, hidden, _guarded(settings), bwrap, setpriv)
        problem = "setpriv (util-linux) is missing"
    if mode == "on":
        raise SandboxUnavailable(f"JOBLEDGER_SANDBOX=on but {problem}: {FIX_HINT}")
    if not is_embedded(settings):
        raise SandboxUnavailable(
            f"jobs would run unsandboxed against an external store: {problem}; {FIX_HINT}, "
            "or set JOBLEDGER_SANDBOX=off to run them so knowingly"
        )
    return Sandbox(
        False,
        notes=(
            f"WARNING: jobs are NOT sandboxed: {problem}; a job can read this machine's jobledger home. "
            f"To fix: {FIX_HINT}",
        ),
    )
