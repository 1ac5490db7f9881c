"""The load generator's WebSocket watchers and the two kinds of phase (worker, bare loop).

A watcher counts the frames it receives between ``start`` and ``until`` and samples their lag
(receive time minus the frame's ``ts``). One deadline covers a watcher's whole loop rather than
a timeout per message, so the clients cost as little per frame as they can: the same clients
measure the worker and the bare loop, and what they spend is CPU the servers cannot use.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
import nats
import orjson

from bench.streaming.procs import CpuMeter
from worker.streaming.frames import STARTED, Draft
from worker.streaming.hub import StreamOptions
from worker.streaming.log import FrameLog


@dataclass
class Result:
    """What one phase delivered, as the clients saw it, and the CPU it took."""

    target: str
    mode: str
    connections: int
    seconds: float
    frames: int = 0
    lags: list[float] = field(default_factory=list)
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process over the measured window: server, nats, loadgen."""

    @property
    def rate(self) -> float:
        return self.frames / self.seconds

    def pct(self, p: float) -> float:
        if not self.lags:
            return float("nan")
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

    def cpu_share(self, name: str) -> float:
        """Share of one CPU that ``name`` used over the measured window."""
        return self.cpu.get(name, 0.0) / self.seconds

    def cpu_per_frame_us(self, name: str) -> float:
        """CPU microseconds ``name`` spent per delivered frame."""
        return self.cpu.get(name, 0.0) / self.frames * 1e6 if self.frames else float("nan")


async def watch(
    session: aiohttp.ClientSession,
    url: str,
    result: Result,
    *,
    start: float,
    until: float,
    sample: int,
) -> None:
    """One WebSocket client: count frames and sample lags between ``start`` and ``until``."""
    loop = asyncio.get_running_loop()
    n = 0
    try:
        async with session.ws_connect(url, max_msg_size=0, heartbeat=None) as ws:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(until):
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if loop.time() < start:
                            continue
                        n += 1
                        if n % sample == 0:
                            ts = orjson.loads(msg.data)["ts"]
                            result.lags.append(time.time() - datetime.fromisoformat(ts).timestamp())
                        result.frames += 1
    except (aiohttp.ClientError, OSError):
        result.errors += 1


async def _metered(meter: CpuMeter, start: float, until: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start - loop.time())
    meter.start()
    await asyncio.sleep(until - loop.time())
    meter.stop()


@contextlib.asynccontextmanager
async def frame_log(url: str) -> AsyncIterator[FrameLog]:
    nc = await nats.connect(url)
    opts = StreamOptions()
    flog = FrameLog(nc=nc, js=nc.jetstream(), stream=opts.stream, limits=opts.limits)
    try:
        yield flog
    finally:
        await nc.close()


async def run_worker_phase(
    worker_url: str,
    nats_url: str,
    conns: int,
    *,
    mode: str,
    seconds: float,
    sample: int,
    meter: Callable[[dict[str, int]], CpuMeter],
) -> Result:
    """Watchers of the worker's ``/v1/tasks/{id}/events``; a publisher process feeds the
    frames stream (one task per watcher when paced, ten watchers per task in a flood)."""
    per_task = 1 if mode == "paced" else 10
    tasks = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(max(1, conns // per_task))]
    result = Result("worker", mode, conns, seconds)
    async with frame_log(nats_url) as flog:
        await flog.ensure()
        for t in tasks:
            first = Draft(status=STARTED, progress=0, message="bench")
            await flog.publish_async(t, first.encode(task_id=t, seq=1, attempt=1), seq=1)
        await flog.js.publish_async_completed()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        loop = asyncio.get_running_loop()
        warm = loop.time() + 3 + conns / 500
        until = warm + seconds
        base = worker_url.replace("http", "ws", 1)
        watchers = [
            asyncio.create_task(
                watch(
                    session,
                    f"{base}/v1/tasks/{tasks[i % len(tasks)]}/events?from_seq=2",
                    result,
                    start=warm,
                    until=until,
                    sample=sample,
                )
            )
            for i in range(conns)
        ]
        rate = "10" if mode == "paced" else "0"
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.streaming.publish",
            nats_url,
            rate,
            str(time.time() + (warm - 1 - loop.time())),  # a second early: frames flowing
            str(seconds + 1.5),  # and a little after the end, so no watcher runs dry
            *tasks,
        )
        cpu = meter({"publisher": publisher.pid})
        metering = asyncio.create_task(_metered(cpu, warm, until))
        await asyncio.gather(*watchers)
        await metering
        await publisher.wait()
    result.cpu = cpu.used
    return result


async def run_bare_phase(
    bare_url: str,
    conns: int,
    *,
    mode: str,
    seconds: float,
    sample: int,
    meter: Callable[[dict[str, int]], CpuMeter],
) -> Result:
    """Watchers of the bare server's own send loop."""
    result = Result("bare aiohttp", mode, conns, seconds)
    rate = 10 if mode == "paced" else 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 1 + conns / 500
        until = start + seconds
        url = f"{bare_url}/ws?rate={rate}&seconds={until - loop.time() + 1}"
        cpu = meter({})
        metering = asyncio.create_task(_metered(cpu, start, until))
        await asyncio.gather(
            *(
                watch(session, url, result, start=start, until=until, sample=sample)
                for _ in range(conns)
            )
        )
        await metering
    result.cpu = cpu.used
    return result
