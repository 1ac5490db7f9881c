"""Publishing one attempt's frames of a task: numbered, in order, pipelined, never blocking the run.

``emit`` only appends to a queue; a publisher task numbers the drafts as it sends them. The
first frame of an attempt is published with ``Nats-Expected-Last-Subject-Sequence``: it
continues the ``seq`` of the task's newest stored frame (and counts the attempt), read when
the task has frames already, and loses the race cleanly if another writer got there first, so
``seq`` has no gaps and no repeats across attempts. Later frames go out in pipelined batches
(``publish_async``), each with a ``Nats-Msg-Id``, so a batch resent after a lost
acknowledgement is not stored twice.

While the log is unreachable the writer retries with backoff, and progress drafts waiting
behind the batch in flight are coalesced, so memory stays bounded; ``close`` bounds how long
the run waits for its last frames.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, overload

import nats.errors
from nats.js.errors import BadRequestError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from worker.streaming.frames import Draft, WireFrame
from worker.streaming.log import FrameLog
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import (
    STREAM_FRAMES_COALESCED,
    STREAM_FRAMES_DROPPED,
    STREAM_FRAMES_PUBLISHED,
    labelled,
)

log = get_logger(__name__)
# JetStream's "wrong last sequence" (JSStreamWrongLastSequenceErrF, and the constant form newer
# servers send), as nats-py's own key-value compare-and-set reads them.
_WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
# Transient: NATS reconnecting, JetStream electing a leader, an acknowledgement lost.
_TRANSIENT = (nats.errors.Error, TimeoutError, OSError)
P = ParamSpec("P")
T = TypeVar("T")


Build = Callable[[WireFrame | None, int], tuple[bytes, T]]
"""Makes the frame after the newest one (``None``: no frames) as number ``seq``: its bytes, and
a value for the caller."""
MaybeBuild = Callable[[WireFrame | None, int], tuple[bytes, T] | None]
"""A ``Build`` that may decline (``None``): nothing is published."""


@overload
async def claim_next(
    log: FrameLog, task_id: str, build: Build[T], *, newest: WireFrame | None = None
) -> tuple[int, T]: ...


@overload
async def claim_next(
    log: FrameLog, task_id: str, build: MaybeBuild[T], *, newest: WireFrame | None = None
) -> tuple[int, T] | None: ...


async def claim_next(
    log: FrameLog,
    task_id: str,
    build: MaybeBuild[T],
    *,
    newest: WireFrame | None = None,
) -> tuple[int, T] | None:
    """Publish a frame right after ``task_id``'s newest stored frame, whatever other writers do.

    ``build(newest, seq)`` makes the frame that follows ``newest`` (``None``: the task has no
    frames) as number ``seq``: its bytes and a value handed back with ``seq``, or ``None`` to
    publish nothing. ``newest`` is the caller's guess; when the log says it is wrong (frames
    were there, or another writer published first), the newest frame is read and ``build``
    asked again. Returns ``(seq, value)``, or ``None`` if ``build`` declined.
    """
    while True:
        seq = newest.seq + 1 if newest else 1
        built = build(newest, seq)
        if built is None:
            return None
        data, value = built
        try:
            await log.claim(task_id, data, seq=seq, after_sseq=newest.sseq if newest else 0)
        except BadRequestError as exc:
            if exc.err_code not in _WRONG_LAST_SEQUENCE:
                raise
            newest = await log.last(task_id)
            continue
        return seq, value


async def _transient_retried(
    publish: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``publish``, retried with backoff while the log is unreachable.

    The first try goes without tenacity: it succeeds for nearly every frame, and setting up a
    retry loop for each was a twentieth of a worker's CPU per job.
    """
    try:
        return await publish(*args, **kwargs)
    except _TRANSIENT:
        pass
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(_TRANSIENT),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
        reraise=True,
    )
    return await retrying(publish, *args, **kwargs)


