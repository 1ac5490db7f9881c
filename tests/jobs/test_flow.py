"""Jobs over NATS end to end: a Go-marshalled publish, real workers, a real callback receiver."""

from __future__ import annotations

import uuid

import aiohttp
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.http.helpers import call
from tests.jobs.conftest import create_agent, go_task, record_in, tasks_subject
from tests.jobs.receiver import Receiver
from worker.testing import wait_for

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


async def test_happy_path_from_a_go_publisher(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(job_env)
    agent_id = await create_agent(
        http,
        w,
        {
            "type": "chat",
            "config": {"model": {"provider": "fake", "responses": ["Done, from the pool."]}},
        },
    )
    task_id = str(uuid.uuid4())
    # s.nats.Publish("agent.execute", data): a plain core-NATS publish, persisted by JetStream.
    await nc.publish(
        tasks_subject(job_env),
        go_task(task_id, agent_id, "do it", receiver.url(task_id)),
        headers={"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"},
    )
    got = await receiver.wait_for({task_id}, within=30)
    (delivery,) = got[task_id]
    body = receiver.verify(delivery)  # Standard Webhooks signature, checked by the library
    assert body["task_id"] == task_id
    assert body["status"] == "completed"
    assert body["result"] == "Done, from the pool."
    meta = body["metadata"]
    assert meta["attempts"] == 1
    assert meta["worker_id"]
    assert meta["execution_time"].endswith("s")
    assert delivery.headers["webhook-id"] == f"msg_{task_id}"
    # The trace that came in with the NATS message goes out with the callback.
    assert delivery.headers["traceparent"].split("-")[1] == TRACE_ID

    status, state, _ = await call(http, "GET", f"{w.url}/v1/tasks/{task_id}")
    assert status == 200
    assert (state["status"], state["attempts"], state["result"]) == (
        "completed",
        1,
        "Done, from the pool.",
    )


async def test_submit_over_http(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
) -> None:
    w = spawn_worker(job_env)
    agent_id = await create_agent(http, w, {"type": "echo"})
    task_id = str(uuid.uuid4())
    status, body, headers = await call(
        http,
        "POST",
        w.url + "/v1/tasks",
        json={
            "ID": task_id,
            "Type": "agent_execution",
            "Payload": {"agent_id": agent_id, "input": {"n": 1}},
            "Callback": receiver.url(task_id),
            "Timeout": "30s",
        },
    )
    assert status == 202, body
    assert headers["Location"] == f"/v1/tasks/{task_id}"
    got = await receiver.wait_for({task_id}, within=30)
    assert got[task_id][0].json["result"] == {"n": 1}


async def test_two_workers_share_the_work_and_none_runs_twice(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    a, _ = spawn_worker(job_env), spawn_worker(job_env)
    agent_id = await create_agent(
        http, a, {"type": "steps", "config": {"steps": 2, "step_delay": "20ms"}}
    )
    ids = [str(uuid.uuid4()) for _ in range(200)]
    for task_id in ids:
        await nc.publish(
            tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id))
        )
    got = await receiver.wait_for(set(ids), within=90)
    assert set(got) == set(ids)
    assert all(len(d) == 1 for d in got.values())
    bodies = [d[0].json for d in got.values()]
    assert all(body["metadata"]["attempts"] == 1 for body in bodies)
    workers = {body["metadata"]["worker_id"] for body in bodies}
    assert len(workers) == 2, workers


async def test_republished_task_gets_its_stored_result_without_a_second_model_call(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(job_env)
    # The fake model answers "first", then "second": a second model call would show.
    agent_id = await create_agent(
        http,
        w,
        {
            "type": "chat",
            "config": {"model": {"provider": "fake", "responses": ["first", "second"]}},
        },
    )
    task_id = str(uuid.uuid4())
    msg = go_task(task_id, agent_id, "q", receiver.url(task_id))
    await nc.publish(tasks_subject(job_env), msg)
    await receiver.wait_for({task_id})
    await nc.publish(tasks_subject(job_env), msg)
    await wait_for(
        lambda: len(receiver.by_task().get(task_id, [])) == 2,
        what="the republished task's second callback",
    )
    first, again = receiver.by_task()[task_id]
    assert first.json == again.json
    assert again.json["result"] == "first"
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    _, metrics, _ = await call(http, "GET", w.url + "/metrics")
    assert 'agentos_agent_invocations_total{agent_type="chat",outcome="ok"} 1.0' in metrics
    assert "duplicate" in metrics


async def test_timeout_fails_the_job_as_timeout(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(job_env)
    agent_id = await create_agent(
        http, w, {"type": "steps", "config": {"steps": 50, "step_delay": "100ms"}}
    )
    task_id = str(uuid.uuid4())
    await nc.publish(
        tasks_subject(job_env),
        go_task(task_id, agent_id, "x", receiver.url(task_id), timeout_ns=300_000_000),
    )
    body = (await receiver.wait_for({task_id}, within=30))[task_id][0].json
    assert body["status"] == "failed"
    assert body["error"]["code"] == "timeout"


async def test_cancel_over_http_and_over_nats(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    w = spawn_worker(job_env)
    agent_id = await create_agent(
        http, w, {"type": "steps", "config": {"steps": 100, "step_delay": "100ms"}}
    )
    by_http, by_nats = str(uuid.uuid4()), str(uuid.uuid4())
    for task_id in (by_http, by_nats):
        await nc.publish(
            tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id))
        )
    # Both jobs must be running when they are cancelled: the task record says so.
    for task_id in (by_http, by_nats):
        record = await wait_for(
            lambda task_id=task_id: record_in(http, w.url, task_id, "running"),
            what=f"task {task_id} running",
        )
        assert record["status"] == "running", record
    status, _, _ = await call(http, "POST", f"{w.url}/v1/tasks/{by_http}/cancel")
    assert status == 202
    await nc.publish(f"agent.cancel.{by_nats}", b"")
    got = await receiver.wait_for({by_http, by_nats}, within=30)
    for task_id in (by_http, by_nats):
        body = got[task_id][0].json
        assert body["status"] == "cancelled", body
        assert body["error"]["code"] == "cancelled"
    status, body, _ = await call(http, "POST", f"{w.url}/v1/tasks/{by_http}/cancel")
    assert (status, body["error"]["code"]) == (409, "task_finished")
