"""A callback receiver that is down beside a healthy one: the healthy receiver's pace.

A worker process with jobs runs `echo` jobs whose callbacks go to two receivers in this
process. Publish -> callback latency of jobs for the healthy receiver, one at a time, is measured
twice: with the other receiver answering, and while it answers 503 to a backlog of callbacks
(its breaker open, retries pending). tests/jobs/test_failures.py asserts that the healthy
receiver gets every callback during such an outage; how fast is measured here.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass

import aiohttp
import nats
import orjson
from aiohttp import web

from worker.testing import WorkerProcess

SECRET = "whsec_" + base64.b64encode(b"bench-outage-callback-secret-32b").decode()
BACKLOG = 30  # callbacks queued for the receiver that is down


@dataclass(frozen=True)
class Neighbours:
    """Latencies (seconds, sorted) of the healthy receiver's jobs, before and during."""

    before: list[float]
    during: list[float]


class Receivers:
    """``/cb/up/{id}`` answers 204 and notes when; ``/cb/down/{id}`` answers 503. Served on two
    ports, one per receiver: the worker's callback breakers are per host and port."""

    def __init__(self) -> None:
        self.arrived: dict[str, asyncio.Event] = {}
        self.down_attempts = 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["kind"] == "down":
            self.down_attempts += 1
            return web.Response(status=503)
        self.arrived.setdefault(request.match_info["task_id"], asyncio.Event()).set()
        return web.Response(status=204)


def _task(task_id: str, agent_id: str, callback: str) -> bytes:
    body = {
        "id": task_id,
        "type": "agent_execution",
        "payload": {"agent_id": agent_id, "input": task_id},
        "callback": callback,
        "timeout": 30_000_000_000,
    }
    return orjson.dumps(body)


async def _one_by_one(
    nc: nats.NATS, rx: Receivers, base: str, agent_id: str, n: int
) -> list[float]:
    out = []
    for _ in range(n):
        task_id = str(uuid.uuid4())
        arrived = rx.arrived.setdefault(task_id, asyncio.Event())
        start = time.perf_counter()
        await nc.publish("agent.execute", _task(task_id, agent_id, f"{base}/cb/up/{task_id}"))
        await asyncio.wait_for(arrived.wait(), 30)
        out.append(time.perf_counter() - start)
    return sorted(out)


async def _breaker_open(http: aiohttp.ClientSession, worker_url: str, port: int) -> None:
    sample = f'agentos_circuit_breaker_state{{name="callback:127.0.0.1:{port}"}} 2.0'
    async with asyncio.timeout(60):
        while True:
            async with http.get(f"{worker_url}/metrics") as resp:
                if sample in await resp.text():
                    return
            await asyncio.sleep(0.05)


async def measure_neighbours(nats_url: str, n: int) -> Neighbours:
    """Start the worker and the receivers, measure ``n`` jobs before and ``n`` during."""
    rx = Receivers()
    app = web.Application()
    app.router.add_post("/cb/{kind}/{task_id}", rx.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for _ in ("up", "down"):
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    up_port, down_port = (address[1] for address in runner.addresses)
    base, down_base = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{down_port}"
    state = tempfile.mkdtemp(prefix="bench-outage-callbacks-")
    worker = WorkerProcess(
        {
            "WORKER_NATS_URL": nats_url,
            "WORKER_HTTP_PORT": "0",
            "WORKER_STATE_DIR": state,
            "WORKER_LOG_LEVEL": "warning",
            "WORKER_CALLBACK_ALLOW": "127.0.0.1",
            "WORKER_CALLBACK_SECRET": SECRET,
            "WORKER_CALLBACK_BREAKER_FAIL_MAX": "3",
        }
    ).start()
    nc = await nats.connect(nats_url)
    try:
        async with aiohttp.ClientSession(trust_env=False) as http:
            async with http.post(f"{worker.url}/v1/agents", json={"type": "echo"}) as resp:
                agent_id = (await resp.json())["id"]
            await _one_by_one(nc, rx, base, agent_id, 20)  # warm-up
            before = await _one_by_one(nc, rx, base, agent_id, n)
            for _ in range(BACKLOG):
                task_id = str(uuid.uuid4())
                await nc.publish(
                    "agent.execute", _task(task_id, agent_id, f"{down_base}/cb/down/{task_id}")
                )
            await _breaker_open(http, worker.url, down_port)
            during = await _one_by_one(nc, rx, base, agent_id, n)
    finally:
        await nc.close()
        worker.stop()
        await runner.cleanup()
        shutil.rmtree(state, ignore_errors=True)
    return Neighbours(before, during)
