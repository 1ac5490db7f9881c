"""``python -m bench.outage``: 1,000 invocations while the agent's only provider is down.

A worker process (its own nats-server) serves a `chat` agent whose `openai` provider is a fake
OpenAI-compatible server answering 500. After `fail_max` failures the breaker is open and every
invocation must fail fast with 503 + `Retry-After`, without touching the provider. Beside it, in
the same run, a bare aiohttp handler answering the same 503 JSON is the floor. Prints p50/p99
client latency at 4 and 64 concurrent connections, the worker's RSS before and after, and the
provider's request count, and draws answers/s, p50 and p99 of both against concurrency beside
the report (``outage.png``). Then two outages beside healthy parts:

- ``bench.outage.fallback``: an agent whose primary is that provider and whose fallback is a
  healthy one, against an agent calling the healthy one directly;
- ``bench.outage.callbacks``: a job callback receiver down beside a healthy one, the healthy
  one's publish -> callback latency before and during.

Loopback only; every loop bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.outage.callbacks import measure_neighbours
from bench.outage.fallback import measure_fallback, provider
from bench.plot import Point, Series, png_beside, write_png
from tests.fakes.openai_server import FakeOpenAI
from worker.testing import NatsServer, WorkerProcess

RESULTS = Path(__file__).resolve().parent.parent / "results" / "outage.md"
BODY = b'{"error":{"code":"provider_unavailable","message":"down","request_id":"x"}}'


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class Burst:
    """One burst's client latencies (seconds, sorted) and how long the whole burst took."""

    latencies: list[float]
    seconds: float

    @property
    def rate(self) -> float:
        """Answers per second."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def point(self, conc: int) -> Point:
        return Point(conc, self.rate, pct(self.latencies, 0.5), pct(self.latencies, 0.99))


async def burst(http: aiohttp.ClientSession, url: str, n: int, conc: int) -> Burst:
    todo = iter(range(n))
    out: list[float] = []

    async def client() -> None:
        for _ in todo:
            start = time.perf_counter()
            async with http.post(url, json={"input": "hello"}) as resp:
                await resp.read()
                if resp.status != 503 or "Retry-After" not in resp.headers:
                    raise RuntimeError(f"unexpected {resp.status}")
            out.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with asyncio.timeout(120):
        await asyncio.gather(*(client() for _ in range(conc)))
    return Burst(sorted(out), time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def bare_server() -> tuple[web.AppRunner, str]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(
            status=503, body=BODY, content_type="application/json", headers={"Retry-After": "300"}
        )

    app = web.Application()
    app.router.add_post("/invoke", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/invoke"


def plot(series: list[Series], path: Path) -> Path:
    """Answers/s, p50 and p99 against concurrent connections: the worker beside the bare 503."""
    return write_png(
        path,
        title="Outage: the worker's fast 503s vs a bare aiohttp 503",
        series=series,
        load="concurrent connections",
        throughput="503 answers/s",
        latency="client latency",
    )


async def main(n: int, callback_jobs: int) -> tuple[str, list[Series]]:
    """Run every measurement; the report and the series of its plot."""
    server = NatsServer().start()
    w = WorkerProcess(
        {
            "WORKER_NATS_URL": server.url,
            "WORKER_HTTP_PORT": "0",
            "WORKER_STATE_DIR": tempfile.mkdtemp(prefix="bench-outage-"),
            "WORKER_LOG_LEVEL": "warning",
            "WORKER_JOBS_ENABLED": "false",
            "WORKER_PROVIDER_RETRY_MAX_ATTEMPTS": "1",
        }
    ).start()
    # The bare floor runs in its own process too, like the worker.
    bare = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [
            sys.executable,
            "-c",
            "import asyncio, bench.outage.__main__ as m;asyncio.run(m.serve_bare_forever())",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    rows: list[tuple[int, Burst, Burst, float, float]] = []
    try:
        async with FakeOpenAI() as down, aiohttp.ClientSession() as http:
            down.set(mode="status", status=500)
            spec = provider(down, breaker={"fail_max": 3, "reset_timeout": "10m"})
            async with http.post(
                w.url + "/v1/agents", json={"type": "chat", "config": {"model": spec}}
            ) as resp:
                agent = await resp.json()
            url = f"{w.url}/v1/agents/{agent['id']}/invoke"
            for _ in range(3):  # trip the breaker
                async with http.post(url, json={"input": "x"}) as resp:
                    await resp.read()
            assert bare.stdout is not None
            bare_url = bare.stdout.readline().strip()
            tripped = down.count
            for conc in (4, 64):
                await burst(http, url, 200, conc)  # warm-up
                await burst(http, bare_url, 200, conc)
                rss0 = rss_mib(w.proc.pid) if w.proc else 0.0
                lat = await burst(http, url, n, conc)
                rss1 = rss_mib(w.proc.pid) if w.proc else 0.0
                floor = await burst(http, bare_url, n, conc)
                rows.append((conc, lat, floor, rss0, rss1))
            reached = down.count - tripped
            fallback = await measure_fallback(http, w.url, down, n, 4)
        neighbours = await measure_neighbours(server.url, callback_jobs)
    finally:
        bare.terminate()
        bare.wait(5)
        w.stop()
        server.close()
        shutil.rmtree(w.env["WORKER_STATE_DIR"], ignore_errors=True)
    text = [
        f"Outage benchmark: {n} invocations per level, the provider down and its breaker open",
        "",
        "| concurrent | worker answers/s | worker p50 ms | worker p99 ms | bare answers/s | "
        "bare 503 p50 ms | bare p99 ms | worker RSS MiB before -> after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for conc, worker, bare_503, rss0, rss1 in rows:
        ours, theirs = worker.latencies, bare_503.latencies
        text.append(
            f"| {conc} | {worker.rate:,.0f} | {pct(ours, 0.5):.2f} | {pct(ours, 0.99):.2f} | "
            f"{bare_503.rate:,.0f} | {pct(theirs, 0.5):.2f} | {pct(theirs, 0.99):.2f} | "
            f"{rss0:.1f} -> {rss1:.1f} |"
        )
    text += [
        "",
        f"Requests that reached the provider during the bursts: {reached}",
        "",
        f"Primary down, its breaker open, {n} invocations at 4 concurrent answered by the "
        f"fallback: p50 {pct(fallback.chain, 0.5):.2f} ms, p99 {pct(fallback.chain, 0.99):.2f} "
        f"ms; the fallback's agent called directly: p50 {pct(fallback.direct, 0.5):.2f} ms, "
        f"p99 {pct(fallback.direct, 0.99):.2f} ms; requests that reached the primary: "
        f"{fallback.reached_primary}",
        "",
        f"Job callbacks, {callback_jobs} one at a time, publish -> callback at the healthy "
        f"receiver: p50 {pct(neighbours.before, 0.5):.2f} ms, p99 "
        f"{pct(neighbours.before, 0.99):.2f} ms; with a neighbour receiver down (its breaker "
        f"open): p50 {pct(neighbours.during, 0.5):.2f} ms, p99 "
        f"{pct(neighbours.during, 0.99):.2f} ms, max {pct(neighbours.during, 1.0):.2f} ms",
        "",
        f"Command: `python -m bench.outage --invocations {n} --callback-jobs {callback_jobs}`",
    ]
    series = [
        Series("worker (breaker open)", [w.point(conc) for conc, w, _, _, _ in rows]),
        Series("bare aiohttp 503 (floor)", [b.point(conc) for conc, _, b, _, _ in rows]),
    ]
    return "\n".join(text) + "\n", series


async def serve_bare_forever() -> None:
    """The floor's process: print its URL, then serve until terminated."""
    runner, url = await bare_server()
    print(url, flush=True)
    try:
        await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="fast-failing invocations during an outage")
    parser.add_argument("--invocations", type=int, default=1000)
    parser.add_argument("--callback-jobs", type=int, default=200)
    parser.add_argument(
        "--output",
        default=str(RESULTS),
        help="where to save, the plot beside it (.png); '-': print only",
    )
    args = parser.parse_args()
    report, series = asyncio.run(main(args.invocations, args.callback_jobs))
    print(report, end="")
    if args.output != "-":
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report)
        print(f"saved to {output} and {plot(series, png_beside(output))}")
