"""One level of the sweep: ``count`` conversations on a fresh worker, or on a fresh floor.

Each level starts its target afresh, so its memory is measured from the same start: the
worker (``python -m worker``) or the floor process (``bench.agents.floor``) on the server's
CPU, warmed up by a few quick turns, then left idle for a second (its RSS then is the
baseline). The provider switches to the real pace, the conversations start, spread over the
ramp, and once all are under way the window opens: the target's CPU time over it, its largest
RSS in it, and the tokens the driver received in it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from bench.agents.floor import agent_spec
from bench.agents.lag import Summary
from bench.agents.provider import QUICK, Pace, Providers
from bench.streaming.procs import CpuMeter, Placement, placed
from worker.testing import NatsServer, WorkerProcess

WORKER = "worker"
FLOOR = "floor"


@dataclass(frozen=True)
class Plan:
    """What every level shares."""

    nats: NatsServer
    providers: Providers
    place: Placement
    pace: Pace
    ramp: float
    seconds: float
    warmup: int
    worker_env: dict[str, str]


@dataclass
class Level:
    """One target at one count of conversations."""

    target: str
    count: int
    threads: bool
    summary: Summary
    cpu: dict[str, float]
    """CPU seconds over the window: target, providers, loadgen (worker side), nats."""
    seconds: float
    rss_idle: int
    rss_peak: int

    @property
    def tokens_per_s(self) -> float:
        return self.summary.tokens / self.seconds

    @property
    def cpu_us_per_token(self) -> float:
        return self.cpu["target"] / self.summary.tokens * 1e6 if self.summary.tokens else 0.0

    @property
    def rss_per_conversation(self) -> float:
        """Bytes of RSS growth over the idle baseline per conversation."""
        return (self.rss_peak - self.rss_idle) / self.count

    def share(self, name: str) -> float:
        """``name``'s CPU over the window, as a share of one CPU."""
        return self.cpu.get(name, 0.0) / self.seconds

    @property
    def holds(self) -> bool:
        """Token lag p99 under 100 ms, with no failed turn."""
        return self.summary.tokens > 0 and self.summary.p99_ms < 100 and not self.summary.errors

    @property
    def label(self) -> str:
        return self.target if self.threads else f"{self.target} (no threads)"


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def create_agents(url: str, base_urls: list[str]) -> list[str]:
    """One ``agent`` per provider process, configured as the floor's graphs are."""
    ids = []
    async with aiohttp.ClientSession() as http:
        for base_url in base_urls:
            body = {"type": "agent", "name": "bench", "config": agent_spec(base_url)}
            async with http.post(f"{url}/v1/agents", json=body) as resp:
                resp.raise_for_status()
                ids.append((await resp.json())["id"])
    return ids


async def takes_threads(url: str, agent: str) -> bool:
    """Whether the worker runs a turn on a ``thread_id``: False when its stream door refuses
    the field (workers before threads do), or takes it and keeps no thread."""
    thread_id = f"bench-probe-{uuid.uuid4().hex}"
    body = {"input": "What is 6*7?", "thread_id": thread_id, "timeout": "60s"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/v1/agents/{agent}/stream", json=body) as resp:
            text = await resp.text()
        if resp.status == 400 and "thread_id" in text:
            return False
        if resp.status != 200:
            raise RuntimeError(f"probe of thread_id: HTTP {resp.status}: {text[:300]}")
        async with http.get(f"{url}/v1/threads/{thread_id}") as resp:
            return resp.status == 200


async def _line(stream: IO[str], limit: float) -> str:
    line = await asyncio.wait_for(asyncio.to_thread(stream.readline), limit)
    if not line:
        raise RuntimeError("the driver ended early")
    return line.strip()


def _flag(threads: bool) -> str:
    return "--threads" if threads else "--no-threads"


def _driver(module: str, args: list[str], cpus: set[int] | None) -> subprocess.Popen[str]:
    with placed(cpus):
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )


async def run_level(plan: Plan, target: str, count: int, threads: bool | None) -> Level:
    """``count`` conversations on ``target``; ``threads`` None: use them if the worker takes
    them (the Level says which it was)."""
    await plan.providers.pace(QUICK)
    state = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    worker: WorkerProcess | None = None
    driver: subprocess.Popen[str] | None = None
    try:
        common = ["--conversations", str(count), "--warmup", str(plan.warmup)]
        if target == WORKER:
            env = {
                "WORKER_NATS_URL": plan.nats.url,
                "WORKER_HTTP_PORT": "0",
                "WORKER_STATE_DIR": str(state),
                "WORKER_LOG_LEVEL": "warning",
                "WORKER_JOBS_ENABLED": "false",
                # Past it the stream door would queue turns: the level is what is measured.
                "WORKER_MAX_CONCURRENT_INVOCATIONS": str(max(256, 2 * count)),
                **plan.worker_env,
            }
            with placed(plan.place.server):
                worker = WorkerProcess(env).start()
            agents = await create_agents(worker.url, plan.providers.base_urls)
            if threads is None:
                threads = await takes_threads(worker.url, agents[0])
            args = ["--url", worker.url, "--agents", ",".join(agents), _flag(threads)]
            driver = _driver("bench.agents.clients", [*args, *common], plan.place.loadgen)
            pid = worker.proc.pid if worker.proc else 0
            pids = {"target": pid, "loadgen": driver.pid}
        else:
            threads = True if threads is None else threads
            urls = ",".join(plan.providers.base_urls)
            args = ["--nats", plan.nats.url, "--providers", urls, _flag(threads)]
            driver = _driver("bench.agents.floor", [*args, *common], plan.place.server)
            pid = driver.pid
            pids = {"target": pid}
        assert driver.stdin is not None
        assert driver.stdout is not None
        if await _line(driver.stdout, 180) != "warm":
            raise RuntimeError("the driver did not warm up")
        await plan.providers.pace(plan.pace)
        await asyncio.sleep(1.0)
        idle = rss(pid)
        start = time.time() + 0.5
        window_start = start + plan.ramp
        schedule = {
            "start": start,
            "ramp": plan.ramp,
            "window_start": window_start,
            "window_end": window_start + plan.seconds,
        }
        driver.stdin.write(json.dumps(schedule) + "\n")
        driver.stdin.flush()
        peak, cpu = await _watch(plan, pids, pid, window_start, window_start + plan.seconds)
        summary = Summary.load(json.loads(await _line(driver.stdout, 120)))
    finally:
        if driver is not None:
            driver.kill()
            driver.wait(10)
        if worker is not None:
            worker.stop()
        shutil.rmtree(state, ignore_errors=True)
    return Level(target, count, threads, summary, cpu, plan.seconds, idle, peak)


async def _watch(
    plan: Plan, pids: dict[str, int], pid: int, start: float, end: float
) -> tuple[int, dict[str, float]]:
    """The target's largest RSS and everyone's CPU seconds between ``start`` and ``end``."""
    nats_pid = plan.nats.proc.pid if plan.nats.proc else 0
    meter = CpuMeter({**pids, "nats": nats_pid})
    await asyncio.sleep(max(0.0, start - time.time()))
    meter.start()
    providers = plan.providers.cpu_seconds()
    peak = rss(pid)
    while time.time() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.time())))
        peak = max(peak, rss(pid))
    meter.stop()
    used: dict[str, Any] = dict(meter.used)
    used["providers"] = plan.providers.cpu_seconds() - providers
    return peak, used
