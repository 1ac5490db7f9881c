"""The jobs door's side channels: cancel requests and consumer lag."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from worker.callbacks.outbox import CALLBACK_CONSUMER
from worker.config import Settings
from worker.jobs.history import event
from worker.jobs.models import TaskRecord, TaskStatus
from worker.jobs.results import StaleRecord, TaskStore
from worker.jobs.runner import JobRunner
from worker.jobs.topology import CANCEL_SUBJECT_PREFIX
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import CONSUMER_PENDING

log = get_logger(__name__)


class JobControl:
    """Listens for cancel requests; polls the pool's consumers' lag.

    A job past its last delivery needs no advisory here: the consumer delivers it once more
    and the runner dead-letters it without running it (see ``topology``).
    """

    def __init__(
        self,
        *,
        nc: Client,
        js: JetStreamContext,
        settings: Settings,
        runner: JobRunner,
        tasks: TaskStore,
    ) -> None:
        self._nc = nc
        self._js = js
        self._s = settings
        self._runner = runner
        self._tasks = tasks
        self._subs: list[Subscription] = []
        self._lag_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe and start polling."""
        # Every worker hears every cancel: whichever runs the job stops it.
        self._subs.append(
            await self._nc.subscribe(f"{CANCEL_SUBJECT_PREFIX}.*", cb=self._on_cancel)
        )
        # One worker of the pool records the cancel for a job nobody runs yet.
        self._subs.append(
            await self._nc.subscribe(
                f"{CANCEL_SUBJECT_PREFIX}.*",
                queue="agentos-cancel-record",
                cb=self._on_cancel_record,
            )
        )
        self._lag_task = asyncio.create_task(self._poll_lag(), name="consumer-lag")

    async def stop(self) -> None:
        """Unsubscribe and stop polling."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task

    async def request_cancel(self, task_id: str) -> None:
        """Ask the pool to cancel ``task_id`` wherever it is."""
        await self._nc.publish(f"{CANCEL_SUBJECT_PREFIX}.{task_id}", b"")
        await self._nc.flush()

    async def _on_cancel(self, msg: Msg) -> None:
        task_id = msg.subject.rsplit(".", 1)[-1]
        if self._runner.cancel_local(task_id):
            log.info("job cancelled", task_id=task_id)

    async def _on_cancel_record(self, msg: Msg) -> None:
        task_id = msg.subject.rsplit(".", 1)[-1]
        for _ in range(3):
            stored = await self._tasks.get(task_id)
            if stored is not None and (
                stored.record.status.final or stored.record.cancel_requested
            ):
                return
            record = stored.record if stored else TaskRecord(id=task_id, status=TaskStatus.QUEUED)
            record.cancel_requested = True
            record.note(event("cancel_requested", worker_id=self._s.worker_id))
            try:
                await self._tasks.put(record, revision=stored.revision if stored else None)
            except StaleRecord:
                continue
            return

    async def _poll_lag(self) -> None:
        pairs = (
            (self._s.tasks_stream, self._s.tasks_consumer),
            (self._s.callback_stream, CALLBACK_CONSUMER),
        )
        while True:
            for stream, consumer in pairs:
                with contextlib.suppress(Exception):
                    info = await self._js.consumer_info(stream, consumer)
                    CONSUMER_PENDING.labels(consumer, "pending").set(info.num_pending or 0)
                    CONSUMER_PENDING.labels(consumer, "ack_pending").set(info.num_ack_pending or 0)
                    CONSUMER_PENDING.labels(consumer, "redelivered").set(info.num_redelivered or 0)
            await asyncio.sleep(5.0)
