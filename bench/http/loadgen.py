"""The load generator: wrk (Debian's ``wrk`` package), one process per run.

Why wrk and not a Python asyncio/aiohttp client: the servers under test are
single-event-loop Python processes, so a Python client would cost about as
much per request as the server it measures and would become the bottleneck
on a 2-core machine. Measured here against the bare aiohttp echo server
(server pinned to CPU 0, client to CPU 1, 64 keep-alive connections, 5 s):

* wrk -t1: 3,156 req/s using 9% of its core;
* aiohttp ClientSession + uvloop, 64 tasks: 2,286 req/s using 55% of its
  core (and it lowered the server's throughput by 28%).

wrk is C with an epoll loop, keeps 1,000 connections on one thread and
reports a latency histogram (``--latency``), so one wrk thread on the core
the servers don't use stays far from saturation. Requests are POSTs built by
``post.lua``, whose ``done()`` hook prints one JSON summary line that is
parsed here. Errors are wrk's socket errors (connect, read, write, timeout)
plus its status errors (HTTP status >= 400; the bench checks once per target,
before loading it, that the endpoint answers 200 with the expected output).
A request slower than ``--timeout`` counts as a timeout error and is left
out of the latency percentiles (wrk's rule).
"""

from __future__ import annotations

import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.http import procs

LUA_SCRIPT = Path(__file__).with_name("post.lua")
INSTALL_HINT = (
    "wrk, the load generator of bench.http, is not on PATH. Install it with\n"
    "    sudo apt-get install -y wrk     (Debian/Ubuntu)\n"
    "    brew install wrk                (macOS)\n"
    "and run the command again."
)
_MARK = "BENCH_RESULT "


@dataclass(frozen=True)
class RunResult:
    requests: int
    seconds: float
    connect_errors: int
    read_errors: int
    write_errors: int
    status_errors: int
    timeouts: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    loadgen_cpu: float  # fraction of one core used by wrk
    server_cpu: float  # fraction of one core used by the server process(es)
    other_cpu: float  # cores used by everything else on the machine meanwhile

    @property
    def rps(self) -> float:
        """Successful responses per second (error responses are not counted)."""
        ok = self.requests - self.status_errors
        return ok / self.seconds if self.seconds else 0.0

    @property
    def rps_per_core(self) -> float:
        """Successful responses per second of server CPU time: req/s had the server
        had one core all to itself, whatever else ran on the machine."""
        cpu_seconds = self.server_cpu * self.seconds
        return (self.requests - self.status_errors) / cpu_seconds if cpu_seconds else 0.0

    @property
    def cpu_us_per_response(self) -> float:
        """Server CPU time per response (errors included), in microseconds.

        Unlike req/s this barely moves when other processes share the machine.
        """
        return self.server_cpu * self.seconds / self.requests * 1e6 if self.requests else 0.0

    def error_detail(self) -> str:
        """Total errors, with the non-zero kinds, e.g. ``12 (http 10, timeout 2)``."""
        kinds = {
            "http": self.status_errors,
            "timeout": self.timeouts,
            "connect": self.connect_errors,
            "read": self.read_errors,
            "write": self.write_errors,
        }
        parts = [f"{name} {count}" for name, count in kinds.items() if count]
        return f"{self.errors} ({', '.join(parts)})" if parts else "0"

    @property
    def errors(self) -> int:
        return (
            self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.status_errors
            + self.timeouts
        )


def find_wrk() -> str | None:
    return shutil.which("wrk")


def run(
    *,
    wrk: str,
    url: str,
    connections: int,
    seconds: int,
    threads: int,
    timeout_s: int,
    cpus: set[int] | None,
    server_pids: tuple[int, ...],
    headers: tuple[str, ...] = (),
) -> RunResult:
    """One wrk run against ``url``, each request with ``headers`` (``"Name: value"``) too;
    bounded by ``seconds`` plus a grace period."""
    argv = [
        wrk,
        *(f"-H{header}" for header in headers),
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s}s",
        "--latency",
        f"-s{LUA_SCRIPT}",
        url,
    ]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_server = procs.cpu_seconds(server_pids)
    before_machine = procs.machine_busy_seconds()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + timeout_s + 30,
        preexec_fn=procs.pinner(cpus),
        check=False,
    )
    server_cpu = procs.cpu_seconds(server_pids) - before_server
    machine = procs.machine_busy_seconds() - before_machine
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after_children.ru_utime - before_children.ru_utime) + (
        after_children.ru_stime - before_children.ru_stime
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = orjson.loads(line[len(_MARK) :])
    wall = data["duration_us"] / 1e6
    # wrk's own time counts from its start, a little longer than ``wall``.
    other = max(0.0, machine - server_cpu - wrk_cpu)
    return RunResult(
        requests=data["requests"],
        seconds=wall,
        connect_errors=data["connect"],
        read_errors=data["read"],
        write_errors=data["write"],
        status_errors=data["status"],
        timeouts=data["timeout"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        loadgen_cpu=wrk_cpu / wall if wall else 0.0,
        server_cpu=server_cpu / wall if wall else 0.0,
        other_cpu=other / wall if wall else 0.0,
    )
