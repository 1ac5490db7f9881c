"""Jobs that only wait on a model: throughput under ``WORKER_MAX_JOBS``, old default and new.

Each job is the ``chat`` agent on the ``openai`` provider, whose fake answers after
``--job-seconds`` (10 s): all a job does is wait on the model. ``--jobs`` of them are published
at once (core NATS, as the Go side does) to one worker, and their signed callbacks received
here; the run ends with the last callback or at ``--jobs-limit`` seconds. With ``max_jobs`` at
once, a worker finishes at most ``max_jobs / job_seconds`` jobs a second however idle its CPU
is. Also measured: the worker's RSS over its idle baseline per job in flight (jobs in flight
read from its ``agentos_jobs_in_flight`` gauge), and its CPU per job.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import nats
import orjson
from aiohttp import web
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from bench.agents.sweep import Plan, rss
from bench.streaming.procs import cpu_seconds, placed
from worker.testing import WorkerProcess

SECRET = "whsec_" + base64.b64encode(b"bench-agents-callback-secret-32b").decode()
TASKS_STREAM = "AGENTOS_TASKS"  # the worker's default WORKER_TASKS_STREAM
IN_FLIGHT = re.compile(rb"^agentos_jobs_in_flight\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=2000, help="jobs published per run (jobs mode)")
    p.add_argument(
        "--job-seconds", type=float, default=10.0, help="how long a job's model call waits"
    )
    p.add_argument(
        "--max-jobs",
        default="64,1024",
        help="WORKER_MAX_JOBS values to compare (the old default, the new)",
    )
    p.add_argument("--jobs-limit", type=float, default=60.0, help="longest run, in seconds")


@dataclass
class JobsRun:
    max_jobs: int
    published: int
    completed: int
    seconds: float
    peak_in_flight: int
    rss_idle: int
    rss_peak: int
    cpu: float

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def rss_per_job(self) -> float:
        return (self.rss_peak - self.rss_idle) / self.peak_in_flight if self.peak_in_flight else 0


class Receiver:
    """Counts the callbacks of the jobs of the current run (a job of an earlier run that
    arrives late is not one of them)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        task_id = orjson.loads(await request.read())["task_id"]
        if task_id in self.expected:
            self.arrived.setdefault(task_id, time.monotonic())
            if len(self.arrived) >= len(self.expected):
                self.done.set()
        return web.Response(status=204)

    def expect(self, task_ids: list[str]) -> None:
        self.arrived.clear()
        self.done.clear()
        self.expected = set(task_ids)


def _task(agent_id: str, callback: str) -> tuple[str, bytes]:
    task_id = uuid.uuid4().hex
    body = {
        "id": task_id,
        "type": "agent_execution",
        "payload": {"agent_id": agent_id, "input": "Wait for the model."},
        "callback": callback,
        "timeout": 300_000_000_000,
    }
    return task_id, orjson.dumps(body)


async def _in_flight(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/metrics") as resp:
        found = IN_FLIGHT.search(await resp.read())
    return int(float(found.group(1))) if found else 0


async def _publish(nc: Client, rx: Receiver, agent: str, callback: str, n: int) -> None:
    tasks = [_task(agent, callback) for _ in range(n)]
    rx.expect([task_id for task_id, _ in tasks])
    for i, (_, body) in enumerate(tasks):
        await nc.publish("agent.execute", body)
        if i % 500 == 499:
            await nc.flush()
    await nc.flush()


async def _purge(nc: Client) -> None:
    """Drop the jobs a run left waiting, so the next run's worker does not take them."""
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().purge_stream(TASKS_STREAM)


async def one_run(
    plan: Plan, args: argparse.Namespace, max_jobs: int, callback: str, rx: Receiver
) -> JobsRun:
    state = Path(tempfile.mkdtemp(prefix="bench-agents-jobs-"))
    env = {
        "WORKER_NATS_URL": plan.nats.url,
        "WORKER_HTTP_PORT": "0",
        "WORKER_STATE_DIR": str(state),
        "WORKER_LOG_LEVEL": "warning",
        "WORKER_CALLBACK_ALLOW": "127.0.0.1",
        "WORKER_CALLBACK_SECRET": SECRET,
        "WORKER_MAX_JOBS": str(max_jobs),
        **plan.worker_env,
    }
    with placed(plan.place.server):
        worker = WorkerProcess(env).start()
    pid = worker.proc.pid if worker.proc else 0
    nc = await nats.connect(plan.nats.url)
    try:
        async with aiohttp.ClientSession() as http:
            model = {
                "provider": "openai",
                "model": "bench",
                "api_key": "sk-bench",
                "base_url": plan.providers.base_urls[0],
                "timeout": "120s",
            }
            body = {"type": "chat", "name": "bench-jobs", "config": {"model": model}}
            async with http.post(f"{worker.url}/v1/agents", json=body) as resp:
                resp.raise_for_status()
                agent = (await resp.json())["id"]
            await plan.providers.pace_raw({"reply": "Done.", "delay": 0.0})
            await _publish(nc, rx, agent, callback, 8)  # warm-up
            await asyncio.wait_for(rx.done.wait(), 60)
            await plan.providers.pace_raw({"reply": "Done.", "delay": args.job_seconds})
            await asyncio.sleep(1.0)
            idle, peak, most = rss(pid), 0, 0
            cpu0 = cpu_seconds(pid)
            start = time.monotonic()
            await _publish(nc, rx, agent, callback, args.jobs)
            while not rx.done.is_set() and time.monotonic() - start < args.jobs_limit:
                with_flight = await _in_flight(http, worker.url)
                if with_flight >= most:
                    most, peak = with_flight, max(peak, rss(pid))
                await asyncio.sleep(0.5)
            end = max(rx.arrived.values()) if rx.done.is_set() else time.monotonic()
            cpu = cpu_seconds(pid) - cpu0
    finally:
        worker.stop()
        await _purge(nc)
        await nc.close()
        shutil.rmtree(state, ignore_errors=True)
    done = len(rx.arrived)
    return JobsRun(max_jobs, args.jobs, done, end - start, most, idle, peak, cpu)


async def compare(plan: Plan, args: argparse.Namespace) -> list[JobsRun]:
    """One run per ``--max-jobs`` value."""
    rx = Receiver()
    app = web.Application()
    app.router.add_post("/cb", rx.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    callback = f"http://127.0.0.1:{runner.addresses[0][1]}/cb"
    runs = []
    try:
        for max_jobs in (int(x) for x in args.max_jobs.split(",")):
            run = await one_run(plan, args, max_jobs, callback, rx)
            runs.append(run)
            print(
                f"jobs: WORKER_MAX_JOBS={max_jobs}: {run.completed}/{run.published} in "
                f"{run.seconds:.1f} s, {run.rate:,.1f} jobs/s, peak in flight "
                f"{run.peak_in_flight}, {run.rss_per_job / 1024:,.0f} KiB/job in flight",
                flush=True,
            )
    finally:
        await runner.cleanup()
    return runs


def table(runs: list[JobsRun]) -> str:
    lines = [
        "| WORKER_MAX_JOBS | jobs published | completed | seconds | jobs/s | most in flight | "
        "RSS KiB per job in flight | worker CPU µs/job |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.max_jobs:,} | {r.published:,} | {r.completed:,} | {r.seconds:.1f} | "
        f"{r.rate:,.1f} | {r.peak_in_flight:,} | {r.rss_per_job / 1024:,.0f} | "
        f"{r.cpu / max(1, r.completed) * 1e6:,.0f} |"
        for r in runs
    ]
    return "\n".join(lines)
