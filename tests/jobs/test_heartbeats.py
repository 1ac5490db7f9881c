"""Heartbeats against a real nats-server: a tracked job's message is not redelivered and its
record's heartbeat moves on; once untracked, JetStream redelivers it after its ack wait."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client

from tests.broker.conftest import MakeQueue
from worker.jobs.heartbeats import Heartbeats
from worker.jobs.models import TaskRecord, TaskStatus
from worker.jobs.results import TaskStore
from worker.testing import wait_for


async def test_a_tracked_job_is_kept_and_an_untracked_one_redelivered(
    nc: Client, make_queue: MakeQueue
) -> None:
    js = nc.jetstream()
    queue = await make_queue(ack_wait=1.0)
    bucket = f"beats_{uuid.uuid4().hex[:8]}"
    store = TaskStore(await js.create_key_value(bucket=bucket))
    beats = Heartbeats(store, every=0.3)
    beats.start()
    try:
        await js.publish(queue.subject, b"job")
        sub = await js.pull_subscribe_bind(durable=queue.durable, stream=queue.stream)
        (msg,) = await sub.fetch(1, timeout=5)
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        record = TaskRecord(id="t", status=TaskStatus.RUNNING, heartbeat_at=long_ago)
        await store.overwrite(record)
        beats.track("t", msg, record)

        async def record_beats() -> bool:
            stored = await store.get("t")
            return stored is not None and stored.record.heartbeat_at != long_ago

        await wait_for(record_beats, what="the record's heartbeat to move on")
        # Two ack waits with no redelivery: the beats told JetStream the job is in progress.
        with pytest.raises(TimeoutError):
            await sub.fetch(1, timeout=2.0)

        beats.untrack("t")
        (again,) = await sub.fetch(1, timeout=5)
        assert again.data == b"job"
        assert again.metadata.num_delivered == 2
        await again.ack()
    finally:
        await beats.stop()
        await js.delete_key_value(bucket)
