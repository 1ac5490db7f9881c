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


class Window:
    """The measured window of a phase, fixed once every watcher is connected."""

    def __init__(self, connections: int) -> None:
        self.start = float("inf")
        self.until = float("inf")
        self._expected = connections
        self._connected = 0
        self._done = 0
        self.all_connected = asyncio.Event()
        self._timeouts: list[asyncio.Timeout] = []

    def connected(self, timeout: asyncio.Timeout) -> None:
        self._connected += 1
        self._timeouts.append(timeout)
        if self.until != float("inf"):  # connected late: the window is already fixed
            timeout.reschedule(self.until)
        self._count()

    def gone(self) -> None:
        """A watcher that could not connect (or ended early) counts as arrived."""
        self._done += 1
        self._count()

    def _count(self) -> None:
        if self._connected + self._done >= self._expected:
            self.all_connected.set()

    async def wait_connected(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_connected.wait(), within)

    def fix(self, start: float, seconds: float) -> None:
        """Measure from loop time ``start`` for ``seconds``; watchers stop at the end."""
        self.start, self.until = start, start + seconds
        for timeout in self._timeouts:
            timeout.reschedule(self.until)


async def watch(
    session: aiohttp.ClientSession,
    url: str,
    result: Result,
    window: Window,
    *,
    sample: int,
) -> None:
    """One WebSocket client: count frames and sample lags inside ``window``."""
    loop = asyncio.get_running_loop()
    n = 0
    try:
        async with session.ws_connect(url, max_msg_size=0, heartbeat=None) as ws:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None) as timeout:
                    window.connected(timeout)
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if loop.time() < window.start:
                            continue
                        n += 1
                        if n % sample == 0:
                            ts = orjson.loads(msg.data)["ts"]
                            result.lags.append(time.time() - datetime.fromisoformat(ts).timestamp())
                        result.frames += 1
    except (aiohttp.ClientError, OSError):
        result.errors += 1
    finally:
        window.gone()


async def _metered(meter: CpuMeter, window: Window) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(window.start - loop.time())
    meter.start()
    await asyncio.sleep(window.until - loop.time())
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
    flood_rate: float,
    flood_watchers: int,
    meter: Callable[[dict[str, int]], CpuMeter],
) -> Result:
    """Watchers of the worker's ``/v1/tasks/{id}/events``; a publisher process feeds the
    frames stream (one task per watcher at 10 frames/s when paced; in a flood
    ``flood_watchers`` watchers per task at ``flood_rate`` frames/s, more than it can send)."""
    per_task = 1 if mode == "paced" else flood_watchers
    tasks = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(max(1, conns // per_task))]
    result = Result("worker", mode, conns, seconds)
    async with frame_log(nats_url) as flog:
        await flog.ensure()
        for t in tasks:
            first = Draft(status=STARTED, progress=0, message="bench")
            await flog.publish_async(t, first.encode(task_id=t, seq=1, attempt=1), seq=1)
        await flog.js.publish_async_completed()
    rate = "10" if mode == "paced" else str(flood_rate)
    publisher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.streaming.publish",
        nats_url,
        rate,
        str(seconds + 2),  # on a little past the window, so no watcher runs dry
        *tasks,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert publisher.stdin is not None
    assert publisher.stdout is not None
    window = Window(conns)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        loop = asyncio.get_running_loop()
        base = worker_url.replace("http", "ws", 1)
        watchers = [
            asyncio.create_task(
                watch(
                    session,
                    f"{base}/v1/tasks/{tasks[i % len(tasks)]}/events?from_seq=2",
                    result,
                    window,
                    sample=sample,
                )
            )
            for i in range(conns)
        ]
        await window.wait_connected(30 + conns / 20)
        await asyncio.wait_for(publisher.stdout.readline(), 30)  # imported and connected
        # Frames flow from half a second on; the window opens after a second of them.
        window.fix(loop.time() + 1.5, seconds)
        publisher.stdin.write(f"{time.time() + 0.5}\n".encode())
        await publisher.stdin.drain()
        cpu = meter({"publisher": publisher.pid})
        metering = asyncio.create_task(_metered(cpu, window))
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
    window = Window(conns)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        loop = asyncio.get_running_loop()
        # The server sends for as long as the phase can last; watchers close at the end.
        url = f"{bare_url}/ws?rate={rate}&seconds={60 + conns / 20 + seconds}"
        watchers = [
            asyncio.create_task(watch(session, url, result, window, sample=sample))
            for _ in range(conns)
        ]
        await window.wait_connected(30 + conns / 20)
        window.fix(loop.time() + 1, seconds)
        cpu = meter({})
        metering = asyncio.create_task(_metered(cpu, window))
        await asyncio.gather(*watchers)
        await metering
    result.cpu = cpu.used
    return result
