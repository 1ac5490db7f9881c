"""Where the benchmark's processes run and how much CPU they use (Linux ``/proc``).

On a small machine the load generator (the WebSocket clients and the frame publisher) competes
with the server it measures. By default the server under test (the worker, or the bare loop)
gets the first CPU and the load generator the others, the way ``bench.http`` pins them.
nats-server runs beside the load generator (it stands for the pool's NATS, and the bare loop
needs none, so a CPU of its own is the same condition for both servers); its CPU time is
reported apart. Children inherit the affinity of the process that starts them, which covers
every thread they start later (nats-server's Go threads too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Placement:
    """CPUs of the server under test, of the load generator and of nats-server (None: any)."""

    server: set[int] | None
    loadgen: set[int] | None
    nats: set[int] | None

    @classmethod
    def plan(cls, *, pin: bool, nats: str) -> Placement:
        """Server on the first CPU, the rest for the load generator; nats-server with the
        ``server``, with the ``loadgen`` or on ``any`` CPU."""
        cpus = sorted(os.sched_getaffinity(0))
        if not pin or len(cpus) < 2:
            return cls(None, None, None)
        server, loadgen = {cpus[0]}, set(cpus[1:])
        where = {"server": server, "loadgen": loadgen, "any": None}[nats]
        return cls(server, loadgen, where)

    def describe(self) -> str:
        if self.server is None or self.loadgen is None:
            return "no CPU pinning"

        def name(cpus: set[int] | None) -> str:
            return "any CPU" if cpus is None else "CPU " + ",".join(map(str, sorted(cpus)))

        return (
            f"server under test (worker or bare loop) on {name(self.server)}, "
            f"nats-server on {name(self.nats)}, "
            f"load generator (clients and publisher) on {name(self.loadgen)}"
        )


@contextlib.contextmanager
def placed(cpus: set[int] | None) -> Iterator[None]:
    """Run this process on ``cpus`` while children are started here (they inherit it)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` (all its threads) so far; 0.0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


class CpuMeter:
    """CPU seconds that named processes use between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self) -> None:
        self.used = {
            name: cpu_seconds(pid) - self._start.get(name, 0.0) for name, pid in self._pids.items()
        }


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (the worker runs on it), else asyncio's loop:
    the servers compared run on the same loop, and the load generator spends less per frame."""
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
