"""Claiming a job: one compare-and-set write of its record, so it runs once across the pool.

The usual job has no record yet, and claiming it is creating its record: one round trip. A job
with a record (a redelivery, a re-publish, a job submitted over HTTP) is claimed only when
nothing says it must not run now (``why_not_now``), by writing at the revision it was read at;
a worker that loses that race leaves the job to the winner.

The claim's write also tells the job's story (``history``): queued (at its message's publish
time) when the record is new, redelivered and why when its message came back, and running on
this worker.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.jobs.history import event
from worker.jobs.models import TaskMessage, TaskRecord, TaskStatus
from worker.jobs.results import StaleRecord, Stored, TaskStore
from worker.outbound.ssrf import CallbackPolicy
from worker.telemetry.metrics import JOB_REDELIVERIES, labelled
from worker.telemetry.tracing import current_traceparent

REDELIVERY_REASONS = ("worker_lost", "handed_back", "not_acked")
"""Why a job's message came back (``_why_redelivered``)."""


class NotNow(enum.Enum):
    """Why a job must not run now."""

    FINISHED = "finished"
    """Its result is stored: deliver it again, never run the agent again."""
    RUNNING_ELSEWHERE = "running_elsewhere"
    """Another worker runs it and its heartbeat is fresh."""
    CANCEL_REQUESTED = "cancel_requested"
    """A cancel came before it ran."""
    CLAIMED_ELSEWHERE = "claimed_elsewhere"
    """Another worker claimed it a moment ago (this worker lost the compare-and-set)."""


def why_not_now(
    record: TaskRecord, *, worker_id: str, fresh_for: float, now: datetime | None = None
) -> NotNow | None:
    """Why the job of ``record`` must not run on ``worker_id`` now; None when it may.

    A running record counts as running elsewhere while its heartbeat is under ``fresh_for``
    seconds old; an older one was left by a worker that died.
    """
    if record.status.settled:
        return NotNow.FINISHED
    if record.status == TaskStatus.RUNNING and record.worker_id != worker_id:
        beat = record.heartbeat_at or record.started_at
        now = now or datetime.now(UTC)
        if beat is not None and (now - beat).total_seconds() < fresh_for:
            return NotNow.RUNNING_ELSEWHERE
    if record.cancel_requested:
        return NotNow.CANCEL_REQUESTED
    return None


@dataclass(frozen=True, slots=True)
class Blocked:
    """A claim not made: why, and the record that said so (None if it vanished)."""

    why: NotNow
    stored: Stored | None


class Claims:
    """Claims jobs for one worker in the results bucket.

    ``policy`` is the outbound policy: a running record says why frames will not be pushed to
    its job's ``stream_url`` when the policy refuses it.
    """

    def __init__(
        self, tasks: TaskStore, *, worker_id: str, fresh_for: float, policy: CallbackPolicy
    ) -> None:
        self._tasks = tasks
        self._worker_id = worker_id
        self._fresh_for = fresh_for
        self._policy = policy
        # Every reason's series exists from the start, so increase() sees the first one.
        for reason in REDELIVERY_REASONS:
            labelled(JOB_REDELIVERIES, reason)

    def running_record(
        self,
        task: TaskMessage,
        stored: Stored | None,
        *,
        attempt: int,
        published_at: datetime | None = None,
    ) -> TaskRecord:
        """The record of ``task`` running on this worker now, keeping what ``stored`` knew
        (its story too; a new record's story begins with ``queued`` at ``published_at``)."""
        now = datetime.now(UTC)
        # Built without validation: the task was validated, the rest is the worker's own.
        record = TaskRecord.model_construct(
            id=task.id,
            status=TaskStatus.RUNNING,
            agent_id=task.agent_id,
            callback=task.callback,
            stream_url=task.stream_url,
            stream_refused=self._policy.push_refusal(task.stream_url),
            attempts=attempt,
            worker_id=self._worker_id,
            created_at=stored.record.created_at if stored else now,
            started_at=now,
            heartbeat_at=now,
            cancel_requested=stored.record.cancel_requested if stored else False,
            traceparent=current_traceparent(),
            thread_id=task.thread_id,
        )
        if stored is not None:
            record.history = list(stored.record.history)
            record.history_dropped = stored.record.history_dropped
        if not record.history_dropped and all(e.event != "queued" for e in record.history):
            # In time order: a cancel may have been recorded before the job was published.
            queued = event("queued", at=published_at or record.created_at)
            bisect.insort(record.history, queued, key=lambda e: e.at)
        return record

    def why_not_now(self, stored: Stored | None) -> NotNow | None:
        """Why the job stored as ``stored`` must not run here now (None if it may)."""
        if stored is None:
            return None
        return why_not_now(stored.record, worker_id=self._worker_id, fresh_for=self._fresh_for)

    async def claim(
        self, task: TaskMessage, *, delivery: int = 1, published_at: datetime | None = None
    ) -> TaskRecord | Blocked:
        """Write ``task``'s running record for this worker; or why it must not run now.

        ``delivery`` is how many times JetStream has delivered its message, ``published_at``
        when the message was published (both for the story)."""
        record = self._started(task, None, 1, delivery, published_at)
        try:
            await self._tasks.put(record, revision=None)
        except StaleRecord:
            pass
        else:
            return _counted(record)
        stored = await self._tasks.get(task.id)
        why = self.why_not_now(stored)
        if why is not None:
            return Blocked(why, stored)
        attempt = (stored.record.attempts if stored else 0) + 1
        record = self._started(task, stored, attempt, delivery, published_at)
        try:
            await self._tasks.put(record, revision=stored.revision if stored else None)
        except StaleRecord:
            return Blocked(NotNow.CLAIMED_ELSEWHERE, stored)
        return _counted(record)

    def _started(
        self,
        task: TaskMessage,
        stored: Stored | None,
        attempt: int,
        delivery: int,
        published_at: datetime | None,
    ) -> TaskRecord:
        """The running record of ``attempt``, its story told up to now."""
        record = self.running_record(task, stored, attempt=attempt, published_at=published_at)
        if delivery > 1:
            reason, detail = _why_redelivered(stored)
            record.note(
                event(
                    "redelivered",
                    worker_id=self._worker_id,
                    delivery=delivery,
                    reason=reason,
                    detail=detail,
                )
            )
        record.note(event("running", attempt=attempt, worker_id=self._worker_id))
        return record


def _counted(record: TaskRecord) -> TaskRecord:
    """``record``, its run counted as a redelivery (by why) when its message came back."""
    came_back = record.history[-2] if len(record.history) > 1 else None
    if came_back is not None and came_back.event == "redelivered":
        labelled(JOB_REDELIVERIES, came_back.reason or "not_acked").inc()
    return record


def _why_redelivered(stored: Stored | None) -> tuple[str, str]:
    """Why a job's message came back, from the record its last delivery left."""
    if stored is not None and stored.record.status == TaskStatus.RUNNING:
        return "worker_lost", f"worker {stored.record.worker_id} stopped answering"
    if stored is not None and stored.record.history:
        last = stored.record.history[-1]
        if last.event == "handed_back":
            return "handed_back", last.detail or "handed back to the pool"
    return "not_acked", "its message was not acknowledged in time"
