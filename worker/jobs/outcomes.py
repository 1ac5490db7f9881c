"""How a job's message ends, each way in one place.

- ``finish``: the job has an outcome (completed, failed, cancelled, dead): store it, send its
  final frame and callback, and only then ack, so a worker dying at any step leaves the job to
  be finished again from its stored record;
- ``redeliver``: the job already finished: its stored result goes out again, nothing runs;
- ``hand_back``: not the job's fault (a provider is down): back to the pool with a delay;
- ``dead``: a job past its last delivery: dead-lettered, and finished as ``dead``;
- ``reject``: a message that can never run: dead-lettered, with a ``failed`` callback if it can.

Each way adds its event to the job's story (``history``) in the record write it makes anyway;
the first callback attempt is written into the record after the ack, off the job's path.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any, Protocol

from nats.aio.msg import Msg

from worker.broker.dead_letters import DeadLetterWriter
from worker.callbacks.attempts import Attempt
from worker.callbacks.outbox import CallbackOutbox
from worker.config import Settings
from worker.errors import WorkerError
from worker.jobs.callback_trail import CallbackTrail
from worker.jobs.history import event
from worker.jobs.models import CallbackBody, MessageRejected, TaskError, TaskRecord, TaskStatus
from worker.jobs.results import Stored, TaskStore
from worker.outbound.ssrf import CallbackPolicy, CallbackRefused
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import JOB_PUBLISH_TO_DONE, NATS_MESSAGES, labelled
from worker.telemetry.tracing import current_traceparent

log = get_logger(__name__)


class Finals(Protocol):
    """Where a job's final frame goes when no run emitted one (the streaming door)."""

    async def ensure_final(
        self,
        task_id: str,
        *,
        status: str,
        result: Any = None,
        error: dict[str, str] | None = None,
    ) -> None: ...


