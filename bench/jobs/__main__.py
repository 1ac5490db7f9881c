"""``python -m bench.jobs``: jobs/s and publish-to-callback latency, worker against a raw loop.

One run, one machine, loopback only:
1. A real nats-server, a pool of worker processes (one, then two: ``--workers``), a callback
   receiver (aiohttp, in this process).
2. Throughput: N jobs for the `echo` agent published as the Go seed does (core-NATS publish of
   the TaskMessage JSON), as fast as they go; jobs/s = N / (first publish -> last callback).
3. Latency: jobs published at half the measured rate for a few seconds; p50/p99 of
   publish -> callback received.
4. Floor of the same work: the same N jobs, run by as many ``bench.jobs.pipeline`` processes as
   there were workers, on the worker's own stream, consumer, bucket and frames stream: claim,
   frames, ``ainvoke``, result, signed callback, ack, and nothing else.
5. Floor of the transport: the same N messages in a stream of their own, drained by a bare
   nats-py fetch-and-ack loop in its own process (no parsing, no agent, no result, no callback).
The table goes to ``bench/results/jobs.md`` (``--output``), its plot beside it (``jobs.png``).
Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import nats
import orjson
from aiohttp import web
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from bench.plot import Point, Series, png_beside, write_png
from worker.testing import NatsServer, WorkerProcess

RESULTS = Path(__file__).resolve().parent.parent / "results" / "jobs.md"
SECRET = "whsec_" + base64.b64encode(b"bench-jobs-callback-secret-32byt").decode()


class Receiver:
    """Counts callbacks and when they arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self.done = asyncio.Event()
        self.expect = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        task_id = body["task_id"]
        if task_id in self.arrived:
            self.duplicates += 1
        else:
            self.arrived[task_id] = time.perf_counter()
            if len(self.arrived) >= self.expect:
                self.done.set()
        return web.Response(status=204)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass(frozen=True)
class Run:
    """One measured run: a row of the table and a point of the plot."""

    label: str
    processes: int
    rate: float | None  # jobs/s, flat-out runs only
    latencies: list[float]  # publish -> callback, seconds

    def row(self) -> tuple[str, str, str, str]:
        rate = "-" if self.rate is None else f"{self.rate:,.0f} jobs/s"
        return (
            self.label,
            rate,
            f"{pct(self.latencies, 0.5):.1f}",
            f"{pct(self.latencies, 0.99):.1f}",
        )

    def point(self) -> Point:
        return Point(self.processes, self.rate, pct(self.latencies, 0.5), pct(self.latencies, 0.99))


def task(task_id: str, agent_id: str, callback: str) -> bytes:
    return orjson.dumps(
        {
            "id": task_id,
            "type": "agent_execution",
            "payload": {"agent_id": agent_id, "input": task_id},
            "callback": callback,
            "timeout": 30_000_000_000,
        }
    )


async def run_jobs(
    nc: nats.NATS,
    rx: Receiver,
    base: str,
    agent_id: str,
    *,
    n: int,
    rate: float | None,
    limit: float,
) -> tuple[float, list[float]]:
    """Publish ``n`` jobs (at ``rate`` per second, or flat out); wait for their callbacks."""
    sent: dict[str, float] = {}
    rx.arrived.clear()
    rx.done.clear()
    rx.expect = n
    start = time.perf_counter()
    for i in range(n):
        task_id = uuid.uuid4().hex
        sent[task_id] = time.perf_counter()
        await nc.publish("agent.execute", task(task_id, agent_id, f"{base}/cb"))
        if rate is not None:
            wait = start + (i + 1) / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        elif i % 500 == 499:
            await nc.flush()
    await nc.flush()
    try:
        await asyncio.wait_for(rx.done.wait(), limit)
    except TimeoutError:
        print(f"  timed out: {len(rx.arrived)}/{n} callbacks", file=sys.stderr)
    end = max(rx.arrived.values(), default=time.perf_counter())
    lat = [rx.arrived[t] - s for t, s in sent.items() if t in rx.arrived]
    return len(lat) / (end - start), lat


