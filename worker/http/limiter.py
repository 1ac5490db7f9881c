"""The HTTP door's bound on concurrent runs: invocation slots, each held by one ``async with``."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import NoReturn

from worker.errors import Overloaded
from worker.telemetry.metrics import HTTP_IN_FLIGHT, HTTP_QUEUED, HTTP_REJECTED


class InvocationLimiter:
    """At most ``limit`` runs at once; up to ``queue`` more wait for a slot, first come first
    served, for no longer than they were told; past that a caller is turned away at once (503
    with ``Retry-After``).

    The short queue lets a burst (a thousand connections at once) be served rather than
    refused; its bound and the wait limit keep latency honest, since a Go client with a breaker
    and a second worker does better with a fast 503 than with a request parked for long.
    """

    def __init__(self, limit: int, *, queue: int = 0, service: str) -> None:
        self._limit = limit
        self._queue = queue
        self._slots = asyncio.Semaphore(limit)
        self._running = 0
        self._waiting = 0
        self._service = service
        # Read when scraped, not written on every request.
        HTTP_IN_FLIGHT.labels(service).set_function(lambda: self._running)
        HTTP_QUEUED.labels(service).set_function(lambda: self._waiting)

    @property
    def running(self) -> int:
        """Runs in progress now."""
        return self._running

    def slot(self, time_limit: float, *, wait: bool = True) -> Slot:
        """A slot for the ``async with`` block, which gets the seconds left of ``time_limit``.

        Waiting for the slot (up to ``time_limit``, or not at all when ``wait`` is false) counts
        against the run's deadline. Raises ``Overloaded`` when the queue is full or the wait
        runs out. The task that enters the block gives the slot back when it leaves it, however
        it leaves: a slot is never handed from one task to another.
        """
        return Slot(self, time_limit, wait)

    async def _acquire(self, wait: float) -> float:
        """Take a slot, waiting up to ``wait`` seconds for one; return the seconds waited."""
        if not self._slots.locked():  # a slot is free and nobody is waiting for one
            await self._slots.acquire()  # returns at once
            self._running += 1
            return 0.0
        if wait <= 0 or self._waiting >= self._queue:
            self._reject(f"worker is at its limit of {self._limit} concurrent invocations")
        loop = asyncio.get_running_loop()
        start = loop.time()
        self._waiting += 1
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            self._reject(f"no invocation slot became free within {wait:g}s")
        finally:
            self._waiting -= 1
        self._running += 1
        return loop.time() - start

    def _release(self) -> None:
        self._running -= 1
        self._slots.release()

    def _reject(self, message: str) -> NoReturn:
        HTTP_REJECTED.labels(self._service, "overloaded").inc()
        raise Overloaded(message, retry_after=1)


class Slot:
    """``async with limiter.slot(time_limit) as remaining``: one invocation slot, held by the
    task running the block. A class rather than ``contextlib.asynccontextmanager``: it sits on
    every invoke, and this costs no generator per call."""

    __slots__ = ("_limiter", "_time_limit", "_wait")

    def __init__(self, limiter: InvocationLimiter, time_limit: float, wait: bool) -> None:
        self._limiter = limiter
        self._time_limit = time_limit
        self._wait = wait

    async def __aenter__(self) -> float:
        waited = await self._limiter._acquire(self._time_limit if self._wait else 0.0)
        return self._time_limit - waited

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter._release()
