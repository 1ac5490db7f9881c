"""A reader's bounded queue of frames: what memory a reader can hold, whatever it does.

Live frames are offered without waiting. Past ``max_frames`` queued, a plain or token
``processing`` frame is coalesced into such a frame at the tail; ``started``, final and agent
step frames (``tool_end``, ``node``...) are never merged: they are queued past ``max_frames``.
Coalesced text and whole frames still grow the queue, so past ``max_bytes`` the reader is
hopelessly behind: the queue fails with ``ReaderTooSlow``, naming the first ``seq`` it did not
deliver, and the connection is closed with that in its reason.

A *lossless* queue (the push client's) never coalesces: ``offer`` refuses a frame when full,
and its reader catches up from the log instead, at the pace the receiver reads.
"""

from __future__ import annotations

import asyncio
from collections import deque

from worker.streaming.frames import PROCESSING, WireFrame


class ReaderTooSlow(Exception):
    """The reader fell so far behind that its queue hit its byte bound."""

    def __init__(self, resume_seq: int) -> None:
        super().__init__(f"reader too slow; resume from seq {resume_seq}")
        self.resume_seq = resume_seq


class GoingAway(Exception):
    """The worker is shutting down; the reader should resume elsewhere."""


class FrameQueue:
    """Frames waiting to be sent to one reader (its outbox: ``Reader.outbox``)."""

    def __init__(self, *, max_frames: int, max_bytes: int, lossless: bool = False) -> None:
        self._queue: deque[WireFrame] = deque()
        self._bytes = 0
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self.lossless = lossless
        # The one task taking frames waits on a bare future: cheaper per frame than an Event.
        self._waiter: asyncio.Future[None] | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._error: BaseException | None = None
        self._closed = False
        self.coalesced = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Bytes of the frames queued now."""
        return self._bytes

    def offer(self, frame: WireFrame) -> bool:
        """Queue a live frame now; False if a lossless queue is full (nothing was queued)."""
        if self._error is not None or self._closed:
            return True
        queue = self._queue
        if len(queue) < self._max_frames or frame.status != PROCESSING:
            self._append(frame)
        elif self.lossless:
            return False
        elif frame.coalescible and queue and queue[-1].coalescible:
            tail = queue[-1]
            if not tail.private:
                tail = queue[-1] = tail.clone()
            before = tail.size
            tail.absorb(frame)
            self._bytes += tail.size - before
            self.coalesced += 1
        else:
            self._append(frame)
        if self._bytes > self._max_bytes:
            self.fail(ReaderTooSlow(queue[0].first_seq))
        return True

    async def put(self, frame: WireFrame) -> None:
        """Queue a replayed frame, waiting for room (replay goes at the reader's pace)."""
        while len(self._queue) >= self._max_frames and self._error is None:
            self._room.clear()
            await self._room.wait()
        if self._error is None:
            self._append(frame)

    def _append(self, frame: WireFrame) -> None:
        self._queue.append(frame)
        self._bytes += frame.size
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def get(self) -> WireFrame | None:
        """The next frame to send; ``None`` once closed and empty; raises the failure, if any.

        One task takes the frames of a queue (its reader's pump).
        """
        while not self._queue:
            if self._error is not None:
                raise self._error
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self._error is not None:
            raise self._error
        frame = self._queue.popleft()
        self._bytes -= frame.size
        if len(self._queue) < self._max_frames:
            self._room.set()
        return frame

    def close(self) -> None:
        """No more frames will come: ``get`` drains what is queued, then returns ``None``."""
        self._closed = True
        self._wake()
        self._room.set()

    def fail(self, error: BaseException) -> None:
        """End the reader with ``error``: ``get`` raises it; queued frames are dropped."""
        if self._error is None:
            self._error = error
        self._wake()
        self._room.set()

    @property
    def dropped(self) -> int:
        """Frames still queued (dropped if the reader failed)."""
        return sum(f.coalesced for f in self._queue)
