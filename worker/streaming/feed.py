"""Readers of a task's frames on this worker: replay from any ``seq``, then follow live.

Each worker holds at most one live feed per task, a core NATS subscription on the stream's
republished frames (on the connection of ``live``), parsed once and handed to every local
reader of the task, so a thousand watchers cost one subscription, not a thousand JetStream
consumers, and a frame costs one parse however many read it.

A reader tracks the last stream sequence it has taken. A live frame whose
``Nats-Last-Sequence`` is not that one shows a gap (a frame lost on the core feed, or a reader
that fell behind losslessly); the reader then *catches up* from the stream itself, dropping
live frames meanwhile, and goes back to the live feed once it has passed every live frame
seen. A new reader starts by catching up from the beginning of the task, keeping frames from
``from_seq`` on. A catch-up reads nothing when the task's newest stored frame comes before
the one wanted, a few frames with direct gets, more with an ordered consumer, and many (a
backlog a push consumer's client buffer might not hold) with a pull consumer read in batches,
until it has nothing pending: a thousand watchers joining running tasks at once then cost the
server a few thousand reads, not a thousand consumers. If the feed goes quiet, a watchdog
compares the newest stored frame with what readers have, so even a lost final frame is found.

This is hand-written because nats-py offers the pieces (core subscriptions, consumers)
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
from worker.streaming.live import LiveConnection
from worker.streaming.log import PUSH_REPLAY_MAX, FrameLog
from worker.streaming.outbox import FrameQueue, GoingAway
from worker.telemetry.logs import get_logger

log = get_logger(__name__)
Until = Callable[[WireFrame], bool]
_DIRECT_REPLAY = 32  # frames a catch-up reads with direct gets; past that, a consumer
_REPLAY_BATCH = 64  # frames fetched at once by a replay


def _final(frame: WireFrame) -> bool:
    return frame.final


class Reader:
    """One reader of ``task_id``'s frames from ``from_seq`` on, ending after the last frame.

    Iterate it (``async for frame in reader``) inside ``async with reader``. The frames come
    from its ``outbox`` (a ``FrameQueue``), whose policy (coalescing or lossless) decides what a
    slow reader gets. ``until`` says which final frame ends it (the first, by default); only
    final frames can.
    """

    def __init__(
        self,
        *,
        fanout: Fanout,
        task_id: str,
        from_seq: int,
        outbox: FrameQueue,
        until: Until = _final,
    ) -> None:
        self._fanout = fanout
        self.task_id = task_id
        self.outbox = outbox
        self._until = until
        self.next_seq = max(1, from_seq)
        self.last_sseq = 0
        self.taken_seq = 0  # the seq of the frame at last_sseq
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
        sseq = frame.sseq
        self.max_live_sseq = max(self.max_live_sseq, sseq)
        if self.catching_up or self.finished or sseq <= self.last_sseq:
            return
        if prev_sseq != self.last_sseq:
            self._start_catch_up()  # the feed lost a frame: read it from the stream
            return
        if frame.seq < self.next_seq:
            self.last_sseq, self.taken_seq = sseq, frame.seq
            return
        if not self.outbox.offer(frame):
            self._start_catch_up()  # lossless and full: continue from the stream, paced
            return
        self.last_sseq, self.taken_seq = sseq, frame.seq
        self.next_seq = frame.seq + 1
        if frame.final and self._until(frame):
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

    async def _take(self, frame: WireFrame) -> bool:
        """A frame read from the stream: queued if wanted (at the reader's pace); True if it
        ended the reader (a final frame, maybe before ``from_seq``: the task had ended)."""
        self.last_sseq, self.taken_seq = frame.sseq, frame.seq
        if frame.seq >= self.next_seq:
            await self.outbox.put(frame)
            self.next_seq = frame.seq + 1
        if frame.final and self._until(frame):
            self._finish()
            return True
        return False

    async def _catch_up_once(self) -> None:
        flog = self._fanout.log
        for _ in range(3):  # live frames may land meanwhile: look again before a consumer
            newest = await flog.last(self.task_id)
            if newest is not None and newest.sseq > self.last_sseq and newest.seq < self.next_seq:
                # Every stored frame this reader has not taken comes before the one it wants
                # next (a watcher of a task that has just started): nothing to read. Only the
                # newest frame can be final.
                if newest.final and self._until(newest):
                    self._finish()
                    return
                self.last_sseq, self.taken_seq = newest.sseq, newest.seq
            if (newest is None or newest.sseq <= self.last_sseq) and self._caught_up():
                return
            if newest is None or newest.seq - self.taken_seq > _DIRECT_REPLAY:
                break
            # A short replay (a watcher joining a running task, a frame lost on the feed):
            # direct gets, which leave nothing behind on the server, where a consumer is
            # created, fed and deleted; a thousand watchers joining at once make that a storm.
            while self.last_sseq < newest.sseq:
                frame = await flog.next_after(self.task_id, self.last_sseq)
                if frame is None:
                    break
                if await self._take(frame):
                    return
            if self._caught_up():
                return
        behind = newest.seq - self.taken_seq if newest is not None else 0
        if behind > PUSH_REPLAY_MAX or not await self._follow():
            await self._replay()

    async def _follow(self) -> bool:
        """Read the stream from ``last_sseq`` with an ordered consumer until caught up (True),
        or until this reader falls behind what the consumer pushes (False: go on with
        ``_replay``, before the subscription's client buffer fills and drops frames)."""
        flog = self._fanout.log
        sub = await flog.follow(self.task_id, after_sseq=self.last_sseq)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=self._fanout.idle_check)
                except nats.errors.TimeoutError:
                    if await self._quiet_and_caught_up():
                        return True
                    continue
                if await self._take_msg(msg):
                    return True
                if sub.pending_msgs > PUSH_REPLAY_MAX:
                    return False
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _quiet_and_caught_up(self) -> bool:
        """After a consumer went quiet: has this reader every stored and live frame?"""
        newest = await self._fanout.log.last(self.task_id)
        return (newest is None or newest.sseq <= self.last_sseq) and self._caught_up()

    async def _take_msg(self, msg: Msg) -> bool:
        """A frame read from a consumer; True when the reader is done with the consumer
        (the frame ended it, or it has caught up)."""
        meta = msg.metadata
        try:
            frame = WireFrame.parse(msg.data, sseq=meta.sequence.stream)
        except ValueError:
            return False
        if await self._take(frame):
            return True
        return meta.num_pending == 0 and self._caught_up()

    async def _replay(self) -> None:
        """Read the stream from ``last_sseq`` in batches until caught up."""
        flog = self._fanout.log
        replay = await flog.replay(self.task_id, after_sseq=self.last_sseq)
        want = _REPLAY_BATCH
        try:
            while True:
                try:
                    # A batch at a time: the next is fetched once these are queued, at the
                    # reader's pace. Never more than are stored: a fetch that finds fewer
                    # waits for the rest until it times out (nats-py's lingering pull).
                    msgs = await replay.sub.fetch(want, timeout=self._fanout.idle_check)
                except nats.errors.TimeoutError:
                    if await self._quiet_and_caught_up():
                        return
                    continue
                for msg in msgs:
                    if await self._take_msg(msg):
                        return
                want = min(_REPLAY_BATCH, max(1, msgs[-1].metadata.num_pending or 0))
        finally:
            await replay.close()


class Feed:
    """The live frames of one task on this worker, shared by its local readers."""

    def __init__(self, *, task_id: str) -> None:
        self.task_id = task_id
        self.readers: set[Reader] = set()
        self.sub: Subscription | None = None
        self.ready = asyncio.Event()
        self.last_message = time.monotonic()

    def on_frame(self, sseq: int, prev_sseq: int, data: bytes) -> None:
        """Parse a republished frame once and hand it to every reader."""
        self.last_message = time.monotonic()
        try:
            frame = WireFrame.parse(data, sseq=sseq)
        except ValueError:
            return
        for reader in tuple(self.readers):
            reader.on_live(frame, prev_sseq)


class Fanout:
    """This worker's live feeds, one per task with readers, and their watchdog."""

    def __init__(self, *, log: FrameLog, live: LiveConnection, idle_check: float = 5.0) -> None:
        self.log = log
        self.live = live
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
                feed.sub = await self.live.subscribe(
                    self.log.live_subject(reader.task_id), feed.on_frame
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
            await self.live.unsubscribe(feed.sub)

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
