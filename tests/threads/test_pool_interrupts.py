"""Acceptance (issue #12) on real worker processes and a real nats-server: a graph that stops to
ask a person (LangGraph's ``interrupt()``), resumed on another worker, over HTTP and as jobs."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.http.helpers import assert_error, call
from tests.jobs.receiver import Receiver
from tests.threads.graphs import QUESTION
from tests.threads.pool import (
    assert_frames,
    callbacks,
    create_agent,
    idle_thread,
    invoke,
    messages,
    nodes,
    publish_job,
    steps,
    task_frames,
    thread_view,
)


def ask(text: str) -> dict[str, Any]:
    """The approval graph's input: one message from the user."""
    return {"messages": [{"role": "user", "content": text}]}


def answered(text: str, answer: str) -> list[tuple[str, str]]:
    """The approval graph's messages once ``text`` was approved with ``answer``."""
    return [("human", text), ("ai", f"echo: {text}"), ("ai", f"approved: {answer}")]


async def test_interrupted_on_worker_a_resumed_on_worker_b_over_http(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession, pool_env: dict[str, str]
) -> None:
    a, b = spawn_worker(pool_env), spawn_worker(pool_env)
    agent_id = await create_agent(http, a, "approval", {})
    thread_id = f"deploy-{uuid.uuid4().hex[:8]}"

    status, out = await invoke(http, a, agent_id, ask("ship v2"), thread_id=thread_id)
    assert status == 200, out
    assert (out["status"], out["output"], out["interrupt"]) == ("interrupted", None, QUESTION)
    assert out["metadata"]["thread_id"] == thread_id

    view = await thread_view(http, b, thread_id)
    assert view["status"] == "interrupted"
    assert [i["value"] for i in view["interrupts"]] == [QUESTION]
    assert messages(view) == [("human", "ship v2"), ("ai", "echo: ship v2")]

    resume = f"{b.url}/v1/threads/{thread_id}/resume"
    status, out, _ = await call(http, "POST", resume, json={"resume": "yes"})
    assert status == 200, out
    assert out["status"] == "completed", out
    got = [(m["type"], m["content"]) for m in out["output"]["messages"]]
    assert got == answered("ship v2", "yes")
    assert out["metadata"]["thread_id"] == thread_id

    view = await idle_thread(http, a, thread_id)
    assert messages(view) == answered("ship v2", "yes")
    assert view["interrupts"] == []
    status, err, headers = await call(http, "POST", resume, json={"resume": "again"})
    assert_error(status, err, headers, expect=409, code="thread_not_interrupted")


async def test_a_job_interrupted_then_a_resume_job_completes(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    receiver: Receiver,
    pool_env: dict[str, str],
) -> None:
    a, b = spawn_worker(pool_env), spawn_worker(pool_env)
    agent_id = await create_agent(http, a, "approval", {})
    thread_id = f"deploy-{uuid.uuid4().hex[:8]}"

    asked = await publish_job(
        nc,
        pool_env,
        receiver,
        {"agent_id": agent_id, "input": ask("ship v3"), "thread_id": thread_id},
    )
    (body,) = await callbacks(receiver, asked)
    assert body["status"] == "interrupted", body
    assert (body["interrupt"], body["thread_id"]) == (QUESTION, thread_id)
    status, record, _ = await call(http, "GET", f"{b.url}/v1/tasks/{asked}")
    assert (status, record["status"]) == (200, "interrupted"), record

    frames = await task_frames(http, b, asked)
    assert_frames(frames, final="interrupted")
    assert [data["value"] for _, data in steps(frames, "interrupt")] == [QUESTION]
    assert frames[-1]["interrupt"] == QUESTION
    assert nodes(frames) == ["reply"]  # `ask` stopped: it did not finish
    assert (await thread_view(http, a, thread_id))["status"] == "interrupted"

    # Resumed by a job with no input, on whichever worker takes it.
    resumed = await publish_job(
        nc, pool_env, receiver, {"agent_id": agent_id, "resume": "no", "thread_id": thread_id}
    )
    (body,) = await callbacks(receiver, resumed)
    assert body["status"] == "completed", body
    got = [(m["type"], m["content"]) for m in body["result"]["messages"]]
    assert got == answered("ship v3", "no")

    frames = await task_frames(http, a, resumed)
    assert_frames(frames)
    assert nodes(frames) == ["ask"]
    view = await idle_thread(http, b, thread_id)
    assert messages(view) == answered("ship v3", "no")
