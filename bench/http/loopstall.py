"""``python -m bench.http.loopstall``: how fast the worker's event loop answers while a
synchronous, CPU-bound agent holds one of its threads.

The example plugin's ``spin`` agent (tests/plugins/agentos-example, pip-installed into a folder
of its own) burns CPU in a plain function, which LangChain runs in the worker's thread pool; the
loop shares the GIL with it. A client probes ``GET /healthz`` one request at a time, first with
the worker idle, then while spins run back to back, and prints p50/p99/max of the probes'
latency. tests/http/test_bad_input.py asserts that the loop keeps answering during a spin; how
fast it answers is measured here. ``python -m bench.http`` runs it after its wrk levels.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from worker.testing import NatsServer, WorkerProcess

PLUGIN = Path(__file__).resolve().parent.parent.parent / "tests" / "plugins" / "agentos-example"


@dataclass(frozen=True)
class LoopStall:
    """Probe latencies (seconds, sorted) with the worker idle and during spins."""

    idle: list[float]
    spinning: list[float]
    spin_seconds: float

    @staticmethod
    def _pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0

    def lines(self) -> list[str]:
        """The report's section."""
        rows = [
            "## The event loop during a CPU-bound sync agent",
            "",
            f"`GET /healthz`, one at a time, while `spin` agents ({self.spin_seconds:g} s "
            "each, back to back) hold a worker thread; command `python -m bench.http.loopstall`",
            "",
            "| worker | probes | p50 ms | p99 ms | max ms |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, values in (("idle", self.idle), ("spinning", self.spinning)):
            rows.append(
                f"| {name} | {len(values)} | {self._pct(values, 0.5):.2f} | "
                f"{self._pct(values, 0.99):.2f} | {self._pct(values, 1.0):.2f} |"
            )
        return rows


async def _probe(http: aiohttp.ClientSession, url: str, until: asyncio.Task[None]) -> list[float]:
    out = []
    while not until.done():
        start = time.perf_counter()
        async with http.get(url) as resp:
            await resp.read()
        out.append(time.perf_counter() - start)
        await asyncio.sleep(0.01)  # a probe every 10 ms or so, not a flood
    return sorted(out)


async def _measure(worker_url: str, *, spins: int, seconds: float) -> LoopStall:
    async with aiohttp.ClientSession(trust_env=False) as http:
        spec = {"type": "spin", "config": {"seconds": seconds}}
        async with http.post(f"{worker_url}/v1/agents", json=spec) as resp:
            agent = await resp.json()
        invoke = f"{worker_url}/v1/agents/{agent['id']}/invoke"
        health = f"{worker_url}/healthz"

        async def spin_all() -> None:
            for _ in range(spins):
                async with http.post(invoke, json={"input": None}) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"spin answered {resp.status}")

        idle = await _probe(http, health, asyncio.create_task(asyncio.sleep(seconds)))
        spinning = await _probe(http, health, asyncio.create_task(spin_all()))
    return LoopStall(idle, spinning, seconds)


def measure(*, spins: int = 5, seconds: float = 2.0) -> LoopStall:
    """Install the plugin, start a nats-server and a worker, and probe."""
    with tempfile.TemporaryDirectory(prefix="bench-loopstall-") as tmp:
        site = Path(tmp) / "site"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        subprocess.run(
            [*pip, "--no-build-isolation", "--target", str(site), str(PLUGIN)], check=True
        )
        server = NatsServer().start()
        worker = WorkerProcess(
            {
                "WORKER_NATS_URL": server.url,
                "WORKER_HTTP_PORT": "0",
                "WORKER_STATE_DIR": str(Path(tmp) / "state"),
                "WORKER_LOG_LEVEL": "warning",
                "WORKER_JOBS_ENABLED": "false",
                "PYTHONPATH": str(site),
            }
        )
        try:
            worker.start()
            return asyncio.run(_measure(worker.url, spins=spins, seconds=seconds))
        finally:
            worker.stop()
            server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.http.loopstall", description=__doc__)
    parser.add_argument("--spins", type=int, default=5, help="spins run back to back")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds each spin burns")
    args = parser.parse_args()
    print("\n".join(measure(spins=args.spins, seconds=args.seconds).lines()))