async def raw_floor(url: str, n: int, batch: int) -> float:
    """msgs/s of a bare fetch-and-ack loop over ``n`` messages."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name="RAW", subjects=["raw.execute"], retention=RetentionPolicy.WORK_QUEUE)
    )
    await js.add_consumer(
        "RAW",
        ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=100_000),
    )
    payload = task(uuid.uuid4().hex, "x", "http://127.0.0.1:9/cb")
    pending = [js.publish_async("raw.execute", payload) for _ in range(n)]
    await asyncio.gather(*pending)
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bench.jobs.rawloop", url, "RAW", "raw", str(n), str(batch)],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    await nc.close()
    result = orjson.loads(out.stdout.strip().splitlines()[-1])
    return float(result["count"]) / float(result["seconds"])


def start_workers(count: int, nats_url: str, batch: int) -> list[WorkerProcess]:
    """``count`` worker processes of one pool (one consumer), each with a state dir."""
    workers = []
    for _ in range(count):
        state = tempfile.mkdtemp(prefix="bench-jobs-")
        workers.append(
            WorkerProcess(
                {
                    "WORKER_NATS_URL": nats_url,
                    "WORKER_HTTP_PORT": "0",
                    "WORKER_STATE_DIR": state,
                    "WORKER_CALLBACK_ALLOW": "127.0.0.1",
                    "WORKER_CALLBACK_SECRET": SECRET,
                    "WORKER_LOG_LEVEL": "warning",
                    "WORKER_MAX_JOBS": "256",
                    "WORKER_JOB_FETCH_BATCH": str(batch),
                    "WORKER_CALLBACK_CONCURRENCY": "128",
                }
            ).start()
        )
    return workers


async def measure_pool(
    count: int, server: NatsServer, rx: Receiver, base: str, *, n: int, batch: int, seconds: float
) -> tuple[Run, Run]:
    """Flat-out throughput and half-rate latency of a pool of ``count`` workers."""
    workers = start_workers(count, server.url, batch)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(workers[0].url + "/v1/agents", json={"type": "echo"}) as resp,
        ):
            agent_id = (await resp.json())["id"]
        nc = await nats.connect(server.url)
        await run_jobs(nc, rx, base, agent_id, n=min(500, n), rate=None, limit=60)  # warm-up
        rate, lat = await run_jobs(nc, rx, base, agent_id, n=n, rate=None, limit=120)
        half = max(50.0, rate / 2)
        count_half = int(half * seconds)
        _, lat_half = await run_jobs(
            nc, rx, base, agent_id, n=count_half, rate=half, limit=seconds + 30
        )
        await nc.close()
    finally:
        for w in workers:
            w.stop()
            shutil.rmtree(w.env["WORKER_STATE_DIR"], ignore_errors=True)
    label = f"{count} worker{'s' if count > 1 else ''}"
    return (
        Run(f"{label}: publish -> callback, flat out", count, rate, lat),
        Run(
            f"{label}: at half that rate ({half:,.0f}/s, {count_half} jobs)",
            count,
            None,
            lat_half,
        ),
    )


async def measure_floor(count: int, server: NatsServer, rx: Receiver, base: str, *, n: int) -> Run:
    """Flat-out throughput of ``count`` floor processes on the worker's own stream."""
    limit = 120.0
    procs = [
        await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "bench.jobs.pipeline", server.url, str(n), str(limit), SECRET],
            stdout=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:  # every process bound to the consumer before the first job
            assert proc.stdout is not None
            await asyncio.wait_for(proc.stdout.readline(), 60)
        nc = await nats.connect(server.url)
        rate, lat = await run_jobs(nc, rx, base, "floor", n=n, rate=None, limit=limit)
        await nc.close()
    finally:
        for proc in procs:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
    label = f"floor of the same work, {count} process{'es' if count > 1 else ''}"
    return Run(label, count, rate, lat)


def plot(series: list[Series], path: Path) -> Path:
    """jobs/s, p50 and p99 against the number of processes: the pool beside its floor."""
    return write_png(
        path,
        title="Jobs: worker pool vs the floor of the same work",
        series=series,
        load="processes (worker pool or floor)",
        throughput="jobs/s, publish -> callback",
        latency="publish -> callback",
    )


async def main(
    n: int, latency_seconds: float, batch: int, pools: list[int]
) -> tuple[str, list[Series]]:
    """Run every measurement; the report and the series of its plot."""
    server = NatsServer().start()
    rx = Receiver()
    app = web.Application()
    app.router.add_post("/cb", rx.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    flat: list[Run] = []
    halves: list[Run] = []
    floors: list[Run] = []
    try:
        for count in pools:
            full, half = await measure_pool(
                count, server, rx, base, n=n, batch=batch, seconds=latency_seconds
            )
            flat.append(full)
            halves.append(half)
        floors += [await measure_floor(count, server, rx, base, n=n) for count in pools]
        floor = await raw_floor(server.url, n, batch)
    finally:
        await runner.cleanup()
        server.close()
    rows = [run.row() for pair in zip(flat, halves, strict=True) for run in pair]
    rows += [run.row() for run in floors]
    rows.append(("raw nats-py fetch+ack loop (floor)", f"{floor:,.0f} msgs/s", "-", "-"))
    workers = ",".join(str(c) for c in pools)
    ratios = "; ".join(
        f"{c} worker{'s' if c > 1 else ''} / floor of the same work: {r.rate / f.rate:.2f}x"
        f" (/ raw loop: {r.rate / floor:.2f}x)"
        for c, r, f in zip(pools, flat, floors, strict=True)
        if r.rate is not None and f.rate
    )
    text = [
        f"Jobs benchmark: {n} jobs, fetch batch {batch}, echo agent, {os.cpu_count()} CPUs",
        "",
        "| run | throughput | p50 ms | p99 ms |",
        "| --- | --- | --- | --- |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        f"{ratios}; callbacks duplicated: {rx.duplicates}",
        "",
        f"Command: `python -m bench.jobs --jobs {n} --latency-seconds {latency_seconds:g} "
        f"--workers {workers}`",
    ]
    series = [
        Series("worker pool, flat out", [r.point() for r in flat]),
        Series("worker pool, at half its rate", [r.point() for r in halves]),
        Series("floor of the same work, flat out", [r.point() for r in floors]),
    ]
    return "\n".join(text) + "\n", series


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--workers",
        default="1,2",
        help="pool sizes to measure, one after the other (default 1,2: one per core)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="markdown to write, its plot beside it (.png)"
    )
    args = parser.parse_args()
    pools = [int(c) for c in args.workers.split(",") if c.strip()]
    report, series = asyncio.run(main(args.jobs, args.latency_seconds, args.batch, pools))
    print(report, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"saved to {args.output} and {plot(series, png_beside(args.output))}")