class FrameWriter:
    """Publishes the frames of one attempt of ``task_id`` to the log."""

    def __init__(
        self,
        *,
        log: FrameLog,
        task_id: str,
        service: str,
        window: int = 256,
        max_pending: int = 1024,
        ack_timeout: float = 5.0,
    ) -> None:
        self._log = log
        self.task_id = task_id
        self._service = service
        self._window = window
        self._max_pending = max_pending
        self._ack_timeout = ack_timeout
        self._pending: deque[Draft] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.next_seq = 0
        self._attempt = 1
        self.progress = 0
        self.attempt: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._coalesced = labelled(STREAM_FRAMES_COALESCED, service, "log")
        self._published = labelled(STREAM_FRAMES_PUBLISHED, service)

    def start(self) -> None:
        """Start publishing in the background."""
        self._task = asyncio.create_task(self._publish(), name=f"frames:{self.task_id}")

    def emit(self, draft: Draft) -> None:
        """Queue ``draft``; never waits (a backlog of progress and token drafts is coalesced;
        agent step drafts are kept whole)."""
        self.progress = draft.progress
        pending = self._pending
        if len(pending) >= self._max_pending and draft.coalescible and pending[-1].coalescible:
            pending[-1].absorb(draft)
            self._coalesced.inc()
        else:
            pending.append(draft)
        self._wake.set()

    async def close(self, within: float) -> None:
        """Publish what is queued, waiting at most ``within`` seconds, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), within)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            dropped = len(self._pending)
            STREAM_FRAMES_DROPPED.labels(self._service, "log_unreachable").inc(dropped)
            log.warning("frames not published in time", task_id=self.task_id, dropped=dropped)
        if not self.attempt.done():
            self.attempt.cancel()

    async def _publish(self) -> None:
        try:
            await self._claim()
            while True:
                if not self._pending:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                count = min(self._window, len(self._pending))
                await self._send([self._pending.popleft() for _ in range(count)])
        except Exception:  # the run goes on without frames rather than failing
            log.exception("frame publisher failed", task_id=self.task_id)
            STREAM_FRAMES_DROPPED.labels(self._service, "publish_failed").inc(len(self._pending))
            self._pending.clear()
            if not self.attempt.done():
                self.attempt.cancel()

    async def _claim(self) -> None:
        """Publish the attempt's first frame right after the task's newest stored one."""
        while not self._pending:
            self._wake.clear()
            await self._wake.wait()
        first = self._pending.popleft()
        seq, attempt = await _transient_retried(self._claim_once, first)
        self.next_seq = seq + 1
        self._attempt = attempt
        self.attempt.set_result(attempt)
        self._published.inc()

    async def _send(self, batch: list[Draft]) -> None:
        first_seq = self.next_seq
        encoded = [
            d.encode(task_id=self.task_id, seq=first_seq + i, attempt=self._attempt)
            for i, d in enumerate(batch)
        ]
        await _transient_retried(self._send_once, encoded, first_seq)
        self.next_seq = first_seq + len(batch)
        self._published.inc(len(batch))

    async def _claim_once(self, first: Draft) -> tuple[int, int]:
        """Publish ``first`` as the attempt's first frame; its ``(seq, attempt)``."""

        def started(newest: WireFrame | None, seq: int) -> tuple[bytes, int]:
            attempt = newest.attempt + 1 if newest else 1
            return first.encode(task_id=self.task_id, seq=seq, attempt=attempt), attempt

        # Most tasks have no frames yet: guess that, and read the newest frame only when the
        # log says otherwise (one round trip less for nearly every run).
        return await claim_next(self._log, self.task_id, started)

    async def _send_once(self, encoded: list[bytes], first_seq: int) -> None:
        if len(encoded) == 1:  # the usual batch (a final frame): one request, no gather
            await self._log.publish(
                self.task_id, encoded[0], seq=first_seq, ack_within=self._ack_timeout
            )
            return
        futures: list[Any] = []
        try:
            for i, data in enumerate(encoded):
                futures.append(await self._log.publish_async(self.task_id, data, seq=first_seq + i))
            await asyncio.wait_for(asyncio.gather(*futures), self._ack_timeout)
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
