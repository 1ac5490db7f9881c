"""Heartbeats of running jobs: their messages are not redelivered, their records look alive.

Every ``every`` seconds a running job's message is told "in progress" (JetStream then waits a
full ack wait again before redelivering it) and its record's ``heartbeat_at`` is refreshed (a
worker that finds the job elsewhere leaves it alone while that is fresh).

One loop for every running job rather than a task per job: most jobs end long before their
first heartbeat is due, and a task each would be created and cancelled for nothing on every job.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from nats.aio.msg import Msg

from worker.jobs.models import TaskRecord, TaskStatus
from worker.jobs.results import TaskStore


class Heartbeats:
    """Beats for the jobs ``track``-ed until they are ``untrack``-ed."""

    def __init__(self, tasks: TaskStore, *, every: float) -> None:
        self._tasks = tasks
        self._every = every
        self._due: dict[str, tuple[Msg, TaskRecord, float]] = {}
        """Tracked jobs: their message, their record and when their next beat is due."""
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start beating."""
        self._loop = asyncio.create_task(self._beat_loop(), name="job-heartbeats")

    async def stop(self) -> None:
        """Stop beating."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    def track(self, task_id: str, msg: Msg, record: TaskRecord) -> None:
        """Beat for ``task_id`` (its message ``msg``, its running ``record``) from now on."""
        self._due[task_id] = (msg, record, asyncio.get_running_loop().time() + self._every)

    def untrack(self, task_id: str) -> None:
        """No more beats for ``task_id`` (it ended)."""
        self._due.pop(task_id, None)

    async def _beat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._every / 4)
            now = loop.time()
            due = [(tid, msg, rec) for tid, (msg, rec, at) in self._due.items() if at <= now]
            for task_id, msg, record in due:
                self._due[task_id] = (msg, record, now + self._every)
            if due:
                await asyncio.gather(*(self._beat(t, m, r) for t, m, r in due))

    async def _beat(self, task_id: str, msg: Msg, record: TaskRecord) -> None:
        # Best effort: a beat missed now is made up by the next, well within the ack wait.
        with contextlib.suppress(Exception):
            await msg.in_progress()
            # The job may have ended while the message was told: its final record stands.
            if task_id in self._due and record.status == TaskStatus.RUNNING:
                record.heartbeat_at = datetime.now(UTC)
                await self._tasks.overwrite(record)
