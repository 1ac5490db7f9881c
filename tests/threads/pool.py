"""Helpers for the acceptance tests of issue #12 on a pool of real worker processes: agents,
threads and jobs over the wire, as the Go backend and its clients use them (CONTRACT sections
2, 3 and 6, and the shapes the thread wiring fills in)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import orjson
from nats.aio.client import Client

from tests.conftest import ROOT
from tests.http.helpers import call
from tests.jobs.receiver import SECRET, Receiver
from tests.streaming.helpers import sse_frames
from worker.testing import WorkerProcess, wait_for

AGENT_TYPES = "greeter=tests.agents.graphs:graph,approval=tests.threads.graphs:approval"
"""The test graphs, known to the workers only through ``WORKER_AGENT_TYPES``."""
FINAL = frozenset({"completed", "failed", "cancelled", "interrupted"})
"""A run's last frame has one of these statuses (``interrupted`` is final too)."""
FRAMES_WITHIN = 20.0
"""Seconds a finished run's frames may take to arrive in full."""


def pool_env() -> dict[str, str]:
    """Worker settings for one test: its own job streams, consumer and buckets (threads
    included) on the session's nats-server, callbacks and pushes allowed to loopback, and the
    test graphs registered by import path."""
    tag = uuid.uuid4().hex[:8]
    return {
        "WORKER_AGENT_TYPES": AGENT_TYPES,
        "PYTHONPATH": str(ROOT),
        "WORKER_THREADS_BUCKET": f"threads_{tag}",
        "WORKER_TASKS_STREAM": f"TASKS_{tag.upper()}",
        "WORKER_TASKS_SUBJECT": f"agent.execute.p{tag}",
        "WORKER_TASKS_CONSUMER": f"workers-{tag}",
        "WORKER_TASKS_BUCKET": f"tasks_{tag}",
        "WORKER_CALLBACK_STREAM": f"CALLBACKS_{tag.upper()}",
        "WORKER_CALLBACK_SUBJECT": f"agentos.callbacks.p{tag}",
        "WORKER_DLQ_STREAM": f"DLQ_{tag.upper()}",
        "WORKER_DLQ_SUBJECT": f"test.dlq.p{tag}",
        "WORKER_CALLBACK_ALLOW": "127.0.0.1",
        "WORKER_CALLBACK_SECRET": SECRET,
        "WORKER_SHUTDOWN_GRACE": "5s",
    }


async def create_agent(
    http: aiohttp.ClientSession, w: WorkerProcess, type_name: str, config: dict[str, Any]
) -> str:
    """A new agent of ``type_name``; its id."""
    status, body, _ = await call(
        http, "POST", w.url + "/v1/agents", json={"type": type_name, "config": config}
    )
    assert status == 201, body
    return str(body["id"])


def fake_model(*responses: Any, pace: str = "0s") -> dict[str, Any]:
    """The ``fake`` provider answering ``responses`` in turn, ``pace`` before each token."""
    return {"provider": "fake", "responses": list(responses), "token_delay": pace}


def calculator(expression: str) -> dict[str, Any]:
    """A scripted reply of the fake model that calls the calculator."""
    return {"tool_calls": [{"name": "calculator", "args": {"expression": expression}}]}


async def invoke(
    http: aiohttp.ClientSession,
    w: WorkerProcess,
    agent_id: str,
    value: Any,
    *,
    thread_id: str | None = None,
) -> tuple[int, Any]:
    """``POST /v1/agents/{id}/invoke``, on a thread when ``thread_id`` is given."""
    body: dict[str, Any] = {"input": value}
    if thread_id is not None:
        body["thread_id"] = thread_id
    status, out, _ = await call(http, "POST", f"{w.url}/v1/agents/{agent_id}/invoke", json=body)
    return status, out


async def thread_view(http: aiohttp.ClientSession, w: WorkerProcess, thread_id: str) -> Any:
    """``GET /v1/threads/{thread_id}`` (200 expected)."""
    status, view, _ = await call(http, "GET", f"{w.url}/v1/threads/{thread_id}")
    assert status == 200, view
    return view


