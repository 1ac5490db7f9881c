"""Malformed jobs end in the dead-letter stream with their reason; operators list and replay."""

from __future__ import annotations

import json
import uuid

import aiohttp
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.http.helpers import call
from tests.jobs.conftest import create_agent, go_task, record_in, tasks_subject
from tests.jobs.receiver import Receiver
from worker.testing import WorkerProcess, wait_for


async def _dead(http: aiohttp.ClientSession, w: WorkerProcess, n: int) -> list[dict[str, object]]:
    async def listed() -> list[dict[str, object]] | None:
        _, page, _ = await call(http, "GET", w.url + "/v1/dead-letters")
        return list(page["dead_letters"]) if len(page["dead_letters"]) >= n else None

    return await wait_for(listed, what=f"{n} dead letters")


async def test_malformed_messages_battery(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(job_env)
    agent_id = await create_agent(http, w, {"type": "echo"})
    ids = {k: str(uuid.uuid4()) for k in ("type", "agent", "agent_id", "input", "timeout")}

    def msg(**fields: object) -> bytes:
        return json.dumps(fields).encode()

    cases: list[tuple[bytes, str, str | None]] = [
        (b'{"id": "x", "type": ', "malformed_json", None),
        (b"[1, 2, 3]", "invalid_message", None),
        (b"\xff\xfe", "malformed_json", None),
        (
            msg(type="agent_execution", payload={"agent_id": agent_id, "input": 1}),
            "invalid_message",
            None,
        ),  # no id
        (
            msg(
                id=ids["type"],
                type="train_model",
                payload={"agent_id": agent_id, "input": 1},
                callback=receiver.url(ids["type"]),
            ),
            "unknown_type",
            ids["type"],
        ),
        (
            msg(
                id=ids["agent"],
                type="agent_execution",
                payload={"agent_id": "nobody", "input": 1},
                callback=receiver.url(ids["agent"]),
            ),
            "unknown_agent",
            ids["agent"],
        ),
        (
            msg(
                id=ids["agent_id"],
                type="agent_execution",
                payload={"input": 1},
                callback=receiver.url(ids["agent_id"]),
            ),
            "invalid_message",
            ids["agent_id"],
        ),
        (
            msg(
                id=ids["input"],
                type="agent_execution",
                payload={"agent_id": agent_id},
                callback=receiver.url(ids["input"]),
            ),
            "invalid_message",
            ids["input"],
        ),
        (
            msg(
                id=ids["timeout"],
                type="agent_execution",
                payload={"agent_id": agent_id, "input": 1},
                callback=receiver.url(ids["timeout"]),
                timeout="soon",
            ),
            "invalid_message",
            ids["timeout"],
        ),
    ]
    for data, _, _ in cases:
        await nc.publish(tasks_subject(job_env), data)
    dead = await _dead(http, w, len(cases))
    # Jobs run concurrently, so dead letters arrive in any order: match them by content.
    assert sorted(d["reason"] for d in dead) == sorted(reason for _, reason, _ in cases)
    for data, reason, task_id in cases:
        match = [
            d
            for d in dead
            if d["reason"] == reason
            and d["task_id"] == (task_id or "")
            and (d["original_base64"] or d["original"].encode() == data)
        ]
        assert match, (data, reason)
        assert match[0]["detail"]
        assert match[0]["attempts"] == 1
        assert match[0]["subject"] == tasks_subject(job_env)
    # Where the callback URL was usable, a `failed` callback went out with the reason.
    with_callback = {task_id: reason for _, reason, task_id in cases if task_id}
    got = await receiver.wait_for(set(with_callback), within=30)
    for task_id, reason in with_callback.items():
        body = got[task_id][0].json
        assert body["status"] == "failed", body
        assert body["error"]["code"] == reason
    # The worker is still serving.
    status, _, _ = await call(http, "GET", w.url + "/readyz")
    assert status == 200


async def test_replay_a_dead_letter_once_its_cause_is_fixed(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(job_env)
    task_id = str(uuid.uuid4())
    # The agent does not exist yet: the job dies with `unknown_agent`.
    await nc.publish(
        tasks_subject(job_env), go_task(task_id, "demo-echo", "hi", receiver.url(task_id))
    )
    (dead,) = await _dead(http, w, 1)
    assert dead["reason"] == "unknown_agent"
    await receiver.wait_for({task_id}, within=30)
    # An operator fixes the cause (a worker with the demo agents) and replays it.
    w.stop()
    w.env["WORKER_DEMO_AGENTS"] = "true"
    w.start()
    receiver.deliveries.clear()
    status, body, _ = await call(http, "POST", f"{w.url}/v1/dead-letters/{dead['seq']}/replay")
    assert status == 202, body
    # The dead record is final, so the replay must not be taken as a duplicate: it is a new
    # delivery of the original message, which now runs.
    got = await receiver.wait_for({task_id}, within=30)
    assert got[task_id][-1].json["status"] == "completed"
    _, page, _ = await call(http, "GET", w.url + "/v1/dead-letters")
    assert page["dead_letters"] == []
    status, body, _ = await call(http, "POST", f"{w.url}/v1/dead-letters/999999/replay")
    assert (status, body["error"]["code"]) == (404, "dead_letter_not_found")


async def test_a_job_whose_worker_dies_on_every_delivery_is_dead_lettered(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    env = {
        **job_env,
        "WORKER_JOB_ACK_WAIT": "1s",
        "WORKER_JOB_MAX_DELIVER": "1",
    }
    a = spawn_worker(env)
    agent_id = await create_agent(
        http, a, {"type": "steps", "config": {"steps": 50, "step_delay": "100ms"}}
    )
    task_id = str(uuid.uuid4())
    await nc.publish(tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id)))
    await wait_for(lambda: record_in(http, a.url, task_id, "running"), what="the job running")
    a.kill()  # its only delivery dies with it
    b = spawn_worker(env)
    got = await receiver.wait_for({task_id}, within=30)
    body = got[task_id][0].json
    assert (body["status"], body["error"]["code"]) == ("failed", "max_deliveries")
    dead = await _dead(http, b, 1)
    assert dead[0]["reason"] == "max_deliveries"
