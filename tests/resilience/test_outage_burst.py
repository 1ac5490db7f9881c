"""A burst of 1,000 invocations while the only provider is down: every one fails with 503 and
``Retry-After``, refused at admission (no agent run starts), no task is left behind and memory
stays flat (in-process worker, so its tasks and memory are this process's). How fast they fail
is measured by ``python -m bench.outage``."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAI
from tests.http.helpers import call
from tests.resilience.conftest import openai_spec
from worker.config import Settings
from worker.server import RunningWorker, running_worker
from worker.testing import NatsServer, wait_for

BURST = 1000
CONCURRENCY = 4


def rss_bytes() -> int:
    """Resident memory of this process (Linux), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
async def in_process(nats: NatsServer, tmp_path: Path) -> AsyncIterator[RunningWorker]:
    settings = Settings.load(
        [
            "--nats-url",
            nats.url,
            "--http-port",
            "0",
            "--state-dir",
            str(tmp_path),
            "--agents-bucket",
            "agents_burst",
            "--no-jobs-enabled",
            "--provider-retry-max-attempts",
            "1",
        ]
    )
    async with running_worker(settings) as w:
        yield w
    # The worker shuts down the executor it installed on the (session-wide) loop: give the
    # tests that follow a working one again.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(4))


async def test_a_burst_during_an_outage_fails_fast_without_leaks(
    in_process: RunningWorker, http: aiohttp.ClientSession
) -> None:
    async with FakeOpenAI() as provider:
        provider.set(mode="status", status=500)
        status, agent, _ = await call(
            http,
            "POST",
            in_process.http_url + "/v1/agents",
            json={
                "type": "chat",
                "config": {
                    "model": openai_spec(provider, breaker={"fail_max": 3, "reset_timeout": "5m"})
                },
            },
        )
        assert status == 201, agent
        url = f"{in_process.http_url}/v1/agents/{agent['id']}/invoke"

        async def invoke() -> tuple[int, str | None]:
            async with http.post(url, json={"input": "hello"}) as resp:
                await resp.read()
                return resp.status, resp.headers.get("Retry-After")

        # Trip the breaker, then warm up (first-use allocations, connection pool).
        tripping = [await invoke() for _ in range(3)]
        assert [s for s, _ in tripping] == [503, 503, 503]
        for _ in range(25):  # with the burst's concurrency: its connections are open too
            await asyncio.gather(*(invoke() for _ in range(CONCURRENCY)))
        assert provider.count == 3

        gc.collect()
        tasks_before = len(asyncio.all_tasks())
        runs_before = _chat_runs()
        rss_before = rss_bytes()

        results: list[tuple[int, str | None]] = []

        todo = iter(range(BURST))  # shared by the clients: exactly BURST calls in all

        async def client() -> None:
            for _ in todo:
                results.append(await invoke())  # noqa: PERF401 - one by one, as clients do

        async with asyncio.timeout(60):
            await asyncio.gather(*(client() for _ in range(CONCURRENCY)))

        # The burst's own tasks (its requests' handlers) end once answered; a leak would not.
        await wait_for(
            lambda: len(asyncio.all_tasks()) - tasks_before <= 3, what="the burst's tasks ended"
        )
        gc.collect()
        tasks_after = len(asyncio.all_tasks())
        runs = _chat_runs() - runs_before
        rss_after = rss_bytes()

    assert len(results) == BURST
    assert {s for s, _ in results} == {503}
    assert all(ra is not None and 250 <= int(ra) <= 300 for _, ra in results)
    assert provider.count == 3  # not one request reached the provider during the burst
    assert runs == 0  # nor did one agent run start: every invocation was refused at admission
    growth = rss_after - rss_before
    print(  # figures for the report, shown with pytest -s
        f"\nburst: {len(results)} invocations, {CONCURRENCY} concurrent; "
        f"tasks {tasks_before} -> {tasks_after}; "
        f"RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB"
    )
    # No task leaks: a leak would be one per invocation; NATS pull pollers come and go.
    assert tasks_after - tasks_before <= 3
    assert growth < 16 * 2**20  # flat: well under 16 KiB per invocation


def _chat_runs() -> float:
    """Runs of ``chat`` agents so far, whatever their outcome."""
    return sum(
        REGISTRY.get_sample_value(
            "agentos_agent_invocations_total", {"agent_type": "chat", "outcome": outcome}
        )
        or 0.0
        for outcome in ("ok", "error", "timeout", "cancelled")
    )
