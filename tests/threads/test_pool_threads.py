"""Acceptance (issue #12) on real worker processes and a real nats-server: conversation threads
that any worker continues, that survive ``kill -9``, that many clients hold at once, and that
never have two runs writing them at the same time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.http.helpers import assert_error, call
from tests.jobs.receiver import Receiver
from tests.streaming.helpers import sse_events
from tests.threads.pool import (
    assert_frames,
    callbacks,
    create_agent,
    fake_model,
    idle_thread,
    invoke,
    messages,
    publish_job,
    task_frames,
    thread_view,
)
from worker.testing import WorkerProcess

REPLY = "Noted."
SLOW_REPLY = "Let me think about that for a little while before I answer you."
SLOW_PACE = "80ms"
"""25 tokens at 80 ms each: a run of about two seconds, long enough to be seen running."""
THREADS, TURNS = 20, 5


def conversation(turns: list[str], reply: str = REPLY) -> list[tuple[str, Any]]:
    """The messages a thread holds after ``turns``, each answered with ``reply``."""
    return [m for text in turns for m in (("human", text), ("ai", reply))]


async def turn(
    http: aiohttp.ClientSession, w: WorkerProcess, agent_id: str, thread_id: str, text: str
) -> None:
    """One turn of a conversation: an invoke on the thread, answered."""
    status, out = await invoke(http, w, agent_id, text, thread_id=thread_id)
    assert status == 200, out
    assert out["status"] == "completed", out
    assert out["output"] == REPLY, out
    assert out["metadata"]["thread_id"] == thread_id, out


async def test_a_thread_of_three_turns_on_workers_a_b_a_survives_a_kill(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession, pool_env: dict[str, str]
) -> None:
    a, b = spawn_worker(pool_env), spawn_worker(pool_env)
    config = {"system_prompt": "Remember what you are told.", "model": fake_model(REPLY)}
    agent_id = await create_agent(http, a, "chat", config)
    status, created, _ = await call(
        http, "POST", b.url + "/v1/threads", json={"metadata": {"user": "ada"}}
    )
    assert status == 201, created
    thread_id = created["thread_id"]
    assert created["metadata"] == {"user": "ada"}
    turns = ["My name is Ada.", "I live in London.", "What do you know about me?"]

    await turn(http, a, agent_id, thread_id, turns[0])
    a.kill()  # SIGKILL: no drain, nothing flushed on the way out
    await turn(http, b, agent_id, thread_id, turns[1])
    a.start()
    await turn(http, a, agent_id, thread_id, turns[2])

    view = await thread_view(http, a, thread_id)
    assert messages(view) == conversation(turns)
    assert view["status"] == "idle"
    assert view["metadata"]["user"] == "ada"
    status, history, _ = await call(http, "GET", f"{b.url}/v1/threads/{thread_id}/history")
    assert status == 200, history
    newest = history["checkpoints"][0]
    assert newest["checkpoint_id"] == view["checkpoint_id"]
    assert newest["values"] == view["values"]


async def test_twenty_threads_of_five_turns_at_once_over_two_workers(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession, pool_env: dict[str, str]
) -> None:
    a, b = spawn_worker(pool_env), spawn_worker(pool_env)
    agent_id = await create_agent(http, a, "chat", {"model": fake_model(REPLY)})
    tag = uuid.uuid4().hex[:8]

    async def converse(i: int) -> list[str]:
        # One client per thread: turn n+1 once turn n is answered, on the other worker.
        texts = [f"thread {i} turn {n}" for n in range(TURNS)]
        for n, text in enumerate(texts):
            await turn(http, (a, b)[(i + n) % 2], agent_id, f"conv-{tag}-{i}", text)
        return texts

    sent = await asyncio.gather(*(converse(i) for i in range(THREADS)))

    for i, texts in enumerate(sent):
        view = await thread_view(http, (a, b)[i % 2], f"conv-{tag}-{i}")
        assert messages(view) == conversation(texts), f"thread {i}"
        assert view["status"] == "idle"


async def test_a_second_http_run_on_a_busy_thread_gets_409(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession, pool_env: dict[str, str]
) -> None:
    a, b = spawn_worker(pool_env), spawn_worker(pool_env)
    slow = fake_model(SLOW_REPLY, pace=SLOW_PACE)
    agent_id = await create_agent(http, a, "chat", {"model": slow})
    thread_id = f"busy-{uuid.uuid4().hex[:8]}"
    body = {"input": "first", "thread_id": thread_id}
    async with http.post(f"{a.url}/v1/agents/{agent_id}/stream", json=body) as first:
        assert first.status == 200, await first.text()
        events = sse_events(first)
        frames: list[dict[str, Any]] = []
        # Once the model streams, the first run holds the thread (on worker A) ...
        while not any(f.get("event") == "token" for f in frames):
            frames.append(orjson.loads((await asyncio.wait_for(anext(events), 20))["data"]))
        assert frames[-1]["status"] == "processing", frames

        # ... so a second run on worker B is refused at once, on every door.
        view = await thread_view(http, b, thread_id)
        assert view["status"] == "busy"
        status, err, headers = await call(
            http,
            "POST",
            f"{b.url}/v1/agents/{agent_id}/invoke",
            json={"input": "second", "thread_id": thread_id},
        )
        assert_error(status, err, headers, expect=409, code="thread_busy")
        second_stream = f"{b.url}/v1/agents/{agent_id}/stream"
        status, err, headers = await call(
            http, "POST", second_stream, json={"input": "third", "thread_id": thread_id}
        )
        assert_error(status, err, headers, expect=409, code="thread_busy")
        async with http.ws_connect(f"{b.url}/v1/agents/{agent_id}/ws") as ws:
            await ws.send_str(orjson.dumps({"input": "fourth", "thread_id": thread_id}).decode())
            refused = orjson.loads((await ws.receive(timeout=20)).data)
            assert refused["error"]["code"] == "thread_busy", refused
        status, err, headers = await call(http, "DELETE", f"{b.url}/v1/threads/{thread_id}")
        assert_error(status, err, headers, expect=409, code="thread_busy")

        frames.extend([orjson.loads(event["data"]) async for event in events])
    assert_frames(frames)
    assert frames[-1]["result"] == SLOW_REPLY

    # Only the first run wrote the thread, and it is free again.
    view = await idle_thread(http, b, thread_id)
    assert messages(view) == conversation(["first"], SLOW_REPLY)


def _window(frames: list[dict[str, Any]]) -> tuple[datetime, datetime]:
    """When a run's model worked: its first token frame to its final frame."""
    first = next(f for f in frames if f.get("event") == "token")
    return datetime.fromisoformat(first["ts"]), datetime.fromisoformat(frames[-1]["ts"])


