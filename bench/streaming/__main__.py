"""``python -m bench.streaming``: WebSocket watchers of the worker against a bare aiohttp loop.

Starts a nats-server, a worker (``python -m worker``) and the bare server
(``bench.streaming.serve_bare``) as subprocesses on 127.0.0.1, then for each level of
concurrent WebSocket connections (default 100 and 1,000) runs, for ``--seconds`` each:

- paced: every connection gets 10 frames per second. Worker: each watcher follows its own
  task at ``GET /v1/tasks/{id}/events``, whose frames this process publishes to the frames
  stream at 10/s per task (as runs would). Bare: the server's own 10/s send loop.
- flood: as many frames as can be delivered. Worker: 10 watchers per task, frames published
  as fast as JetStream takes them. Bare: a tight send loop per connection.

Delivered frames per second and the frame lag (receive time minus the frame's ``ts``) are
measured at the clients. Results go to ``bench/results/streaming.md``. All traffic is on
loopback and every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import nats
import orjson

from worker.streaming.frames import STARTED, Draft
from worker.streaming.hub import StreamOptions
from worker.streaming.log import FrameLog
from worker.testing import NatsServer, WorkerProcess, free_port, wait_for_port

OUTPUT = Path("bench/results/streaming.md")


@dataclass
class Result:
    target: str
    mode: str
    connections: int
    seconds: float
    frames: int = 0
    lags: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.frames / self.seconds

    def pct(self, p: float) -> float:
        if not self.lags:
            return float("nan")
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


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
            while True:
                left = until - loop.time()
                if left <= 0:
                    break
                try:
                    msg = await asyncio.wait_for(ws.receive(), left)
                except TimeoutError:
                    break
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
    worker_url: str, nats_url: str, conns: int, *, mode: str, seconds: float, sample: int
) -> Result:
    per_task = 1 if mode == "paced" else 10
    tasks = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(max(1, conns // per_task))]
    result = Result("worker", mode, conns, seconds)
    async with frame_log(nats_url) as flog:
        await flog.ensure()
        started = [
            await flog.publish_async(
                t,
                Draft(status=STARTED, progress=0, message="bench").encode(
                    task_id=t, seq=1, attempt=1
                ),
                seq=1,
            )
            for t in tasks
        ]
        await asyncio.gather(*started)
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
                str(time.time() + (warm - loop.time())),
                str(seconds),
                *tasks,
            )
            await publisher.wait()
            await asyncio.gather(*watchers)
    return result


async def run_bare_phase(
    bare_url: str, conns: int, mode: str, seconds: float, sample: int
) -> Result:
    result = Result("bare aiohttp", mode, conns, seconds)
    rate = 10 if mode == "paced" else 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 1 + conns / 500
        until = start + seconds
        url = f"{bare_url}/ws?rate={rate}&seconds={until - loop.time() + 1}"
        await asyncio.gather(
            *(
                watch(session, url, result, start=start, until=until, sample=sample)
                for _ in range(conns)
            )
        )
    return result


def table(results: list[Result]) -> str:
    lines = [
        "| mode | connections | target | frames/s delivered | p50 lag ms | p99 lag ms | "
        "errors | ratio to bare |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    bare = {(r.mode, r.connections): r.rate for r in results if r.target != "worker"}
    for r in results:
        ratio = r.rate / bare[(r.mode, r.connections)] if bare.get((r.mode, r.connections)) else 0
        lines.append(
            f"| {r.mode} | {r.connections} | {r.target} | {r.rate:,.0f} | {r.pct(0.5):.1f} | "
            f"{r.pct(0.99):.1f} | {r.errors} | {ratio:.2f} |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    state = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    server = NatsServer().start()
    worker = WorkerProcess(
        {
            "WORKER_NATS_URL": server.url,
            "WORKER_HTTP_PORT": "0",
            "WORKER_STATE_DIR": str(state),
            "WORKER_LOG_LEVEL": "warning",
            "WORKER_JOBS_ENABLED": "false",
        }
    ).start()
    bare_port = free_port()
    bare = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
        [sys.executable, "-m", "bench.streaming.serve_bare", "--port", str(bare_port)],
        stderr=subprocess.DEVNULL,
    )
    results: list[Result] = []
    try:
        wait_for_port(bare_port)
        bare_url = f"http://127.0.0.1:{bare_port}".replace("http", "ws", 1)
        for mode in args.modes:
            for conns in args.levels if mode == "paced" else args.flood_levels:
                for target in ("worker", "bare"):
                    if target == "worker":
                        r = await run_worker_phase(
                            worker.url,
                            server.url,
                            conns,
                            mode=mode,
                            seconds=args.seconds,
                            sample=args.sample,
                        )
                    else:
                        r = await run_bare_phase(bare_url, conns, mode, args.seconds, args.sample)
                    results.append(r)
                    print(
                        f"{mode:6} {conns:5} {target:7} {r.rate:10,.0f} frames/s  "
                        f"p99 {r.pct(0.99):7.1f} ms  errors {r.errors}",
                        flush=True,
                    )
                    await asyncio.sleep(1)
    finally:
        worker.stop()
        bare.terminate()
        bare.wait(10)
        server.close()
    report = (
        "# Streaming benchmark\n\n"
        f"Command: `python -m bench.streaming` ({args.seconds:g} s per phase). "
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; worker, nats-server, bare server and the clients all "
        "on this machine.\n\n"
        "paced: every connection receives 10 frames/s (worker: one task per watcher, frames "
        "published to the frames stream at 10/s per task). flood: as fast as possible (worker: "
        "10 watchers per task). Lag = client receive time - frame `ts` (ms resolution).\n\n"
        + table(results)
        + "\n"
    )
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__)
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    p.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000])
    p.add_argument(
        "--flood-levels",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100],
        help="connections of the flood phase (1,000 flooding sockets starve the 2-core "
        "load generator itself)",
    )
    p.add_argument("--modes", type=lambda s: s.split(","), default=["paced", "flood"])
    p.add_argument("--sample", type=int, default=1, help="measure the lag of every Nth frame")
    p.add_argument("--output", type=Path, default=OUTPUT)
    p.add_argument("--quick", action="store_true", help="2 s phases, not saved")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.output = 2.0, None
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
