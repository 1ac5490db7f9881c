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
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import urlsplit

import websockets
from opentelemetry import propagate, trace
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)
from websockets.asyncio.client import ClientConnection

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

log = get_logger(__name__)
TRACER_NAME = "agentos.worker"
_MAX_UNCONFIRMED_PINGS = 32
_PING_EVERY = 64
_RETRYABLE = (OSError, TimeoutError, websockets.WebSocketException)


@dataclass(frozen=True, kw_only=True)
class PushOptions:
    """How the push client behaves."""

    give_up: float = 300.0
    max_backoff: float = 10.0
    open_timeout: float = 10.0
    queue_frames: int = 256
    queue_bytes: int = 1 << 20


class _Dropped(Exception):
    """The receiver went away after the connection made progress (restart the give-up clock)."""


class Pusher:
    """Sends the frames of one attempt of a task to ``url`` until its final frame is confirmed."""

    def __init__(
        self,
        *,
        fanout: Fanout,
        task_id: str,
        url: str,
        attempt: asyncio.Future[int],
        service: str,
        options: PushOptions,
        traceparent: str | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._fanout = fanout
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
        """Push until done or given up; never raises (but is cancellable)."""
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
                except (RetryError, *_RETRYABLE):
                    pass
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
            retry=retry_if_exception_type(_RETRYABLE),
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
                ws = await websockets.connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=self._options.open_timeout,
                    compression=None,
                    proxy=None,
                    ping_interval=20,
                    ping_timeout=20,
                    max_size=64 << 10,
                )
            except Exception:
                STREAM_PUSH_CONNECTIONS.labels(self._service, "error").inc()
                raise
            STREAM_PUSH_CONNECTIONS.labels(self._service, "ok").inc()
            gauge = WEBSOCKET_CONNECTIONS.labels(self._service)
            gauge.inc()
            drain = asyncio.create_task(self._discard_incoming(ws))
            try:
                await self._send_frames(ws)
                span.set_attribute("agentos.confirmed_seq", self.confirmed_seq)
            finally:
                gauge.dec()
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
                with contextlib.suppress(Exception):
                    await ws.close()

    async def _send_frames(self, ws: ClientConnection) -> None:
        queue = FrameQueue(
            max_frames=self._options.queue_frames,
            max_bytes=self._options.queue_bytes,
            lossless=True,
        )
        pings: deque[tuple[Awaitable[float], int]] = deque()
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
                await ws.send(frame.data, text=True)
                self._sent.inc()
                if frame.ts:
                    self._lag.observe(max(0.0, time.time() - frame.ts))
                if self._ends(frame):
                    await ws.close(1000, "final frame sent")
                    if ws.protocol.close_rcvd is None:
                        raise websockets.ConnectionClosedError(None, None)
                    self.confirmed_seq = frame.seq
                    self.done = True
                    return
                since_ping += 1
                if since_ping >= _PING_EVERY or len(queue) == 0:
                    pings.append((await ws.ping(), frame.seq))
                    since_ping = 0
                while pings and (_done(pings[0][0]) or len(pings) > _MAX_UNCONFIRMED_PINGS):
                    waiter, seq = pings.popleft()
                    await waiter  # raises ConnectionClosed if the receiver went away
                    self.confirmed_seq = max(self.confirmed_seq, seq)

    @staticmethod
    async def _discard_incoming(ws: ClientConnection) -> None:
        """Read (and ignore) what the receiver sends, so pongs and close frames are seen."""
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass


def _done(waiter: Awaitable[float]) -> bool:
    return isinstance(waiter, asyncio.Future) and waiter.done()