async def test_two_jobs_on_one_thread_run_one_after_the_other(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    receiver: Receiver,
    pool_env: dict[str, str],
) -> None:
    a = spawn_worker(pool_env)
    spawn_worker(pool_env)
    slow = fake_model(SLOW_REPLY, pace=SLOW_PACE)
    agent_id = await create_agent(http, a, "chat", {"model": slow})
    thread_id = f"jobs-{uuid.uuid4().hex[:8]}"
    texts = ["job one", "job two"]
    task_ids = [
        await publish_job(
            nc, pool_env, receiver, {"agent_id": agent_id, "input": text, "thread_id": thread_id}
        )
        for text in texts
    ]

    # Neither is refused for the thread being busy: both complete.
    bodies = await callbacks(receiver, *task_ids)
    assert [(b["status"], b.get("result")) for b in bodies] == [("completed", SLOW_REPLY)] * 2
    runs = [await task_frames(http, a, task_id) for task_id in task_ids]
    for frames in runs:
        assert_frames(frames)

    # The model's work of one ended before the other's began ...
    (start_1, end_1), (start_2, end_2) = (_window(frames) for frames in runs)
    assert end_1 <= start_2 or end_2 <= start_1, (start_1, end_1, start_2, end_2)
    order = texts if end_1 <= start_2 else texts[::-1]
    # ... and the thread holds both turns, whole, in the order they ran.
    view = await idle_thread(http, a, thread_id)
    assert messages(view) == conversation(order, SLOW_REPLY)
