"""Jobs on conversation threads (CONTRACT section 6): a job that asks a person ends
``interrupted`` and a job with ``resume`` continues it; jobs on one thread take turns, one
that cannot have its thread in time is handed back, never failed for it; bad thread fields are
dead letters. Real worker processes, a real callback receiver; only the model is fake."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
from nats.aio.client import Client

from tests.conftest import ROOT, SpawnWorker
from tests.http.helpers import call
from tests.jobs.conftest import create_agent, record_in, tasks_subject
from tests.jobs.receiver import Receiver
from worker.testing import wait_for

DEPLOY = {"messages": [{"role": "user", "content": "deploy"}]}


def thread_env(job_env: dict[str, str], **more: str) -> dict[str, str]:
    return {
        **job_env,
        "WORKER_THREADS_BUCKET": f"threads_{uuid.uuid4().hex[:8]}",
        "WORKER_AGENT_TYPES": "approval=tests.threads.helpers:approval",
        "PYTHONPATH": str(ROOT),
        **more,
    }


def job(task_id: str, payload: dict[str, Any], callback: str, timeout: str = "60s") -> bytes:
    body = {
        "id": task_id,
        "type": "agent_execution",
        "payload": payload,
        "callback": callback,
        "timeout": timeout,
    }
    return json.dumps(body).encode()


async def callback_of(receiver: Receiver, task_id: str) -> dict[str, Any]:
    got = await receiver.wait_for({task_id}, within=60)
    assert task_id in got, f"no callback for {task_id}"
    body: dict[str, Any] = receiver.verify(got[task_id][0])
    return body


async def test_a_job_asks_and_a_resume_job_answers(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(thread_env(job_env))
    agent_id = await create_agent(http, w, {"type": "approval"})
    thread = f"job-{uuid.uuid4().hex}"
    subject = tasks_subject(job_env)

    asking = str(uuid.uuid4())
    payload = {"agent_id": agent_id, "input": DEPLOY, "thread_id": thread}
    await nc.publish(subject, job(asking, payload, receiver.url(asking)))
    body = await callback_of(receiver, asking)
    assert (body["status"], body["interrupt"], body["thread_id"]) == (
        "interrupted",
        {"question": "approve?"},
        thread,
    )
    assert "result" not in body
    assert body["metadata"]["attempts"] == 1
    record = await wait_for(
        lambda: record_in(http, w.url, asking, "interrupted"), what="the interrupted record"
    )
    assert (record["interrupt"], record["thread_id"]) == ({"question": "approve?"}, thread)
    _, state, _ = await call(http, "GET", f"{w.url}/v1/threads/{thread}")
    assert state["status"] == "interrupted"

    # The answer comes as a job too: thread_id and resume, no input.
    answering = str(uuid.uuid4())
    payload = {"agent_id": agent_id, "thread_id": thread, "resume": "yes"}
    await nc.publish(subject, job(answering, payload, receiver.url(answering)))
    body = await callback_of(receiver, answering)
    assert (body["status"], body["thread_id"]) == ("completed", thread)
    assert body["result"]["messages"][-1]["content"] == "approved: yes"
    _, state, _ = await call(http, "GET", f"{w.url}/v1/threads/{thread}")
    assert state["status"] == "idle"

    # A resume of a thread that asks nothing fails, and says why.
    again = str(uuid.uuid4())
    await nc.publish(subject, job(again, payload, receiver.url(again)))
    body = await callback_of(receiver, again)
    assert (body["status"], body["error"]["code"]) == ("failed", "thread_not_interrupted")


async def test_jobs_on_one_thread_take_turns(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(thread_env(job_env))
    model = {"provider": "fake", "responses": ["an answer of five words"], "token_delay": "50ms"}
    agent_id = await create_agent(http, w, {"type": "chat", "config": {"model": model}})
    thread = f"jobs-{uuid.uuid4().hex}"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for n, task_id in enumerate(ids):
        payload = {"agent_id": agent_id, "input": f"turn {n}", "thread_id": thread}
        await nc.publish(tasks_subject(job_env), job(task_id, payload, receiver.url(task_id)))
    bodies = await asyncio.gather(*(callback_of(receiver, t) for t in ids))
    assert [b["status"] for b in bodies] == ["completed"] * 3
    _, state, _ = await call(http, "GET", f"{w.url}/v1/threads/{thread}")
    said = [(m["type"], m["content"]) for m in state["values"]["messages"]]
    assert [t for t, _ in said] == ["human", "ai"] * 3  # each turn whole, none interleaved
    assert sorted(c for t, c in said if t == "human") == ["turn 0", "turn 1", "turn 2"]


async def test_a_job_that_cannot_have_its_thread_in_time_is_handed_back(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(thread_env(job_env, WORKER_JOB_RETRY_DELAY="500ms"))
    slow = {
        "provider": "fake",
        "responses": ["one two three four five six"],
        "token_delay": "400ms",
    }
    agent_id = await create_agent(http, w, {"type": "chat", "config": {"model": slow}})
    quick = {"provider": "fake", "responses": ["at once"]}
    quick_id = await create_agent(http, w, {"type": "chat", "config": {"model": quick}})
    thread = f"held-{uuid.uuid4().hex}"
    # An HTTP run holds the thread for a few seconds...
    holding = asyncio.create_task(
        call(
            http,
            "POST",
            f"{w.url}/v1/agents/{agent_id}/invoke",
            json={"input": "first", "thread_id": thread},
        )
    )
    await wait_for(
        lambda: _busy(http, w.url, thread), what="the HTTP run holding the thread", within=10
    )
    # ...while a job that may wait 1s for it comes: handed back until the thread is free.
    task_id = str(uuid.uuid4())
    payload = {"agent_id": quick_id, "input": "second", "thread_id": thread}
    await nc.publish(
        tasks_subject(job_env), job(task_id, payload, receiver.url(task_id), timeout="1s")
    )
    status, _, _ = await holding
    assert status == 200
    body = await callback_of(receiver, task_id)
    assert body["status"] == "completed", body
    assert body["metadata"]["attempts"] >= 2
    _, state, _ = await call(http, "GET", f"{w.url}/v1/threads/{thread}")
    assert [m["content"] for m in state["values"]["messages"]][0::2] == ["first", "second"]
    # Its story says so: handed back for the busy thread, its message back, run again.
    _, record, _ = await call(http, "GET", f"{w.url}/v1/tasks/{task_id}")
    events = [(e["event"], e["reason"]) for e in record["history"]]
    assert events[:5] == [
        ("queued", None),
        ("running", None),
        ("handed_back", "thread_busy"),
        ("redelivered", "handed_back"),
        ("running", None),
    ], events
    assert events[-1] == ("completed", None)


async def _busy(http: aiohttp.ClientSession, base: str, thread: str) -> bool:
    status, state, _ = await call(http, "GET", f"{base}/v1/threads/{thread}")
    return status == 200 and state["status"] == "busy"


async def test_bad_thread_fields_are_dead_letters(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(thread_env(job_env))
    agent_id = await create_agent(http, w, {"type": "echo"})
    cases = {
        str(uuid.uuid4()): {"agent_id": agent_id, "input": "x", "thread_id": "not a thread!"},
        str(uuid.uuid4()): {"agent_id": agent_id, "resume": "yes"},  # resume of no thread
    }
    for task_id, payload in cases.items():
        await nc.publish(tasks_subject(job_env), job(task_id, payload, receiver.url(task_id)))
    for task_id in cases:
        body = await callback_of(receiver, task_id)
        assert (body["status"], body["error"]["code"]) == ("failed", "invalid_message")
        assert "thread_id" in body["error"]["message"]
    # An agent that keeps no thread fails the job, saying so.
    task_id = str(uuid.uuid4())
    payload = {"agent_id": agent_id, "input": "x", "thread_id": f"t-{uuid.uuid4().hex}"}
    await nc.publish(tasks_subject(job_env), job(task_id, payload, receiver.url(task_id)))
    body = await callback_of(receiver, task_id)
    assert (body["status"], body["error"]["code"]) == ("failed", "threads_unsupported")
