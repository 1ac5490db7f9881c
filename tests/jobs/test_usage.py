"""What runs spend, end to end over a real worker process: the fake OpenAI server's exact token
counts, plain and streamed, arrive unchanged in the invoke answer, the SSE stream's final frame,
a NATS job's callback and task record, and the metrics; a job cancelled mid-stream reports the
tokens streamed before the cancel in its cancelled frame and callback; a job stopped by its
agent's budget fails with budget_exceeded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.fakes.openai_server import FakeOpenAI
from tests.http.helpers import call, metric
from tests.jobs.conftest import create_agent, go_task, record_in, tasks_subject
from tests.jobs.receiver import Receiver
from tests.streaming.helpers import sse_frames
from worker.testing import WorkerProcess, wait_for

MODEL = "e2e-usage"
USAGE = {
    "prompt_tokens": 1234,
    "completion_tokens": 56,
    "cached_tokens": 1000,
    "reasoning_tokens": 7,
}
# 234 uncached input tokens x $2.50 + 1000 cached x $1.25 + 56 output x $10, per million.
COST = 0.002395
EXPECTED = {
    "input_tokens": 1234,
    "output_tokens": 56,
    "total_tokens": 1290,
    "cost_usd": pytest.approx(COST, abs=1e-12),
    "cached_input_tokens": 1000,
    "reasoning_tokens": 7,
    "estimated": False,
}
PRICES = f"""
[models."{MODEL}"]
input = 2.50
output = 10.00
cached_input = 1.25
"""


@pytest.fixture
async def provider() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def chat_on(provider: FakeOpenAI, **config: Any) -> dict[str, Any]:
    model = {
        "provider": "openai",
        "model": MODEL,
        "base_url": provider.base_url,
        "api_key": "sk-test",
        "timeout": "10s",
        "retry": {"max_attempts": 1},
    }
    return {"type": "chat", "config": {"model": model, **config}}


def started(spawn_worker: SpawnWorker, job_env: dict[str, str], tmp_path: Path) -> WorkerProcess:
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    return spawn_worker({**job_env, "WORKER_PRICES_FILE": str(prices)})


async def publish(
    nc: Client, env: dict[str, str], task_id: str, agent_id: str, receiver: Receiver
) -> None:
    """The job ``task_id`` on ``agent_id``, as the seed's Go code publishes it."""
    job = go_task(task_id, agent_id, "How are you?", receiver.url(task_id))
    await nc.publish(tasks_subject(env), job)


async def final_frames(http: aiohttp.ClientSession, base: str, task_id: str) -> list[Any]:
    """Every frame of ``task_id`` stored so far, up to its final one."""
    headers = {"Accept": "text/event-stream"}
    async with http.get(f"{base}/v1/tasks/{task_id}/events", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await asyncio.wait_for(sse_frames(resp), 30)


async def test_exact_counts_reach_every_door_and_the_metrics(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
    provider: FakeOpenAI,
    tmp_path: Path,
) -> None:
    provider.set(reply="Fine, thanks for asking.", usage=USAGE)
    w = started(spawn_worker, job_env, tmp_path)
    agent_id = await create_agent(http, w, chat_on(provider))

    # The invoke door: a plain call.
    status, body, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{agent_id}/invoke", json={"input": "How are you?"}
    )
    assert status == 200, body
    assert body["metadata"]["usage"] == EXPECTED
    assert "time_to_first_token" not in body["metadata"]  # nothing streamed
    assert provider.requests[-1].stream is False

    # The SSE door: a stream, whose usage the provider sends in a last chunk of its own.
    url = f"{w.url}/v1/agents/{agent_id}/stream"
    async with http.post(url, json={"input": "How are you?"}) as resp:
        assert resp.status == 200, await resp.text()
        frames = await asyncio.wait_for(sse_frames(resp), 30)
    assert provider.requests[-1].stream is True
    final = frames[-1]
    assert (final["status"], final["result"]) == ("completed", "Fine, thanks for asking.")
    assert final["usage"] == EXPECTED
    assert final["time_to_first_token"].endswith("s")
    assert all("usage" not in f for f in frames[:-1])

    # The jobs door: a NATS job and its callback, and the task record.
    task_id = str(uuid.uuid4())
    await publish(nc, job_env, task_id, agent_id, receiver)
    got = await receiver.wait_for({task_id}, within=30)
    callback = receiver.verify(got[task_id][0])
    assert callback["status"] == "completed"
    assert callback["metadata"]["usage"] == EXPECTED
    assert callback["metadata"]["time_to_first_token"].endswith("s")
    status, record, _ = await call(http, "GET", f"{w.url}/v1/tasks/{task_id}")
    assert status == 200
    assert record["usage"] == EXPECTED
    assert record["time_to_first_token"] == callback["metadata"]["time_to_first_token"]
    job_frames = await final_frames(http, w.url, task_id)
    assert job_frames[-1]["usage"] == EXPECTED

    # Three runs, each counted once, unchanged.
    labels = {"agent_type": "chat", "provider": "openai", "model": MODEL}
    for kind, each in [("input", 1234), ("output", 56), ("cached_input", 1000), ("reasoning", 7)]:
        assert await metric(http, w.url, "agentos_llm_tokens_total", **labels, kind=kind) == (
            3 * each
        ), kind
    spent = await metric(http, w.url, "agentos_llm_cost_usd_total", **labels)
    assert spent == pytest.approx(3 * COST, abs=1e-12)
    model = {"provider": "openai", "model": MODEL}
    first_tokens = "agentos_llm_time_to_first_token_seconds_count"
    assert await metric(http, w.url, first_tokens, **model) == 2  # the two streamed runs


