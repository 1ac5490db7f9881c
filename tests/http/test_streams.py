"""The streaming door of ``worker.http.streams`` in real worker processes, with real clients
over real sockets: ``POST /v1/agents/{id}/stream`` (SSE) and ``/v1/tasks/{id}/events`` (SSE or
WebSocket, from any worker)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import nats as nats_client
import orjson

from tests.conftest import SpawnWorker
from tests.streaming.helpers import assert_run, create_agent, sse_frames, ws_frames
from worker.agents.fake_model import split_tokens
from worker.streaming.frames import STARTED, Draft
from worker.streaming.hub import StreamOptions
from worker.streaming.log import FrameLog
from worker.testing import NatsServer, WorkerProcess, wait_for

REPLY = "Streaming works token by token."
LIMITS = StreamOptions().limits


async def test_post_stream_answers_sse_with_the_model_tokens(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    config = {"model": {"provider": "fake", "responses": [REPLY]}}
    agent_id = await create_agent(http, worker.url, "chat", config)
    async with http.post(f"{worker.url}/v1/agents/{agent_id}/stream", json={"input": "hi"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        task_id = resp.headers["X-Task-ID"]
        frames = await sse_frames(resp)
    assert_run(frames)
    assert {f["task_id"] for f in frames} == {task_id}
    assert [f["partial_result"] for f in frames[1:-1]] == split_tokens(REPLY)
    assert frames[-1]["result"] == REPLY


async def test_watchers_on_another_worker_replay_then_follow_live(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    a, b = spawn_worker(), spawn_worker()
    agent_id = await create_agent(http, a.url, "steps", {"steps": 20, "step_delay": "50ms"})
    async with http.post(f"{a.url}/v1/agents/{agent_id}/stream", json={"input": "x"}) as run:
        task_id = run.headers["X-Task-ID"]
        seen: list[dict[str, Any]] = []
        runner = asyncio.create_task(sse_frames(run, seen))
        await wait_for(lambda: len(seen) >= 6, what="the run's first six frames")  # mid-run
        url = f"{b.url}/v1/tasks/{task_id}/events"
        async with http.ws_connect(f"{url}?from_seq=3") as ws:
            over_ws = await ws_frames(ws)
            await ws.receive()
            assert ws.close_code == 1000
        async with http.get(url, headers={"Last-Event-ID": "5"}) as sse:
            over_sse = await sse_frames(sse)
        everything = await runner
    assert_run(everything)
    assert_run(over_ws, first=3)
    assert_run(over_sse, first=6)
    assert over_ws == everything[2:]
    assert over_sse == everything[5:]


async def test_events_socket_refuses_input_and_unknown_tasks(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{worker.url}/v1/tasks/no-such-task/events") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "task_not_found"
    agent_id = await create_agent(http, worker.url, "steps", {"steps": 40, "step_delay": "50ms"})
    async with http.post(f"{worker.url}/v1/agents/{agent_id}/stream", json={"input": "x"}) as run:
        task_id = run.headers["X-Task-ID"]
        url = f"{worker.url}/v1/tasks/{task_id}/events"
        async with http.get(url, params={"from_seq": "zero"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "invalid_from_seq"
        async with http.get(url, headers={"Accept": "application/json"}) as resp:
            assert resp.status == 406
        async with http.ws_connect(url) as ws:
            assert orjson.loads((await ws.receive()).data)["seq"] == 1
            await ws.send_str('{"input": 1}')
            while True:
                body = orjson.loads((await ws.receive()).data)
                if "error" in body:
                    break
            assert body["error"]["code"] == "unexpected_message"
            await ws.send_bytes(b"binary")
            while (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                pass
            assert ws.close_code == 1003
        run.close()


async def _open_sockets(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(f"{url}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("agentos_websocket_connections{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_watcher_that_leaves_a_quiet_task_is_let_go_at_once(
    worker: WorkerProcess, nats: NatsServer, http: aiohttp.ClientSession
) -> None:
    nc = await nats_client.connect(nats.url)
    try:
        log = FrameLog(nc=nc, js=nc.jetstream(), stream="AGENTOS_FRAMES", limits=LIMITS)
        task_id = uuid.uuid4().hex
        first = Draft(status=STARTED, progress=0, message="started")
        data = first.encode(task_id=task_id, seq=1, attempt=1)
        await log.claim(task_id, data, seq=1, after_sseq=0)
    finally:
        await nc.close()
    before = await _open_sockets(http, worker.url)
    url = f"{worker.url}/v1/tasks/{task_id}/events"
    async with http.ws_connect(url) as ws:
        assert orjson.loads((await ws.receive()).data)["seq"] == 1
        assert await _open_sockets(http, worker.url) == before + 1
    # No frame will come for this task: the worker must not wait for one to notice, nor for
    # its watchdog (idle_check, 5 s), so the deadline stays below that.

    async def let_go() -> bool:
        return await _open_sockets(http, worker.url) == before

    await wait_for(let_go, what="the watcher's socket closed on the server", within=4.0)
    assert await _open_sockets(http, worker.url) == before