async def idle_thread(http: aiohttp.ClientSession, w: WorkerProcess, thread_id: str) -> Any:
    """The thread's view once no run holds it (a run's last frame may reach a reader a moment
    before the run lets go of its thread)."""

    async def idle() -> Any:
        view = await thread_view(http, w, thread_id)
        return view if view["status"] == "idle" else None

    return await wait_for(idle, what=f"thread {thread_id} idle")


def messages(view: dict[str, Any]) -> list[tuple[str, Any]]:
    """A thread's messages as ``(type, content)`` pairs."""
    return [(m["type"], m["content"]) for m in view["values"]["messages"]]


def go_job(
    task_id: str,
    payload: dict[str, Any],
    callback: str,
    *,
    timeout_ns: int,
    stream_url: str | None = None,
) -> bytes:
    """A TaskMessage as Go's ``encoding/json`` writes it: tagged keys in field order, the
    payload map's keys sorted, the timeout as integer nanoseconds."""
    msg: dict[str, Any] = {
        "id": task_id,
        "type": "agent_execution",
        "payload": dict(sorted(payload.items())),
        "callback": callback,
        "timeout": timeout_ns,
    }
    if stream_url is not None:
        msg["stream_url"] = stream_url
    return orjson.dumps(msg)


async def publish_job(
    nc: Client,
    env: dict[str, str],
    receiver: Receiver,
    payload: dict[str, Any],
    *,
    timeout_ns: int = 60_000_000_000,
    stream_url: str | None = None,
) -> str:
    """Publish a job the way the seed's Go code does (a core-NATS publish on the tasks
    subject), its callback to ``receiver``; the task id."""
    task_id = str(uuid.uuid4())
    callback = receiver.url(task_id)
    data = go_job(task_id, payload, callback, timeout_ns=timeout_ns, stream_url=stream_url)
    await nc.publish(env["WORKER_TASKS_SUBJECT"], data)
    await nc.flush()
    return task_id


async def callbacks(receiver: Receiver, *task_ids: str) -> list[Any]:
    """The first callback body of each task, in the order asked (each one signed)."""
    got = await receiver.wait_for(set(task_ids), within=30)
    missing = set(task_ids) - set(got)
    assert not missing, f"no callback for {missing}"
    for task_id in task_ids:
        receiver.verify(got[task_id][0])
    return [got[task_id][0].json for task_id in task_ids]


async def task_frames(http: aiohttp.ClientSession, w: WorkerProcess, task_id: str) -> list[Any]:
    """Every frame of a run, replayed over SSE from ``/v1/tasks/{id}/events`` up to its final
    frame (which ends the stream)."""
    async with http.get(f"{w.url}/v1/tasks/{task_id}/events") as resp:
        assert resp.status == 200, await resp.text()
        return await asyncio.wait_for(sse_frames(resp), FRAMES_WITHIN)


async def socket_run(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> list[Any]:
    """Send one message on a chat socket; the frames of the run it starts, up to the final
    one. An error message instead of a frame fails the test."""
    await ws.send_str(orjson.dumps(message).decode())
    frames: list[Any] = []
    while not frames or frames[-1]["status"] not in FINAL:
        msg = await ws.receive(timeout=FRAMES_WITHIN)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = orjson.loads(msg.data)
        assert "error" not in frame or "status" in frame, frame
        frames.append(frame)
    return frames


def assert_frames(frames: list[Any], *, final: str = "completed") -> None:
    """seq 1, 2, 3... with no gap, ``started`` first, one final frame, last, of ``final``."""
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1)), frames
    assert frames[0]["status"] == "started", frames[0]
    assert [f["status"] in FINAL for f in frames] == [False] * (len(frames) - 1) + [True], frames
    assert frames[-1]["status"] == final, frames[-1]


def steps(frames: list[Any], *events: str) -> list[tuple[str, Any]]:
    """The ``(event, data)`` of the frames whose ``event`` is one of ``events``."""
    return [(f["event"], f.get("data")) for f in frames if f.get("event") in events]


def nodes(frames: list[Any]) -> list[str]:
    """The graph nodes that finished, in order, from the ``node`` frames."""
    return [data["node"] for _, data in steps(frames, "node")]
