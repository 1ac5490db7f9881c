"""The thread lease: across the whole pool, one run at a time writes a thread.

A lease is the thread's ``lease`` key, taken by compare-and-set (create when absent, update at
the revision read when its holder's time is up) and holding who took it (worker id, run id) and
until when. While the run goes, a task renews it every third of its TTL; at the end it is
deleted at the revision this run wrote, so a lease someone else took over is never released by
the late first holder. A holder that dies (``kill -9``, a lost node) stops renewing: its lease
is stale once its expiry passes and the next run takes it over, so a dead worker blocks its
threads for one TTL at most. Expiry times are wall-clock seconds, compared across workers: the
TTL (default 30 s) must dwarf the clock skew between them, which NTP keeps to milliseconds.

Two ways to wait, for the two doors: ``wait=None`` fails at once with ``ThreadBusy`` (HTTP
answers ``409 thread_busy``), ``wait=seconds`` polls with capped exponential backoff (tenacity)
until the lease is free or the time is up, then raises ``ThreadBusy`` (a job is handed back).
Polling rather than a watcher per waiter: a watcher is a server-side consumer for each waiting
run, and a waiter also has to notice an expiry, which no watcher reports.

If renewing fails for good (someone took the lease over after this worker stalled past its
TTL, or the thread was deleted), ``Lease.lost`` is set: the run should stop writing the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from nats.errors import Error as NatsError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay
from tenacity import wait_exponential_jitter as backoff

from worker.errors import ThreadBusy
from worker.telemetry.logs import get_logger
from worker.threads import keys
from worker.threads.bucket import Stale, ThreadsBucket

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a thread: the worker and the run."""

    worker_id: str
    run_id: str


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """A live lease as stored."""

    holder: Holder
    expires_at: float
    """Wall-clock time (``time.time()``) past which the lease is stale."""


@dataclass(slots=True)
class Lease:
    """A lease this worker holds (inside ``Leases.hold``)."""

    thread_id: str
    holder: Holder
    revision: int
    expires_at: float
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the lease could not be renewed: another run may be writing the thread."""


class Leases:
    """Take, renew and release thread leases in the threads bucket."""

    def __init__(self, bucket: ThreadsBucket, *, ttl: float, poll_max: float = 0.25) -> None:
        self._bucket = bucket
        self._ttl = ttl
        self._poll_max = poll_max

    async def current(self, thread_id: str) -> LeaseInfo | None:
        """Who holds ``thread_id`` now; None when nobody does (or the holder's time is up)."""
        entry = await self._bucket.get(keys.lease(thread_id))
        info = _parse(entry.value) if entry is not None else None
        return info if info is not None and info.expires_at > time.time() else None

    @contextlib.asynccontextmanager
    async def hold(
        self, thread_id: str, holder: Holder, *, wait: float | None = None
    ) -> AsyncIterator[Lease]:
        """Hold ``thread_id`` for the body; ``ThreadBusy`` when another run holds it (at once
        when ``wait`` is None, else after waiting up to ``wait`` seconds for it)."""
        lease = await self._acquire(thread_id, holder, wait)
        renewing = asyncio.create_task(self._renew(lease), name=f"thread-lease-{thread_id}")
        try:
            yield lease
        finally:
            renewing.cancel()
            # wait(), not `await renewing`: a cancellation of this task must not be swallowed.
            await asyncio.wait([renewing])
            await self._release(lease)

    async def _acquire(self, thread_id: str, holder: Holder, wait: float | None) -> Lease:
        if wait is None or wait <= 0:
            return await self._try_acquire(thread_id, holder)
        deadline = time.monotonic() + wait
        poll = backoff(multiplier=0.01, max=self._poll_max, jitter=0.02)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(ThreadBusy),
            # The last try comes at the deadline, not one backoff before it.
            wait=lambda state: min(poll(state), max(0.0, deadline - time.monotonic())),
            stop=stop_after_delay(wait),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._try_acquire(thread_id, holder)
        raise AssertionError("unreachable: tenacity reraises the last ThreadBusy")

    async def _try_acquire(self, thread_id: str, holder: Holder) -> Lease:
        key = keys.lease(thread_id)
        current = await self._bucket.get(key, markers=True)
        now = time.time()
        held = _parse(current.value) if current is not None and not current.deleted else None
        # A live lease of another run: busy. An unreadable one counts as stale, and the same
        # run taking its own lease again (a retried start) goes on.
        if held is not None and held.expires_at > now and held.holder != holder:
            raise _busy(thread_id, held.holder)
        expires_at = now + self._ttl
        value = _dump(LeaseInfo(holder, expires_at))
        try:
            if current is None:
                revision = await self._bucket.create(key, value)
            else:
                revision = await self._bucket.update(key, value, revision=current.revision)
        except Stale:
            raise _busy(thread_id, None) from None  # another run was quicker
        return Lease(thread_id, holder, revision, expires_at)

    async def _renew(self, lease: Lease) -> None:
        key = keys.lease(lease.thread_id)
        while True:
            await asyncio.sleep(self._ttl / 3)
            expires_at = time.time() + self._ttl
            try:
                lease.revision = await self._bucket.update(
                    key, _dump(LeaseInfo(lease.holder, expires_at)), revision=lease.revision
                )
            except Stale:
                log.warning("thread lease lost", thread_id=lease.thread_id, run=lease.holder.run_id)
                lease.lost.set()
                return
            except (NatsError, TimeoutError) as exc:
                # NATS may come back before the lease runs out; after that it is lost for sure.
                log.warning("thread lease not renewed", thread_id=lease.thread_id, error=str(exc))
                if time.time() >= lease.expires_at:
                    lease.lost.set()
                    return
                continue
            lease.expires_at = expires_at

    async def _release(self, lease: Lease) -> None:
        try:
            await self._bucket.delete(keys.lease(lease.thread_id), revision=lease.revision)
        except Stale:
            pass  # taken over or deleted meanwhile: not ours to release any more
        except (NatsError, TimeoutError) as exc:
            # It runs out by itself within one TTL.
            log.warning("thread lease not released", thread_id=lease.thread_id, error=str(exc))


def _busy(thread_id: str, holder: Holder | None) -> ThreadBusy:
    by = f"run {holder.run_id!r}" if holder is not None else "another run"
    return ThreadBusy(
        f"thread {thread_id!r} is busy: {by} is writing it",
        details={"thread_id": thread_id},
    )


def _dump(info: LeaseInfo) -> bytes:
    return orjson.dumps(
        {
            "worker_id": info.holder.worker_id,
            "run_id": info.holder.run_id,
            "expires_at": info.expires_at,
        }
    )


def _parse(value: bytes) -> LeaseInfo | None:
    try:
        raw = orjson.loads(value)
        return LeaseInfo(Holder(raw["worker_id"], raw["run_id"]), float(raw["expires_at"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