class Outcomes:
    """Ends jobs' messages; ``finishing`` holds the handlers past storing their outcome."""

    def __init__(
        self,
        *,
        settings: Settings,
        tasks: TaskStore,
        outbox: CallbackOutbox,
        dead_letters: DeadLetterWriter,
        policy: CallbackPolicy,
        finals: Finals | None = None,
    ) -> None:
        self._s = settings
        self._subject = settings.tasks_subject
        self._tasks = tasks
        self._outbox = outbox
        self._dead = dead_letters
        self._policy = policy
        self._finals = finals
        self._trail = CallbackTrail(tasks)
        self.finishing: set[asyncio.Task[Any]] = set()
        """Handlers whose job's outcome is being stored and sent: a draining worker lets them
        end rather than hand their job back to be delivered twice."""

    async def finish(
        self,
        msg: Msg,
        record: TaskRecord,
        status: TaskStatus,
        *,
        result: Any = None,
        error: TaskError | None = None,
        ran: bool = False,
    ) -> None:
        """Store the outcome, send its final frame (unless a run of the agent ``ran`` and sent
        it) and its callback, then ack: in that order."""
        current = asyncio.current_task()
        if current is not None:
            self.finishing.add(current)
            current.add_done_callback(self.finishing.discard)
        record.status = status
        record.result = result
        record.error = error
        record.finished_at = datetime.now(UTC)
        record.note(
            event(
                status.value,
                attempt=record.attempts,
                worker_id=self._s.worker_id,
                reason=error.code if error else None,
            )
        )
        revision = await self._tasks.overwrite(record)
        if not ran:
            await self._final_frame(record)
        attempt = await self._deliver(record)
        await msg.ack()
        labelled(NATS_MESSAGES, self._subject, status.value).inc()
        published = msg.metadata.timestamp
        if published is not None:
            JOB_PUBLISH_TO_DONE.observe(max(0.0, (datetime.now(UTC) - published).total_seconds()))
        if attempt is not None:
            await self._trail.write(attempt, known=Stored(record, revision))

    async def redeliver(self, msg: Msg, stored: Stored) -> None:
        """The job ``stored`` finished already: send its stored result again, then ack."""
        labelled(NATS_MESSAGES, self._subject, "duplicate").inc()
        attempt = await self._deliver(stored.record)
        await msg.ack()
        if attempt is not None:
            await self._trail.write(attempt, known=stored)

    async def hand_back(self, msg: Msg, record: TaskRecord, exc: WorkerError) -> None:
        """Give the job back with a delay (``exc.retry_after``, else the configured one) if it
        has deliveries left; otherwise it is dead."""
        attempt = msg.metadata.num_delivered or 1
        if attempt >= self._s.job_max_deliver:
            error = TaskError(code=exc.code, message=exc.message)
            await self.dead(msg, record, detail=exc.message, attempts=attempt, error=error)
            return
        delay = exc.retry_after if exc.retry_after is not None else self._s.job_retry_delay
        record.status = TaskStatus.QUEUED
        record.note(
            event(
                "handed_back",
                attempt=record.attempts,
                worker_id=self._s.worker_id,
                reason=exc.code,
                detail=f"{exc.message} (again in {delay:g}s)",
            )
        )
        with contextlib.suppress(Exception):
            await self._tasks.overwrite(record)
        labelled(NATS_MESSAGES, self._subject, "handed_back").inc()
        log.info(
            "job handed back", task_id=record.id, attempt=attempt, delay=delay, why=exc.message
        )
        await msg.nak(delay=delay)

    async def dead(
        self, msg: Msg, record: TaskRecord, *, detail: str, attempts: int, error: TaskError
    ) -> None:
        """Out of deliveries: dead-letter the message, then finish the job as ``dead``."""
        await self._dead.bury(
            msg, reason="max_deliveries", detail=detail, attempts=attempts, task_id=record.id
        )
        await self.finish(msg, record, TaskStatus.DEAD, error=error)

    async def reject(
        self, msg: Msg, rej: MessageRejected, attempt: int, *, notify: bool = True
    ) -> None:
        """A message that can never run: dead letter, a `failed` callback where possible."""
        await self._dead.bury(
            msg, reason=rej.reason, detail=rej.detail, attempts=attempt, task_id=rej.task_id
        )
        revision, record, sent = None, None, None
        if rej.task_id:
            record = TaskRecord(
                id=rej.task_id,
                status=TaskStatus.DEAD,
                callback=rej.callback or None,
                attempts=attempt,
                worker_id=self._s.worker_id,
                finished_at=datetime.now(UTC),
                error=TaskError(code=rej.reason, message=rej.detail),
                traceparent=current_traceparent(),
            )
            record.note(
                event("queued", at=msg.metadata.timestamp or record.created_at),
                event("dead", worker_id=self._s.worker_id, reason=rej.reason, detail=rej.detail),
            )
            with contextlib.suppress(Exception):
                revision = await self._tasks.overwrite(record)
            await self._final_frame(record)
            if notify and rej.callback and self._allowed(rej.callback):
                sent = await self._deliver(record)
        await msg.ack()
        if sent is not None and record is not None:
            await self._trail.write(sent, known=Stored(record, revision) if revision else None)

    def _allowed(self, url: str) -> bool:
        try:
            self._policy.check_url(url)
        except CallbackRefused:
            return False
        return True

    async def _final_frame(self, record: TaskRecord) -> None:
        """A job that ended without a run ending it: watchers still get a final frame."""
        if self._finals is None:
            return
        status = "cancelled" if record.status == TaskStatus.CANCELLED else "failed"
        error = record.error.model_dump() if record.error else None
        with contextlib.suppress(Exception):
            await self._finals.ensure_final(record.id, status=status, error=error)

    async def _deliver(self, record: TaskRecord) -> Attempt | None:
        """Send ``record``'s callback (if it has one); how the first attempt went."""
        if not record.callback:
            return None
        return await self._outbox.send(
            task_id=record.id,
            url=record.callback,
            body=CallbackBody.of(record).to_json(),
            traceparent=record.traceparent,
        )
