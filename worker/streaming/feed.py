"""Readers of a task's frames on this worker: replay from any ``seq``, then follow live.

Each worker holds at most one live feed per task, a core NATS subscription on the stream's
republished frames, parsed once and handed to every local reader of the task, so a thousand
watchers cost one subscription, not a thousand JetStream consumers.

A reader tracks the last stream sequence it has taken. A live frame whose
``Nats-Last-Sequence`` is not that one shows a gap (a frame lost on the core feed, or a reader
that fell behind losslessly); the reader then *catches up* from the stream itself with an
ordered consumer, dropping live frames meanwhile, and goes back to the live feed once the
consumer has nothing pending and it has passed every live frame seen. A new reader starts by
catching up from the beginning of the task, keeping frames from ``from_seq`` on. If the feed
goes quiet, a watchdog compares the newest stored frame with what readers have, so even a lost
final frame is found.

This is hand-written because nats-py offers the pieces (core subscriptions, ordered consumers)
but not a shared fan-out with replay; the JetStream parts are all library calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from worker.streaming.frames import WireFrame
from worker.streaming.log import LAST_SEQUENCE_HEADER, SEQUENCE_HEADER, FrameLog
from worker.streaming.outbox import GoingAway, Outbox
from worker.telemetry.logs import get_logger

log = get_logger(__name__)
Until = Callable[[WireFrame], bool]


def _final(frame: WireFrame) -> bool:
    return frame.final


class Reader:
    """One reader of ``task_id``'s frames from ``from_seq`` on, ending after the last frame.

    Iterate it (``async for frame in reader``) inside ``async with reader``. The frames come
    from its ``outbox``, whose policy (coalescing or lossless) decides what a slow reader gets.
    """

    def __init__(
        self,
        *,
        fanout: Fanout,
        task_id: str,
        from_seq: int,
        outbox: Outbox,
        until: Until = _final,
    ) -> None:
        self._fanout = fanout
        self.task_id = task_id
        self.outbox = outbox
        self._until = until
        self.next_seq = max(1, from_seq)
        self.last_sseq = 0
        self.max_live_sseq = 0
        self.catching_up = False
        self.finished = False
        self._catch_up_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        await self._fanout.attach(self)
        self._start_catch_up()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading; frames still queued are not delivered."""
        self._fanout.detach(self)
        task = self._catch_up_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.outbox.close()

    def __aiter__(self) -> Reader:
        return self

    async def __anext__(self) -> WireFrame:
        frame = await self.outbox.get()
        if frame is None:
            raise StopAsyncIteration
        return frame

    # --- live ---------------------------------------------------------------------------

    def on_live(self, frame: WireFrame, prev_sseq: int) -> None:
        """A frame from the live feed, with the stream sequence of the task's frame before it."""
        self.max_live_sseq = max(self.max_live_sseq, frame.sseq)
        if self.catching_up or self.finished or frame.sseq <= self.last_sseq:
            return
        if prev_sseq != self.last_sseq:
            self._start_catch_up()  # the feed lost a frame: read it from the stream
            return
        if frame.seq < self.next_seq:
            self.last_sseq = frame.sseq
            return
        if not self.outbox.offer(frame):
            self._start_catch_up()  # lossless and full: continue from the stream, paced
            return
        self.last_sseq = frame.sseq
        self.next_seq = frame.seq + 1
        if self._until(frame):
            self._finish()

    def on_newest(self, sseq: int) -> None:
        """The watchdog's news: the task's newest stored frame is at stream seq ``sseq``."""
        if not self.catching_up and not self.finished and sseq > self.last_sseq:
            self._start_catch_up()

    def _finish(self) -> None:
        self.finished = True
        self.outbox.close()
        self._fanout.detach(self)

    # --- catching up from the stream ------------------------------------------------------

    def _start_catch_up(self) -> None:
        if self.catching_up or self.finished:
            return
        self.catching_up = True
        self._catch_up_task = asyncio.create_task(self._catch_up(), name="frames-catch-up")

    async def _catch_up(self) -> None:
        failures = 0
        while True:
            try:
                await self._catch_up_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS away or JetStream busy: try again shortly
                failures += 1
                log.warning("frames catch-up failed", task_id=self.task_id, error=repr(exc))
                await asyncio.sleep(min(0.1 * 2**failures, 2.0))
            else:
                return

    def _caught_up(self) -> bool:
        if self.last_sseq >= self.max_live_sseq:
            self.catching_up = False
            return True
        return False

    async def _catch_up_once(self) -> None:
        flog = self._fanout.log
        newest = await flog.last(self.task_id)
        if (newest is None or newest.sseq <= self.last_sseq) and self._caught_up():
            return
        sub = await flog.replay(self.task_id, after_sseq=self.last_sseq)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=self._fanout.idle_check)
                except nats.errors.TimeoutError:
                    newest = await flog.last(self.task_id)
                    if (newest is None or newest.sseq <= self.last_sseq) and self._caught_up():
                        return
                    continue
                meta = msg.metadata
                try:
                    frame = WireFrame.parse(msg.data, sseq=meta.sequence.stream)
                except ValueError:
                    continue
                self.last_sseq = frame.sseq
                if frame.seq >= self.next_seq:
                    await self.outbox.put(frame)
                    self.next_seq = frame.seq + 1
                    if self._until(frame):
                        self._finish()
                        return
                elif self._until(frame):  # the task ended before from_seq
                    self._finish()
                    return
                if meta.num_pending == 0 and self._caught_up():
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


