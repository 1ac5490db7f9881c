"""Jobs from agent.execute stream their frames: push to stream_url, serve from any worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nats as nats_py
import orjson
import pytest
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.jobs.conftest import record_in
from tests.streaming.helpers import (
    assert_run,
    create_agent,
    push_receiver,
    sse_frames,
    ws_frames,
)
from worker.agents.fake_model import split_tokens
from worker.testing import NatsServer, WorkerProcess, wait_for


@pytest.fixture
def job_env() -> dict[str, str]:
    """This test's own job streams and consumer on the session's nats-server."""
    tag = uuid.uuid4().hex[:8]
    return {
        "WORKER_TASKS_STREAM": f"TASKS_{tag.upper()}",
        "WORKER_TASKS_SUBJECT": f"agent.execute.s{tag}",
        "WORKER_TASKS_CONSUMER": f"workers-{tag}",
        "WORKER_TASKS_BUCKET": f"tasks_{tag}",
        "WORKER_CALLBACK_STREAM": f"CALLBACKS_{tag.upper()}",
        "WORKER_CALLBACK_SUBJECT": f"agentos.callbacks.s{tag}",
        "WORKER_DLQ_STREAM": f"DLQ_{tag.upper()}",
        "WORKER_DLQ_SUBJECT": f"test.dlq.s{tag}",
        "WORKER_CALLBACK_ALLOW": "127.0.0.1",
    }


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[Client]:
    client = await nats_py.connect(nats.url)
    yield client
    await client.drain()


async def submit(
    nc: Client, env: dict[str, str], agent_id: str, value: Any, stream_url: str | None = None
) -> str:
    """Publish a job as the seed's Go code does (a plain core-NATS publish)."""
    task_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "id": task_id,
        "type": "agent_execution",
        "payload": {"agent_id": agent_id, "input": value},
        "timeout": 60_000_000_000,
    }
    if stream_url:
        body["stream_url"] = stream_url
    await nc.publish(env["WORKER_TASKS_SUBJECT"], orjson.dumps(body))
    return task_id


async def finished(http: aiohttp.ClientSession, w: WorkerProcess, task_id: str) -> dict[str, Any]:
    """The task's view once it has an outcome."""

    async def outcome() -> dict[str, Any] | None:
        async with http.get(f"{w.url}/v1/tasks/{task_id}") as resp:
            view: dict[str, Any] = await resp.json()
            done = resp.status == 200 and view["status"] not in {"queued", "running"}
            return view if done else None

    return await wait_for(outcome, what="the job finished")


async def running(http: aiohttp.ClientSession, w: WorkerProcess, task_id: str) -> None:
    await wait_for(lambda: record_in(http, w.url, task_id, "running"), what="the job started")


async def follow(
    http: aiohttp.ClientSession, url: str, into: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every frame at ``url`` (SSE), added to ``into`` as they arrive."""
    async with http.get(url) as sse:
        return await sse_frames(sse, into)


async def test_job_push_receiver_gets_the_full_sequence(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    job_env: dict[str, str],
) -> None:
    w = spawn_worker(job_env)
    reply = "a job streams its tokens to the gateway"
    config = {"model": {"provider": "fake", "responses": [reply], "token_delay": "5ms"}}
    agent_id = await create_agent(http, w.url, "chat", config)
    async with push_receiver() as rec:
        await submit(nc, job_env, agent_id, "hi", stream_url=rec.url)
        await asyncio.wait_for(rec.done.wait(), 30)
    assert_run(rec.frames)
    assert [f["partial_result"] for f in rec.frames[1:-1]] == split_tokens(reply)
    assert rec.frames[-1]["result"] == reply


async def test_job_push_receiver_that_drops_sees_every_seq(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    job_env: dict[str, str],
) -> None:
    w = spawn_worker(job_env)
    agent_id = await create_agent(http, w.url, "steps", {"steps": 30, "step_delay": "20ms"})
    async with push_receiver(drop_after=10) as rec:
        await submit(nc, job_env, agent_id, "x", stream_url=rec.url)
        await asyncio.wait_for(rec.done.wait(), 30)
    assert rec.connections >= 2
    assert set(rec.seqs()) == set(range(1, 33))
    assert rec.frames[-1]["status"] == "completed"


async def test_job_watchers_on_another_worker_replay_then_follow(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    job_env: dict[str, str],
) -> None:
    runner = spawn_worker(job_env)
    other = spawn_worker({**job_env, "WORKER_JOBS_ENABLED": "false"})  # serves, never runs
    agent_id = await create_agent(http, runner.url, "steps", {"steps": 30, "step_delay": "50ms"})
    task_id = await submit(nc, job_env, agent_id, "x")
    await running(http, runner, task_id)
    url = f"{other.url}/v1/tasks/{task_id}/events"
    # Mid-run: the late watchers below replay frames 2 to 4 and more.
    seen: list[dict[str, Any]] = []
    watcher = asyncio.create_task(follow(http, url, seen))
    await wait_for(lambda: len(seen) >= 5, what="the job's first five frames")
    async with http.ws_connect(f"{url}?from_seq=2") as ws:
        over_ws = await ws_frames(ws)
    async with http.get(url, headers={"Last-Event-ID": "4"}) as sse:
        over_sse = await sse_frames(sse)
    async with http.get(url) as sse:
        everything = await sse_frames(sse)
    assert_run(everything)
    assert everything[-1]["seq"] == 32
    assert over_ws == everything[1:]
    assert over_sse == everything[4:]
    assert await watcher == everything


async def test_job_stream_url_outside_the_allow_list_gets_no_connection(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    job_env: dict[str, str],
) -> None:
    # Loopback is not listed, so the receiver below is not an allowed target. The job has no
    # callback (nothing else needs loopback) and comes in over HTTP.
    w = spawn_worker({**job_env, "WORKER_CALLBACK_ALLOW": "hooks.example.com"})
    agent_id = await create_agent(http, w.url, "steps", {"steps": 3, "step_delay": "10ms"})
    async with push_receiver() as rec:
        task_id = str(uuid.uuid4())
        task = {
            "id": task_id,
            "type": "agent_execution",
            "payload": {"agent_id": agent_id, "input": "x"},
            "stream_url": rec.url,
        }
        async with http.post(f"{w.url}/v1/tasks", json=task) as resp:
            assert resp.status == 202, await resp.text()
        view = await finished(http, w, task_id)
        assert view["status"] == "completed", view
        assert view["result"] == "completed 3 steps for input: x"
        assert "127.0.0.1" in view["stream_refused"], view

        def refusals() -> list[str]:
            lines = w.log_text().splitlines()
            return [line for line in lines if "push refused" in line and task_id in line]

        # The refusal is logged; it is final (never retried), so no connection can follow it.
        await wait_for(refusals, what="the refusal logged")
        assert "WORKER_CALLBACK_ALLOW" in refusals()[0]
        assert rec.accepted == 0
    # The run's frames stay in the log, served as ever.
    async with http.get(f"{w.url}/v1/tasks/{task_id}/events") as sse:
        frames = await sse_frames(sse)
    assert_run(frames)
    assert frames[-1]["result"] == "completed 3 steps for input: x"
