"""A job's whole story in ``GET /v1/tasks/{id}``: its state changes in order and how its
callback went, told by the record the pool keeps (issue #13, item 6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.http.helpers import call, metric
from tests.jobs.conftest import create_agent, go_task, tasks_subject
from tests.jobs.receiver import Receiver
from worker.callbacks.attempts import Attempt
from worker.jobs.history import HISTORY_LIMIT, TRIES_LIMIT, appended, event, with_attempt
from worker.testing import WorkerProcess, wait_for


async def _record(http: aiohttp.ClientSession, w: WorkerProcess, task_id: str) -> dict[str, Any]:
    status, body, _ = await call(http, "GET", f"{w.url}/v1/tasks/{task_id}")
    return body if status == 200 and isinstance(body, dict) else {}


async def test_killed_worker_and_a_failing_receiver_show_every_step(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    """The acceptance line: a job that fails once (its worker killed -9), runs again elsewhere,
    and whose receiver answers 503 twice before 200, shows every step."""
    workers = {
        name: spawn_worker({**job_env, "WORKER_WORKER_ID": name}) for name in ("w-one", "w-two")
    }
    agent_id = await create_agent(
        http, workers["w-one"], {"type": "steps", "config": {"steps": 10, "step_delay": "300ms"}}
    )
    receiver.script = [503, 503]
    task_id = str(uuid.uuid4())
    await nc.publish(tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id)))

    async def running() -> dict[str, Any]:
        record = await _record(http, workers["w-one"], task_id)
        return record if record.get("status") == "running" else {}

    first = (await wait_for(running, what="the job running on a worker"))["worker_id"]
    second = next(name for name in workers if name != first)
    workers[first].kill()  # SIGKILL mid-run
    survivor = workers[second]

    async def told() -> dict[str, Any]:
        record = await _record(http, survivor, task_id)
        callback = record.get("callback") or {}
        return record if callback.get("delivered_at") and callback.get("attempts") == 3 else {}

    record = await wait_for(told, what="the job completed and its callback delivered", within=90)

    assert record["status"] == "completed"
    events = record["history"]
    assert [e["event"] for e in events] == [
        "queued",
        "running",
        "redelivered",
        "running",
        "completed",
    ], events
    _, run_one, back, run_two, done = events
    assert (run_one["attempt"], run_one["worker_id"]) == (1, first)
    assert (back["delivery"], back["reason"], back["worker_id"]) == (2, "worker_lost", second)
    assert first in back["detail"]
    assert (run_two["attempt"], run_two["worker_id"]) == (2, second)
    assert (done["attempt"], done["worker_id"], done["reason"]) == (2, second, None)
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert times == sorted(times), events
    assert record["history_dropped"] == 0

    callback = record["callback"]
    assert [t["status_code"] for t in callback["tries"]] == [503, 503, 200], callback
    assert [t["attempt"] for t in callback["tries"]] == [1, 2, 3], callback
    assert callback["last_status_code"] == 200
    assert callback["next_attempt_at"] is None
    assert callback["dead_lettered_at"] is None
    tried = [datetime.fromisoformat(t["at"]) for t in callback["tries"]]
    assert tried == sorted(tried)
    assert datetime.fromisoformat(callback["delivered_at"]) == tried[-1]
    assert receiver.attempts == 3
    assert len(receiver.by_task()[task_id]) == 1

    # The pool's backlog, as the survivor polls it: waiting, unacknowledged, redelivered.
    consumer = job_env["WORKER_TASKS_CONSUMER"]

    async def backlog() -> bool:
        _, text, _ = await call(http, "GET", survivor.url + "/metrics")
        states = ("pending", "ack_pending", "redelivered")
        return all(
            f'agentos_consumer_pending_messages{{consumer="{consumer}",state="{s}"}}' in text
            for s in states
        )

    await wait_for(backlog, what="the consumer's backlog gauges", within=15)
    # The same run, in the survivor's metrics: its queue wait, and why it ran again.
    assert (
        await metric(http, survivor.url, "agentos_job_redeliveries_total", reason="worker_lost")
        == 1.0
    )
    assert (
        await metric(http, survivor.url, "agentos_job_queue_wait_seconds_count", agent_type="steps")
        >= 1.0
    )


async def test_a_connection_error_and_a_rejection_are_told_too(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    receiver: Receiver,
    http: aiohttp.ClientSession,
    nc: Client,
) -> None:
    """A receiver that is not listening, then one that answers 400: the record says no answer
    came, then that the callback was given up (dead-lettered) and why."""
    w = spawn_worker(job_env)
    agent_id = await create_agent(http, w, {"type": "echo"})
    await receiver.stop()  # nobody listens on its port: a connection error
    receiver.status = 400
    task_id = str(uuid.uuid4())
    await nc.publish(tasks_subject(job_env), go_task(task_id, agent_id, "x", receiver.url(task_id)))

    async def refused() -> dict[str, Any]:
        callback = (await _record(http, w, task_id)).get("callback") or {}
        return callback if callback.get("attempts", 0) >= 1 else {}

    callback = await wait_for(refused, what="the first callback attempt recorded")
    assert callback["last_status_code"] is None
    assert callback["last_error"], callback
    assert callback["next_attempt_at"] is not None
    await receiver.start()

    async def given_up() -> dict[str, Any]:
        callback = (await _record(http, w, task_id)).get("callback") or {}
        return callback if callback.get("dead_lettered_at") else {}

    callback = await wait_for(given_up, what="the callback given up", within=60)
    assert callback["dead_letter_reason"] == "callback_rejected"
    assert callback["last_status_code"] == 400
    assert callback["next_attempt_at"] is None
    assert callback["delivered_at"] is None
    assert callback["tries"][-1]["status_code"] == 400


async def test_a_submitted_job_is_queued_from_its_submission(
    spawn_worker: SpawnWorker,
    job_env: dict[str, str],
    http: aiohttp.ClientSession,
) -> None:
    """A job submitted over HTTP is queued from its submission; a job without a callback has
    no callback story."""
    w = spawn_worker(job_env)
    agent_id = await create_agent(http, w, {"type": "echo"})
    task_id = str(uuid.uuid4())
    body = {
        "id": task_id,
        "type": "agent_execution",
        "payload": {"agent_id": agent_id, "input": "x"},
    }
    status, _, _ = await call(http, "POST", f"{w.url}/v1/tasks", json=body)
    assert status == 202

    async def done() -> dict[str, Any]:
        record = await _record(http, w, task_id)
        return record if record.get("status") == "completed" else {}

    record = await wait_for(done, what="the submitted job completed")
    assert [e["event"] for e in record["history"]] == ["queued", "running", "completed"]
    assert record["callback"] is None


def _attempt(number: int, at: datetime, outcome: str, **fields: Any) -> Attempt:
    return Attempt(task_id="t", number=number, at=at, outcome=outcome, **fields)  # type: ignore[arg-type]


def test_attempts_recorded_out_of_order_keep_time_order() -> None:
    """The inline attempt is written after the job's ack, maybe after the outbox's next one."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    second = _attempt(2, t0 + timedelta(seconds=1), "retry", status_code=503, delay=2.0)
    first = _attempt(1, t0, "retry", status_code=503, delay=0.5)
    d = with_attempt(with_attempt(None, second), first)
    assert [t.attempt for t in d.tries] == [1, 2]
    assert d.attempts == 2
    assert d.last_attempt_at == second.at
    assert d.next_attempt_at == second.at + timedelta(seconds=2)
    d = with_attempt(d, _attempt(3, t0 + timedelta(seconds=3), "delivered", status_code=200))
    assert (d.last_status_code, d.delivered_at, d.next_attempt_at) == (200, d.tries[-1].at, None)


def test_the_story_is_bounded() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    d = None
    for n in range(1, TRIES_LIMIT + 6):
        d = with_attempt(d, _attempt(n, t0 + timedelta(seconds=n), "retry", error="refused"))
    assert d is not None
    assert (d.attempts, len(d.tries), d.tries_dropped) == (TRIES_LIMIT + 5, TRIES_LIMIT, 5)
    assert d.tries[0].attempt == 6
    events, dropped = appended([], 0, *(event("handed_back") for _ in range(HISTORY_LIMIT)))
    events, dropped = appended(events, dropped, event("queued"), event("running"))
    assert (len(events), dropped) == (HISTORY_LIMIT, 2)
    assert [e.event for e in events[-2:]] == ["queued", "running"]