async def test_a_job_cancelled_mid_stream_reports_the_tokens_streamed_before(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
    provider: FakeOpenAI,
    tmp_path: Path,
) -> None:
    reply = " ".join(f"w{i}" for i in range(400))
    provider.set(reply=reply, token_delay=0.02, usage=USAGE)
    w = started(spawn_worker, job_env, tmp_path)
    agent_id = await create_agent(http, w, chat_on(provider))
    task_id = str(uuid.uuid4())
    await publish(nc, job_env, task_id, agent_id, receiver)
    await wait_for(lambda: record_in(http, w.url, task_id, "running"), what="the job running")

    seen: list[dict[str, Any]] = []
    headers = {"Accept": "text/event-stream"}
    async with http.get(f"{w.url}/v1/tasks/{task_id}/events", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        reading = asyncio.create_task(sse_frames(resp, seen))

        async def some_tokens() -> bool:
            return sum(f.get("event") == "token" for f in seen) >= 5

        await wait_for(some_tokens, what="five tokens streamed")
        status, _, _ = await call(http, "POST", f"{w.url}/v1/tasks/{task_id}/cancel")
        assert status == 202
        frames = await asyncio.wait_for(reading, 30)

    final = frames[-1]
    assert final["status"] == "cancelled"
    streamed = sum(f.get("event") == "token" for f in frames)
    assert 5 <= streamed < len(reply.split())
    usage = final["usage"]
    # The provider's count comes after its last token, which never came: each token streamed
    # counts as one output token, and the prompt's count is unknown.
    assert (usage["output_tokens"], usage["input_tokens"], usage["estimated"]) == (
        streamed,
        0,
        True,
    )
    got = await receiver.wait_for({task_id}, within=30)
    callback = receiver.verify(got[task_id][0])
    assert callback["status"] == "cancelled"
    assert callback["metadata"]["usage"] == usage
    status, record, _ = await call(http, "GET", f"{w.url}/v1/tasks/{task_id}")
    assert record["usage"] == usage


async def test_a_job_stopped_by_its_budget_fails_with_budget_exceeded(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
    provider: FakeOpenAI,
    tmp_path: Path,
) -> None:
    provider.set(reply=" ".join(f"w{i}" for i in range(100)), usage=USAGE)
    w = started(spawn_worker, job_env, tmp_path)
    spec = chat_on(provider, limits={"max_tokens_per_run": 20})
    agent_id = await create_agent(http, w, spec)
    task_id = str(uuid.uuid4())
    await publish(nc, job_env, task_id, agent_id, receiver)
    got = await receiver.wait_for({task_id}, within=30)
    callback = receiver.verify(got[task_id][0])
    assert callback["status"] == "failed"
    assert callback["error"]["code"] == "budget_exceeded"
    assert callback["metadata"]["usage"]["output_tokens"] == 21  # the token that passed 20
    frames = await final_frames(http, w.url, task_id)
    assert (frames[-1]["status"], frames[-1]["error"]["code"]) == ("failed", "budget_exceeded")
    assert frames[-1]["usage"] == callback["metadata"]["usage"]
    assert provider.count == 1  # stopped: not retried, no fallback
