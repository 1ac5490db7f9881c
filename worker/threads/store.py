"""Threads of CONTRACT section 6: create, read, history, delete, and the lease a run holds.

``ThreadStore`` is the one object the doors use::

    threads = await ThreadStore.open(nc=broker.client, js=broker.jetstream, settings=settings)
    graph = builder.compile(checkpointer=threads.checkpointer)

    record = await threads.create(metadata={"user": "ada"})      # POST /v1/threads
    async with threads.lease(record.thread_id, run_id) as lease:   # HTTP: 409 thread_busy
        await graph.ainvoke(inputs, threads.config(record.thread_id))
    async with threads.lease(thread_id, run_id, wait=300):         # a job waits its turn
        ...
    state = await threads.get(thread_id)          # GET: status idle | busy | interrupted
    history = await threads.history(thread_id)    # GET .../history: newest first
    await threads.delete(thread_id)               # DELETE: 404 unknown, 409 while a run holds it

A run that names a thread nobody created creates it (``lease(create=True)``, the default);
``lease(create=False)`` answers 404 instead (a resume must continue a thread that exists).
Every run refreshes the thread record when it ends, so a thread in use never ages out of the
bucket (``WORKER_THREAD_RETENTION`` counts from the last run).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from worker.config import Settings
from worker.errors import Conflict, NotFound
from worker.telemetry.logs import get_logger
from worker.threads import keys
from worker.threads.bucket import Stale, ThreadsBucket
from worker.threads.checkpointer import KVCheckpointer
from worker.threads.lease import Holder, Lease, Leases
from worker.threads.state import (
    ThreadCheckpoint,
    ThreadRecord,
    ThreadState,
    ThreadStatus,
    pending_interrupts,
)

log = get_logger(__name__)


class ThreadStore:
    """The pool's conversation threads, in one JetStream key-value bucket."""

    def __init__(self, bucket: ThreadsBucket, *, worker_id: str, lease_ttl: float) -> None:
        self._bucket = bucket
        self._worker_id = worker_id
        self.checkpointer = KVCheckpointer(bucket)
        """The LangGraph checkpointer of every graph the worker runs on a thread."""
        self.leases = Leases(bucket, ttl=lease_ttl)

    @classmethod
    async def open(cls, *, nc: Client, js: JetStreamContext, settings: Settings) -> ThreadStore:
        """Open (or create) the threads bucket (``WORKER_THREADS_BUCKET``) with the retention
        and replicas of ``settings``."""
        bucket = await ThreadsBucket.open(
            nc=nc,
            js=js,
            name=settings.threads_bucket,
            retention=settings.thread_retention,
            replicas=settings.kv_replicas,
        )
        return cls(bucket, worker_id=settings.worker_id, lease_ttl=settings.thread_lease_ttl)

    @staticmethod
    def config(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
        """The ``config`` that runs a graph on ``thread_id`` (from ``checkpoint_id`` if given)."""
        configurable = {"thread_id": keys.check_thread_id(thread_id)}
        if checkpoint_id is not None:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    # --- records --------------------------------------------------------------------------

    async def create(
        self, thread_id: str | None = None, *, metadata: Mapping[str, Any] | None = None
    ) -> ThreadRecord:
        """A new thread (``thread_id`` chosen here when None); 409 ``thread_exists`` if taken."""
        thread_id = keys.check_thread_id(thread_id) if thread_id is not None else new_thread_id()
        now = datetime.now(UTC)
        record = ThreadRecord(thread_id, now, now, dict(metadata or {}))
        try:
            await self._bucket.create(keys.meta(thread_id), record.dump())
        except Stale:
            raise Conflict(f"thread {thread_id!r} exists", code="thread_exists") from None
        return record

    async def _record(self, thread_id: str) -> ThreadRecord | None:
        entry = await self._bucket.get(keys.meta(thread_id))
        return ThreadRecord.load(entry.value) if entry is not None else None

    async def _ensure(self, thread_id: str, metadata: Mapping[str, Any] | None) -> ThreadRecord:
        """The thread's record, created now (with ``metadata``) if the thread is new."""
        for _ in range(3):
            record = await self._record(thread_id)
            if record is not None:
                return record
            with contextlib.suppress(Conflict):  # created elsewhere meanwhile: read that one
                return await self.create(thread_id, metadata=metadata)
        raise RuntimeError(f"thread {thread_id!r} keeps appearing and vanishing")

    # --- reading --------------------------------------------------------------------------

    async def get(self, thread_id: str) -> ThreadState:
        """The thread now: status, latest values, pending interrupts; 404 if unknown."""
        keys.check_thread_id(thread_id)
        record, lease, latest = await asyncio.gather(
            self._record(thread_id),
            self.leases.current(thread_id),
            self.checkpointer.aget_tuple(self.config(thread_id)),
        )
        if record is None and latest is None:
            raise _not_found(thread_id)
        checkpoint = ThreadCheckpoint.of(latest) if latest is not None else None
        interrupts = pending_interrupts(latest) if latest is not None else []
        status: ThreadStatus = "busy" if lease else "interrupted" if interrupts else "idle"
        times = [record.updated_at] if record else []
        times += [checkpoint.created_at] if checkpoint else []
        return ThreadState(
            thread_id=thread_id,
            status=status,
            values=checkpoint.values if checkpoint else {},
            created_at=record.created_at if record else min(times),
            updated_at=max(times),
            metadata=record.metadata if record else {},
            checkpoint_id=checkpoint.checkpoint_id if checkpoint else None,
            interrupts=interrupts,
        )

    async def interrupts(self, thread_id: str) -> list[dict[str, Any]]:
        """What the thread's latest checkpoint asks and no run has answered yet
        (``[{"id", "value"}]``); empty when the thread is not interrupted."""
        latest = await self.checkpointer.aget_tuple(self.config(thread_id))
        return pending_interrupts(latest) if latest is not None else []

    async def history(
        self, thread_id: str, *, limit: int | None = None, before: str | None = None
    ) -> list[ThreadCheckpoint]:
        """The thread's checkpoints, newest first (``limit`` of them, older than ``before``);
        404 if the thread is unknown."""
        config = self.config(thread_id)
        found = [
            ThreadCheckpoint.of(item)
            async for item in self.checkpointer.alist(
                config,
                before=self.config(thread_id, before) if before else None,
                limit=limit,
            )
        ]
        if not found and await self._record(thread_id) is None:
            raise _not_found(thread_id)
        return found

    # --- writing --------------------------------------------------------------------------

    async def note_turn(
        self, thread_id: str, run: Mapping[str, Any], values: Mapping[str, Any]
    ) -> bool:
        """Merge ``values`` into the metadata of the thread's newest checkpoint if the run
        ``run`` names (metadata items, e.g. ``{"run_id": ...}``) wrote it: what a turn spent,
        shown per checkpoint by ``history``. False when that run wrote none."""
        return await self.checkpointer.amerge_metadata(self.config(thread_id), values, where=run)

    async def delete(self, thread_id: str) -> None:
        """Remove the thread and all its checkpoints; 404 if unknown, 409 ``thread_busy``
        while a run holds it."""
        keys.check_thread_id(thread_id)
        record, head = await asyncio.gather(
            self._record(thread_id), self._bucket.get(keys.head(thread_id, ""))
        )
        if record is None and head is None:
            raise _not_found(thread_id)
        holder = Holder(self._worker_id, f"delete-{uuid.uuid4().hex}")
        async with self.leases.hold(thread_id, holder):
            await self.checkpointer.adelete_thread(thread_id)
            await self._bucket.purge(keys.meta(thread_id))

    @contextlib.asynccontextmanager
    async def lease(
        self,
        thread_id: str,
        run_id: str,
        *,
        wait: float | None = None,
        create: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Lease]:
        """Hold ``thread_id`` for one run: ``ThreadBusy`` (409) when another run holds it, at
        once (``wait=None``) or after waiting ``wait`` seconds for it. Creates the thread when
        new (``create``), else 404; refreshes its record when the run ends, with ``metadata``
        merged into the record's (the worker keeps there which agent ran the thread last)."""
        keys.check_thread_id(thread_id)
        record = (
            await self._ensure(thread_id, metadata) if create else await self._record(thread_id)
        )
        if record is None:
            raise _not_found(thread_id)
        async with self.leases.hold(thread_id, Holder(self._worker_id, run_id), wait=wait) as held:
            try:
                yield held
            finally:
                await self._touch(record, metadata)

    async def _touch(self, record: ThreadRecord, metadata: Mapping[str, Any] | None) -> None:
        """Rewrite the record with ``updated_at`` now (the bucket's max age restarts) and
        ``metadata`` merged in."""
        merged = {**record.metadata, **metadata} if metadata else record.metadata
        try:
            await self._bucket.put(
                keys.meta(record.thread_id),
                replace(record, updated_at=datetime.now(UTC), metadata=merged).dump(),
            )
        except (NatsError, TimeoutError) as exc:
            log.warning("thread record not refreshed", thread_id=record.thread_id, error=str(exc))


def new_thread_id() -> str:
    """A fresh thread id."""
    return str(uuid.uuid4())


def _not_found(thread_id: str) -> NotFound:
    return NotFound(f"thread {thread_id!r} not found", code="thread_not_found")
