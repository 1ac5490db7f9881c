"""Callback attempts written into their task's record, so ``GET /v1/tasks/{id}`` tells how the
callback went (attempts, last answer, next try, delivered or dead-lettered).

The outbox reports each attempt it makes from its stream here (``attempted``); the jobs door
writes the inline first attempt itself, with the record it holds. Each is one compare-and-set
write: a lost race reads the record again and adds the attempt to what is there now.
"""

from __future__ import annotations

from worker.callbacks.attempts import Attempt
from worker.jobs.history import with_attempt
from worker.jobs.results import StaleRecord, Stored, TaskStore
from worker.telemetry.logs import get_logger

log = get_logger(__name__)

_TRIES = 5
"""Compare-and-set writes before an attempt goes unrecorded (writers of one record are few)."""


class CallbackTrail:
    """Adds callback attempts to task records; the outbox's ``AttemptLog``."""

    def __init__(self, tasks: TaskStore) -> None:
        self._tasks = tasks

    async def attempted(self, attempt: Attempt) -> None:
        """Add ``attempt`` to its task's record."""
        await self.write(attempt)

    async def write(self, attempt: Attempt, *, known: Stored | None = None) -> None:
        """Add ``attempt`` to its task's record; ``known`` is the record as last written, when
        the caller holds it (saves a read). Best effort: a failure is logged, never raised."""
        stored = known
        try:
            for _ in range(_TRIES):
                if stored is None:
                    stored = await self._tasks.get(attempt.task_id)
                    if stored is None:  # expired, or never kept (a message that was no job)
                        return
                record = stored.record
                record.callback_delivery = with_attempt(record.callback_delivery, attempt)
                try:
                    await self._tasks.put(record, revision=stored.revision)
                except StaleRecord:
                    stored = None
                    continue
                return
            log.warning("callback attempt not recorded", task_id=attempt.task_id, why="contended")
        except Exception as exc:
            log.warning("callback attempt not recorded", task_id=attempt.task_id, error=repr(exc))
