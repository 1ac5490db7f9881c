"""Subprocess plumbing: free ports, CPU pinning, readiness, HTTP probes, CPU time.

Everything here talks to 127.0.0.1 only, and every wait is bounded in time.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


def raise_nofile_limit(want: int = 65536) -> int:
    """Raise RLIMIT_NOFILE (inherited by every child) to ``want`` if allowed and
    return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        attempts = [(min(want, hard), hard)] if hard != resource.RLIM_INFINITY else []
        if hard != resource.RLIM_INFINITY and hard < want:
            attempts.insert(0, (want, want))  # raising the hard limit needs root
        if hard == resource.RLIM_INFINITY:
            attempts.append((want, hard))
        for limits in attempts:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, limits)
                break
            except (ValueError, OSError):
                continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinner(cpus: set[int] | None) -> Callable[[], None]:
    """A ``preexec_fn``: pin the child (and its threads) to ``cpus``, if any, and
    have the kernel SIGTERM it should the bench die without stopping it."""
    libc = _libc()  # looked up here: the child must not run ldconfig after fork

    def preexec() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def spawn(
    argv: Sequence[str],
    log: IO[bytes],
    cpus: set[int] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-running child in its own session, output to ``log``."""
    return subprocess.Popen(
        list(argv),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=pinner(cpus),  # noqa: PLW1509 - the bench is single-threaded
        env={**os.environ, **(env or {})},
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the child we started, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def request(
    method: str,
    port: int,
    path: str,
    body: Any = None,
    timeout: float = 5.0,
    *,
    token: str | None = None,
) -> tuple[int, Any]:
    """One HTTP request to 127.0.0.1:port (with ``token`` as its bearer token, if any);
    returns (status, decoded JSON or None)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        payload = None if body is None else orjson.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        data = raw.decode(errors="replace")
    return resp.status, data


def wait_ready(
    port: int, path: str, procs: Sequence[subprocess.Popen[bytes]], timeout: float
) -> None:
    """Poll ``GET path`` until 200; fail early if a child exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            status, _ = request("GET", port, path, timeout=1.0)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"127.0.0.1:{port}{path} not ready after {timeout}s ({last})")


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User+system CPU time of the given processes (all their threads)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLK_TCK


def machine_busy_seconds() -> float:
    """CPU time all CPUs spent running tasks (user, nice, system) or stolen by the
    hypervisor since boot, from /proc/stat. Interrupt time is left out: on
    loopback most of it is the benchmark's own traffic."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, steal = (int(fields[i]) for i in (0, 1, 2, 7))
    return (user + nice + system + steal) / _CLK_TCK


def wait_idle(pids: Sequence[int], timeout: float, busy: float = 0.05) -> bool:
    """Wait until the processes use less than ``busy`` of a core over 0.2 s.

    After a wrk run the server may still be working off requests whose
    connections wrk already closed; the next run must not start on top of them.
    """
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pids)
        if now - last < busy * 0.2:
            return True
        last = now
    return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
