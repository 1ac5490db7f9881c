"""Claiming jobs in a real key-value bucket: once across the pool, never over a finished one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from nats.aio.client import Client

from worker.jobs.claim import Blocked, Claims, NotNow, why_not_now
from worker.jobs.models import TaskMessage, TaskRecord, TaskStatus, parse_task
from worker.jobs.results import TaskStore
from worker.outbound.ssrf import CallbackPolicy

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _claims(store: TaskStore, *, worker_id: str, fresh_for: float) -> Claims:
    return Claims(
        store, worker_id=worker_id, fresh_for=fresh_for, policy=CallbackPolicy(["127.0.0.1"])
    )


def _task(**fields: str) -> TaskMessage:
    return parse_task(
        orjson.dumps(
            {
                "id": str(uuid.uuid4()),
                "type": "agent_execution",
                "payload": {"agent_id": "a", "input": "x"},
                **fields,
            }
        )
    )


@pytest.fixture
async def store(nc: Client) -> AsyncIterator[TaskStore]:
    js = nc.jetstream()
    bucket = f"claims_{uuid.uuid4().hex[:8]}"
    yield TaskStore(await js.create_key_value(bucket=bucket))
    await js.delete_key_value(bucket)


def _running(worker_id: str, beat_age: float) -> TaskRecord:
    return TaskRecord(
        id="t",
        status=TaskStatus.RUNNING,
        worker_id=worker_id,
        heartbeat_at=NOW - timedelta(seconds=beat_age),
    )


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (TaskRecord(id="t", status=TaskStatus.COMPLETED), NotNow.FINISHED),
        (TaskRecord(id="t", status=TaskStatus.FAILED, cancel_requested=True), NotNow.FINISHED),
        (_running("other", beat_age=1), NotNow.RUNNING_ELSEWHERE),
        (_running("other", beat_age=10), None),  # its worker died
        (_running("me", beat_age=1), None),  # this worker's own, redelivered
        (
            TaskRecord(id="t", status=TaskStatus.QUEUED, cancel_requested=True),
            NotNow.CANCEL_REQUESTED,
        ),
        (TaskRecord(id="t", status=TaskStatus.QUEUED), None),
        (TaskRecord(id="t", status=TaskStatus.DEAD), None),  # a replayed dead job runs
    ],
)
def test_why_not_now(record: TaskRecord, why: NotNow | None) -> None:
    assert why_not_now(record, worker_id="me", fresh_for=5, now=NOW) is why


async def test_a_job_is_claimed_once_and_taken_over_from_a_dead_worker(store: TaskStore) -> None:
    task = _task()
    first = await _claims(store, worker_id="a", fresh_for=60).claim(task)
    assert isinstance(first, TaskRecord)
    assert (first.status, first.worker_id, first.attempts) == (TaskStatus.RUNNING, "a", 1)

    second = await _claims(store, worker_id="b", fresh_for=60).claim(task)
    assert isinstance(second, Blocked)
    assert second.why is NotNow.RUNNING_ELSEWHERE

    # Once a's heartbeat counts as stale, b takes the job over as its second attempt.
    taken = await _claims(store, worker_id="b", fresh_for=0).claim(task)
    assert isinstance(taken, TaskRecord)
    assert (taken.worker_id, taken.attempts) == ("b", 2)
    stored = await store.get(task.id)
    assert stored is not None
    assert stored.record.worker_id == "b"


async def test_the_running_record_says_why_frames_will_not_be_pushed(store: TaskStore) -> None:
    allowed = await _claims(store, worker_id="a", fresh_for=60).claim(
        _task(stream_url="ws://127.0.0.1:9/frames")
    )
    refused = await _claims(store, worker_id="a", fresh_for=60).claim(
        _task(stream_url="ws://10.0.0.1:9/frames")
    )
    assert isinstance(allowed, TaskRecord)
    assert isinstance(refused, TaskRecord)
    assert allowed.stream_refused is None
    assert refused.stream_refused


async def test_a_finished_or_cancelled_job_is_not_claimed(store: TaskStore) -> None:
    claims = _claims(store, worker_id="a", fresh_for=60)
    done, cancelled = _task(), _task()
    await store.put(TaskRecord(id=done.id, status=TaskStatus.COMPLETED, result="r"), revision=None)
    await store.put(
        TaskRecord(id=cancelled.id, status=TaskStatus.QUEUED, cancel_requested=True),
        revision=None,
    )
    blocked = await claims.claim(done)
    assert isinstance(blocked, Blocked)
    assert blocked.why is NotNow.FINISHED
    assert blocked.stored is not None
    assert blocked.stored.record.result == "r"
    blocked = await claims.claim(cancelled)
    assert isinstance(blocked, Blocked)
    assert blocked.why is NotNow.CANCEL_REQUESTED


async def test_two_workers_claiming_at_once_one_wins(store: TaskStore) -> None:
    task = _task()
    # A record left by a worker that died: both see it stale and race for it.
    await store.put(
        TaskRecord(id=task.id, status=TaskStatus.RUNNING, worker_id="dead", attempts=1),
        revision=None,
    )
    results = await asyncio.gather(
        _claims(store, worker_id="a", fresh_for=60).claim(task),
        _claims(store, worker_id="b", fresh_for=60).claim(task),
    )
    won = [r for r in results if isinstance(r, TaskRecord)]
    lost = [r for r in results if isinstance(r, Blocked)]
    assert len(won) == 1
    assert len(lost) == 1
    assert lost[0].why in {NotNow.CLAIMED_ELSEWHERE, NotNow.RUNNING_ELSEWHERE}
    stored = await store.get(task.id)
    assert stored is not None
    assert (stored.record.worker_id, stored.record.attempts) == (won[0].worker_id, 2)