class Feed:
    """The live frames of one task on this worker, shared by its local readers."""

    def __init__(self, *, task_id: str) -> None:
        self.task_id = task_id
        self.readers: set[Reader] = set()
        self.sub: Subscription | None = None
        self.ready = asyncio.Event()
        self.last_message = time.monotonic()

    async def on_message(self, msg: Msg) -> None:
        """Parse a republished frame once and hand it to every reader."""
        self.last_message = time.monotonic()
        headers = msg.headers or {}
        try:
            sseq = int(headers[SEQUENCE_HEADER])
            prev = int(headers.get(LAST_SEQUENCE_HEADER) or 0)
            frame = WireFrame.parse(msg.data, sseq=sseq)
        except (KeyError, ValueError):
            return
        for reader in tuple(self.readers):
            reader.on_live(frame, prev)


class Fanout:
    """This worker's live feeds, one per task with readers, and their watchdog."""

    def __init__(self, *, log: FrameLog, idle_check: float = 5.0) -> None:
        self.log = log
        self.idle_check = idle_check
        self._feeds: dict[str, Feed] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def feeds(self) -> int:
        """Tasks followed live on this worker now."""
        return len(self._feeds)

    def start(self) -> None:
        """Start the watchdog."""
        self._watchdog = asyncio.create_task(self._watch(), name="frames-watchdog")

    async def stop(self) -> None:
        """Stop the watchdog and every live feed."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await self._unsubscribe(feed)
        await asyncio.gather(*self._closing, return_exceptions=True)

    def shut_down(self) -> None:
        """End every reader at once (worker shutting down): ``GoingAway`` from their outboxes."""
        for feed in self._feeds.values():
            for reader in feed.readers:
                reader.outbox.fail(GoingAway())

    async def attach(self, reader: Reader) -> None:
        """Add ``reader`` to its task's feed, subscribing first if it is the task's first."""
        feed = self._feeds.get(reader.task_id)
        if feed is None:
            feed = self._feeds[reader.task_id] = Feed(task_id=reader.task_id)
            feed.readers.add(reader)
            try:
                feed.sub = await self.log.nc.subscribe(
                    self.log.live_subject(reader.task_id),
                    cb=feed.on_message,
                    pending_msgs_limit=65536,
                    pending_bytes_limit=64 << 20,
                )
            except BaseException:
                self._feeds.pop(reader.task_id, None)
                raise
            finally:
                feed.ready.set()
        else:
            feed.readers.add(reader)
            await feed.ready.wait()

    def detach(self, reader: Reader) -> None:
        """Remove ``reader``; the last reader of a task ends its feed."""
        feed = self._feeds.get(reader.task_id)
        if feed is None or reader not in feed.readers:
            return
        feed.readers.discard(reader)
        if not feed.readers:
            del self._feeds[reader.task_id]
            task = asyncio.create_task(self._unsubscribe(feed))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _unsubscribe(self, feed: Feed) -> None:
        await feed.ready.wait()
        if feed.sub is not None:
            with contextlib.suppress(Exception):
                await feed.sub.unsubscribe()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.idle_check)
            quiet_since = time.monotonic() - self.idle_check
            for feed in list(self._feeds.values()):
                if feed.last_message > quiet_since:
                    continue
                waiting = [r for r in feed.readers if not r.catching_up and not r.finished]
                if not waiting:
                    continue
                try:
                    newest = await self.log.last(feed.task_id)
                except Exception as exc:  # NATS away: the next round tries again
                    log.debug("frames watchdog check failed", error=repr(exc))
                    continue
                if newest is not None:
                    for reader in waiting:
                        reader.on_newest(newest.sseq)
