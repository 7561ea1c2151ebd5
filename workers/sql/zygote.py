"""A warm SQL runner: one process per worker that has imported DuckDB once and forks a child per SQL attempt.

Starting Python and importing DuckDB costs a SQL run most of its fixed cost (0.15-0.4 s). The worker
starts this zygote beside it on its first SQL attempt (it dies with the worker: parent-death signal);
for each attempt it sends the runner's argument, working directory, environment and two pipe ends for
stdout and stderr, and the zygote forks. The child is its own process group, dies with the zygote, and
runs ``workers.sql.runner.main``; the zygote reports its pid, then how it ended. The worker supervises it as it
would a ``subprocess.Popen``: reads its pipes, kills its group on time-out or cancel.

The child runs nothing of the job until the zygote has sent its pid to the worker. So a worker that got
no pid knows no job code ran, and may ask a new zygote for the same attempt; one that got the pid and
then loses the zygote reports the child killed (it dies with the zygote), never runs it again itself.

This file runs by path (``python workers/sql/zygote.py FD``), not as ``-m``, so that no more than the
runner's own imports come before the first fork; the ``workers`` package imports nothing until asked, so
neither RQ nor redis reaches a child. The client half (``WarmRunner``) is imported by the worker.
"""

from __future__ import annotations

import array
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["WarmChild", "WarmRunner"]

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 16 * 1024 * 1024
PR_SET_PDEATHSIG = 1
READY_TIMEOUT_SECONDS = 30.0


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    payload = _HEADER.pack(len(data)) + data
    if fds:
        sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(payload)


def _recv_exact(sock: socket.socket, size: int, fds: list[int] | None = None) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        if fds is not None and not chunks:
            data, ancillary, _flags, _addr = sock.recvmsg(size - got, socket.CMSG_SPACE(2 * 4))
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", raw[: len(raw) - len(raw) % 4]))
        else:
            data = sock.recv(size - got)
        if not data:
            raise EOFError("the other side closed the socket")
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def _recv(sock: socket.socket, fds: list[int] | None = None) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, fds))
    if size > MAX_MESSAGE:
        raise EOFError("message too large")
    message: dict[str, Any] = json.loads(_recv_exact(sock, size))
    return message


def _die_with_parent() -> None:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # pragma: no cover - not Linux
        pass


# -- the zygote ------------------------------------------------------------------------------------


def _child(request: dict[str, Any], out: int, err: int, sock: socket.socket, zygote: int, runner: Any, go: int) -> None:
    """In the forked child: become the attempt's process (group, pipes, cwd, env), run the runner, exit.

    Nothing of the job runs before the zygote says ``go``, which it does once the worker has the child's
    pid: a zygote dying before that leaves a child that ran nothing, so the worker may ask a new one.
    """
    code = 1
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() != zygote:  # the zygote died between fork and prctl
            os._exit(137)
        sock.close()
        if os.read(go, 1) != b"g":  # the zygote died before the worker had this child's pid
            os._exit(137)
        os.close(go)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (devnull, out, err):
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = runner.main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve(fd: int) -> None:
    """Answer the worker's requests one at a time until it closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle, not ours
    from workers.sql import runner as sql_runner  # imports DuckDB: the point of this process

    sock = socket.socket(fileno=fd)
    _send(sock, {"ready": True})
    while True:
        fds: list[int] = []
        try:
            request = _recv(sock, fds)
        except (EOFError, OSError):
            return
        out, err = fds[0], fds[1]
        sys.stdout.flush()
        sys.stderr.flush()
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_write)
            _child(request, out, err, sock, os.getppid(), sql_runner, go_read)
        os.close(go_read)
        os.close(out)
        os.close(err)
        try:
            _send(sock, {"pid": pid})  # the worker supervises the child from here: only now may it run the job
            os.write(go_write, b"g")
        except BrokenPipeError:
            pass  # the child is gone already (killed); its end is reported below like any other
        finally:
            os.close(go_write)
        _, status = os.waitpid(pid, 0)
        _send(sock, {"returncode": os.waitstatus_to_exitcode(status)})


# -- the worker's side -----------------------------------------------------------------------------


class WarmChild:
    """A child forked by the zygote, with the parts of ``subprocess.Popen`` the supervision uses."""

    def __init__(self, runner: WarmRunner, pid: int, stdout: int, stderr: int) -> None:
        self._runner = runner
        self.pid = pid
        self.stdout = os.fdopen(stdout, "rb", buffering=0)
        self.stderr = os.fdopen(stderr, "rb", buffering=0)
        self.returncode: int | None = None

    def _collect(self, timeout: float | None) -> None:
        if self.returncode is not None:
            return
        sock = self._runner.sock
        assert sock is not None
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return
        try:
            self.returncode = int(_recv(sock)["returncode"])
        except (EOFError, OSError, KeyError, ValueError):
            self._runner.close()  # the zygote died; its children die with it
            self.returncode = -signal.SIGKILL

    def poll(self) -> int | None:
        self._collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._collect(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class WarmRunner:
    """The worker's handle on its zygote: started on first use, started again if it has died."""

    def __init__(self, prefix: list[str]) -> None:
        self.prefix = prefix  # e.g. setpriv --pdeathsig KILL --
        self.sock: socket.socket | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        script = Path(__file__).resolve()
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, str(script), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            preexec_fn=None if self.prefix else _die_with_parent,
        )
        theirs.close()
        ours.settimeout(READY_TIMEOUT_SECONDS)
        try:
            _recv(ours)
        finally:
            ours.settimeout(None)
        return ours

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def spawn(self, argv: list[str], cwd: Path, env: dict[str, str]) -> WarmChild:
        """Fork the runner with ``argv`` (its arguments after the script) in ``cwd`` with ``env``."""
        with self._lock:
            for attempt in range(2):
                try:
                    if self.sock is None or (self.process is not None and self.process.poll() is not None):
                        self.close()
                        self.sock = self._start()
                    out_r, out_w = os.pipe()
                    err_r, err_w = os.pipe()
                    try:
                        _send(self.sock, {"argv": argv, "cwd": str(cwd), "env": env}, [out_w, err_w])
                    finally:
                        os.close(out_w)
                        os.close(err_w)
                    try:
                        pid = int(_recv(self.sock)["pid"])
                    except BaseException:
                        os.close(out_r)
                        os.close(err_r)
                        raise
                    return WarmChild(self, pid, out_r, err_r)
                except (OSError, EOFError, KeyError, ValueError):
                    self.close()
                    if attempt:
                        raise
            raise AssertionError("unreachable")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
