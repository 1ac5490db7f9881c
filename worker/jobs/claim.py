"""Claiming a job: one compare-and-set write of its record, so it runs once across the pool.

The usual job has no record yet, and claiming it is creating its record: one round trip. A job
with a record (a redelivery, a re-publish, a job submitted over HTTP) is claimed only when
nothing says it must not run now (``why_not_now``), by writing at the revision it was read at;
a worker that loses that race leaves the job to the winner.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.jobs.models import TaskMessage, TaskRecord, TaskStatus
from worker.jobs.results import StaleRecord, Stored, TaskStore
from worker.outbound.ssrf import CallbackPolicy
from worker.telemetry.tracing import current_traceparent


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

    def running_record(
        self, task: TaskMessage, stored: Stored | None, *, attempt: int
    ) -> TaskRecord:
        """The record of ``task`` running on this worker now, keeping what ``stored`` knew."""
        now = datetime.now(UTC)
        # Built without validation: the task was validated, the rest is the worker's own.
        return TaskRecord.model_construct(
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

    def why_not_now(self, stored: Stored | None) -> NotNow | None:
        """Why the job stored as ``stored`` must not run here now (None if it may)."""
        if stored is None:
            return None
        return why_not_now(stored.record, worker_id=self._worker_id, fresh_for=self._fresh_for)

    async def claim(self, task: TaskMessage) -> TaskRecord | Blocked:
        """Write ``task``'s running record for this worker; or why it must not run now."""
        record = self.running_record(task, None, attempt=1)
        try:
            await self._tasks.put(record, revision=None)
        except StaleRecord:
            pass
        else:
            return record
        stored = await self._tasks.get(task.id)
        why = self.why_not_now(stored)
        if why is not None:
            return Blocked(why, stored)
        attempt = (stored.record.attempts if stored else 0) + 1
        record = self.running_record(task, stored, attempt=attempt)
        try:
            await self._tasks.put(record, revision=stored.revision if stored else None)
        except StaleRecord:
            return Blocked(NotNow.CLAIMED_ELSEWHERE, stored)
        return record
