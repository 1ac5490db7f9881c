"""Job states and results in a JetStream key-value bucket: claim once, store first.

Every write names the revision it read (compare-and-set), so two workers cannot both claim a
job, and a late writer never overwrites a newer state.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from worker.jobs.models import TaskRecord


class StaleRecord(Exception):
    """Someone else wrote the record since it was read."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A record and the revision it was read at."""

    record: TaskRecord
    revision: int


class TaskStore:
    """Read and write job records."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def get(self, task_id: str) -> Stored | None:
        """The record of ``task_id``, or None."""
        try:
            entry = await self._kv.get(task_id)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if not entry.value:
            return None
        return Stored(TaskRecord.model_validate(orjson.loads(entry.value)), entry.revision or 0)

    async def put(self, record: TaskRecord, *, revision: int | None) -> int:
        """Write ``record``; ``revision`` None creates it (fails if it exists), else updates the
        revision read. Raises ``StaleRecord`` when another write came first."""
        data = record.model_dump_json().encode()
        try:
            if revision is None:
                return await self._kv.create(record.id, data)
            return await self._kv.update(record.id, data, last=revision)
        except KeyWrongLastSequenceError:
            raise StaleRecord(record.id) from None

    async def overwrite(self, record: TaskRecord) -> int:
        """Write ``record`` whatever is there (the final result of a claimed run)."""
        return await self._kv.put(record.id, record.model_dump_json().encode())
