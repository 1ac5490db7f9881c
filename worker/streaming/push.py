"""Push (the seed's pattern): send a job's frames to its ``stream_url`` as a WebSocket client.

The pusher is a lossless reader of the task's frames in the log, so it holds almost nothing in
memory: when the receiver is slow it reads the log at the receiver's pace, and when the
connection drops it reconnects with exponential backoff and jitter (tenacity) and resends from
the first frame the receiver has not *confirmed*. A frame counts as confirmed once a ping sent
after it has been answered (a receiver answers pings in order, after the frames before them),
or once the receiver has answered our closing handshake; frames written to a socket that then
dropped may have been lost in its buffers, so they are sent again (a receiver may see a ``seq``
twice, never miss one).

A new attempt of a job (after a worker crash) pushes from ``seq`` 1 again: the receiver sees the
earlier attempt's frames once more, then the new ``started`` frame. A receiver that does not
come back within ``give_up`` seconds is abandoned: the job never waits for it.

The connection is dialled with the worker's checked session (``worker.outbound``), as callbacks
are: a ``stream_url`` that is not an allowed target gets no connection at all. The refusal is
logged and never retried, and the job runs on without its push (its frames stay in the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeAlias
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSCloseCode, WSMsgType
from opentelemetry import propagate, trace
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from worker.outbound.ssrf import refusal_in
from worker.streaming.feed import Fanout, Reader
from worker.streaming.frames import WireFrame
from worker.streaming.outbox import FrameQueue
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import (
    STREAM_FRAME_LAG,
    STREAM_FRAMES_DROPPED,
    STREAM_FRAMES_SENT,
    STREAM_PUSH_CONNECTIONS,
    WEBSOCKET_CONNECTIONS,
)
from worker.telemetry.tracing import TRACER_NAME

log = get_logger(__name__)
_MAX_UNCONFIRMED_PINGS = 32
_PING_EVERY = 64
_HEARTBEAT = 20.0  # seconds of silence before a keepalive ping (a dead peer: no pong in half)
_MAX_MESSAGE = 64 << 10  # what a receiver may send us (it sends nothing but pongs and pings)
_RETRYABLE = (OSError, TimeoutError, aiohttp.ClientError)
Socket: TypeAlias = "aiohttp.ClientWebSocketResponse[Literal[True]]"


@dataclass(frozen=True, kw_only=True)
class PushOptions:
    """How the push client behaves."""

    give_up: float = 300.0
    max_backoff: float = 10.0
    open_timeout: float = 10.0
    close_timeout: float = 10.0
    queue_frames: int = 256
    queue_bytes: int = 1 << 20


class _Dropped(Exception):
    """The receiver went away after the connection made progress (restart the give-up clock)."""


def _refused(exc: BaseException) -> bool:
    """The policy refused the target, or its URL can never be dialled: never retried."""
    return refusal_in(exc) is not None or isinstance(exc, aiohttp.InvalidURL)


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, _RETRYABLE) and not _refused(exc)


class _Pings:
    """The pings of one connection not answered yet, each standing for the frames before it.

    A receiver answers pings in order, after reading the frames sent before them, so the pong
    to the ping sent after frame ``seq`` confirms every frame up to ``seq``. A ping carries its
    ``seq`` (a pong echoes its ping's payload), which tells the answers to ours from any other.
    """

    def __init__(self) -> None:
        self._unanswered: deque[int] = deque()
        self._answered = asyncio.Event()
        self._lost = False

    async def send(self, ws: Socket, seq: int) -> None:
        """Ping after frame ``seq``."""
        self._unanswered.append(seq)
        await ws.ping(b"%d" % seq)

    def answered(self, payload: bytes) -> int | None:
        """The ``seq`` a pong with ``payload`` confirms (``None``: not an answer to ours)."""
        try:
            seq = int(payload)
        except ValueError:
            return None
        if seq not in self._unanswered:
            return None
        while self._unanswered.popleft() != seq:
            pass  # an answer covers the earlier pings too
        self._answered.set()
        return seq

    def lost(self) -> None:
        """The connection is gone: no more answers will come."""
        self._lost = True
        self._answered.set()

    async def at_most(self, count: int) -> None:
        """Wait until no more than ``count`` pings are unanswered (raise if the connection goes
        first): how far the sender may run ahead of what the receiver has confirmed."""
        while len(self._unanswered) > count:
            if self._lost:
                raise ConnectionResetError("the receiver went away with pings unanswered")
            self._answered.clear()
            await self._answered.wait()


class Pusher:
    """Sends the frames of one attempt of a task to ``url`` until its final frame is confirmed."""

    def __init__(
        self,
        *,
        fanout: Fanout,
        session: aiohttp.ClientSession,
        task_id: str,
        url: str,
        attempt: asyncio.Future[int],
        service: str,
        options: PushOptions,
        traceparent: str | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._fanout = fanout
        self._session = session
        self.task_id = task_id
        self.url = url
        self._attempt = attempt
        self._service = service
        self._options = options
        self._traceparent = traceparent
        self._tracer = tracer or trace.get_tracer(TRACER_NAME)
        self.confirmed_seq = 0
        self.done = False
        self._sent = STREAM_FRAMES_SENT.labels(service, "push")
        self._lag = STREAM_FRAME_LAG.labels(service, "push")

    def _ends(self, frame: WireFrame) -> bool:
        attempt = self._attempt
        if not frame.final or not attempt.done() or attempt.cancelled():
            return False
        return frame.attempt >= attempt.result()

    async def run(self) -> None:
        """Push until done, refused or given up; never raises (but is cancellable)."""
        parent = propagate.extract({"traceparent": self._traceparent or ""})
        with self._tracer.start_as_current_span(
            "agentos.stream push",
            context=parent,
            kind=trace.SpanKind.CLIENT,
            attributes={
                "agentos.task_id": self.task_id,
                "server.address": urlsplit(self.url).hostname or "",
                "network.protocol.name": "websocket",
            },
        ) as span:
            while not self.done:
                try:
                    await self._until_dropped()
                except _Dropped:
                    continue
                except (RetryError, *_RETRYABLE) as exc:
                    if _refused(exc):
                        span.set_status(trace.StatusCode.ERROR, "stream_url refused")
                        log.warning(
                            "push refused: stream_url is not an allowed target",
                            task_id=self.task_id,
                            why=str(refusal_in(exc) or exc),
                        )
                        return
                if not self.done:
                    dropped = await self._undelivered()
                    STREAM_FRAMES_DROPPED.labels(self._service, "receiver_gone").inc(dropped)
                    span.set_status(trace.StatusCode.ERROR, "receiver did not come back")
                    log.warning(
                        "push receiver gone; giving up",
                        task_id=self.task_id,
                        confirmed_seq=self.confirmed_seq,
                    )
                return

    async def _undelivered(self) -> int:
        with contextlib.suppress(Exception):
            last = await self._fanout.log.last(self.task_id)
            if last is not None:
                return max(0, last.seq - self.confirmed_seq)
        return 0

    async def _until_dropped(self) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_worth_retrying),
            wait=wait_exponential_jitter(
                multiplier=0.1, max=self._options.max_backoff, jitter=0.25
            ),
            stop=stop_after_delay(self._options.give_up),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                confirmed_before = self.confirmed_seq
                try:
                    await self._connection()
                except _RETRYABLE:
                    if self.confirmed_seq > confirmed_before:
                        raise _Dropped from None
                    raise

    async def _connection(self) -> None:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        with self._tracer.start_as_current_span(
            "agentos.stream push connection",
            kind=trace.SpanKind.CLIENT,
            attributes={"agentos.resume_seq": self.confirmed_seq + 1},
        ) as span:
            try:
                ws = await self._session.ws_connect(
                    self.url,
                    headers=headers,
                    autoping=False,  # pongs confirm frames: _read_replies reads them
                    heartbeat=_HEARTBEAT,
                    max_msg_size=_MAX_MESSAGE,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self._options.close_timeout),
                )
            except Exception as exc:
                outcome = "refused" if _refused(exc) else "error"
                STREAM_PUSH_CONNECTIONS.labels(self._service, outcome).inc()
                raise
            STREAM_PUSH_CONNECTIONS.labels(self._service, "ok").inc()
            gauge = WEBSOCKET_CONNECTIONS.labels(self._service)
            gauge.inc()
            pings = _Pings()
            replies = asyncio.create_task(self._read_replies(ws, pings))
            try:
                await self._send_frames(ws, pings)
                span.set_attribute("agentos.confirmed_seq", self.confirmed_seq)
            finally:
                gauge.dec()
                with contextlib.suppress(Exception):
                    await ws.close()  # (done already after the final frame) ends the replies
                replies.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await replies

    async def _send_frames(self, ws: Socket, pings: _Pings) -> None:
        queue = FrameQueue(
            max_frames=self._options.queue_frames,
            max_bytes=self._options.queue_bytes,
            lossless=True,
        )
        since_ping = 0
        reader = Reader(
            fanout=self._fanout,
            task_id=self.task_id,
            from_seq=self.confirmed_seq + 1,
            outbox=queue,
            until=self._ends,
        )
        async with reader:
            async for frame in reader:
                await ws.send_frame(frame.data, WSMsgType.TEXT)
                self._sent.inc()
                if frame.ts:
                    self._lag.observe(max(0.0, time.time() - frame.ts))
                if self._ends(frame):
                    await ws.close(code=WSCloseCode.OK, message=b"final frame sent")
                    if ws.close_code in (None, WSCloseCode.ABNORMAL_CLOSURE):
                        # No answer to our close: the last frames may be lost in buffers.
                        raise ConnectionResetError("the receiver did not answer the close")
                    self.confirmed_seq = frame.seq
                    self.done = True
                    return
                since_ping += 1
                if since_ping >= _PING_EVERY or len(queue) == 0:
                    await pings.send(ws, frame.seq)
                    since_ping = 0
                await pings.at_most(_MAX_UNCONFIRMED_PINGS)

    async def _read_replies(self, ws: Socket, pings: _Pings) -> None:
        """Read what the receiver sends: pongs confirm frames, pings get their pongs."""
        try:
            with contextlib.suppress(Exception):
                async for message in ws:
                    if message.type is WSMsgType.PONG:
                        seq = pings.answered(message.data)
                        if seq is not None:
                            self.confirmed_seq = max(self.confirmed_seq, seq)
                    elif message.type is WSMsgType.PING:
                        await ws.pong(message.data)
        finally:
            pings.lost()
