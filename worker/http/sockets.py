"""Serving frames over WebSocket (aiohttp) and SSE (aiohttp-sse): pumps and close codes.

Close codes a client can act on:

====  ===============================================================================
1000  the final frame was sent (``events``), or the client closed
1001  the worker is shutting down: reconnect (to any worker) with ``from_seq``
1003  a binary message was sent: only JSON text is accepted
1009  an inbound message was over ``WORKER_WS_MAX_MESSAGE_BYTES``
1011  internal error
4008  the reader fell hopelessly behind; the reason says ``resume from seq N``
====  ===============================================================================

Browsers cannot set ``Authorization`` on a WebSocket, so the upgrade also accepts the bearer
token as a subprotocol, ``base64url.bearer.agentos.<token in base64url>`` (the Kubernetes API
server's pattern), offered beside ``agentos.v1``, which the server selects; the token stays out
of URLs and access logs, unlike ``?access_token=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web
from aiohttp_sse import EventSourceResponse

from worker.http.envelope import error_body
from worker.streaming.feed import Reader
from worker.streaming.frames import WireFrame
from worker.streaming.hub import StreamHub, StreamOptions
from worker.streaming.outbox import GoingAway, ReaderTooSlow
from worker.telemetry.metrics import (
    STREAM_FRAME_LAG,
    STREAM_FRAMES_DROPPED,
    STREAM_FRAMES_SENT,
    STREAM_SLOW_READERS,
    WEBSOCKET_CONNECTIONS,
)

PROTOCOL = "agentos.v1"
DONE = 1000
GOING_AWAY = 1001
UNSUPPORTED_DATA = 1003
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
SLOW_READER = 4008
_COUNT_EVERY = 256  # frames sent in a burst before the sent counter is brought up to date


def bound_send_buffer(request: web.Request, options: StreamOptions) -> None:
    """Cap the kernel's send buffer of a streaming socket: with autotuning a reader that stops
    reading can hold megabytes of kernel memory, and the outbox would never see it fall behind."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if options.socket_buffer and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options.socket_buffer)


def websocket(options: StreamOptions) -> web.WebSocketResponse:
    """A server WebSocket with keepalive pings and a bound on inbound messages."""
    return web.WebSocketResponse(
        heartbeat=options.ws_heartbeat,
        max_msg_size=options.ws_max_message_bytes,
        protocols=(PROTOCOL,),
    )


class Connections:
    """Counts a server WebSocket in ``agentos_websocket_connections{service}`` and lists it
    with the hub, which closes it with 1001 at shutdown."""

    def __init__(self, hub: StreamHub, ws: web.WebSocketResponse) -> None:
        self._hub = hub
        self._ws = ws
        self._gauge = WEBSOCKET_CONNECTIONS.labels(hub.service)

    def __enter__(self) -> None:
        self._gauge.inc()
        self._hub.connections.add(self._ws)

    def __exit__(self, *_: object) -> None:
        self._gauge.dec()
        self._hub.connections.discard(self._ws)


class SendWatch:
    """Cancels the task pumping frames when one send has waited ``timeout`` seconds for the
    socket (a reader that stopped reading).

    A timer armed and cancelled around every send (``asyncio.timeout``) costs more than the
    send itself at thousands of frames a second; this one looks every ``timeout / 4``, so a
    stalled reader is found between ``timeout`` and ``1.25 * timeout``.
    """

    def __init__(self, timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._timeout = timeout
        self.since = 0.0
        """Loop time the pending send began (0: none pending)."""
        self.fired = False
        self._handle = self._loop.call_later(timeout / 4, self._check)

    def _check(self) -> None:
        if self.since and self._loop.time() - self.since >= self._timeout:
            self.fired = True
            if self._task is not None:
                self._task.cancel()
            return
        self._handle = self._loop.call_later(self._timeout / 4, self._check)

    def close(self) -> None:
        """Stop watching."""
        self._handle.cancel()

    def absorb(self) -> bool:
        """After a ``CancelledError``: True (and the cancellation undone) if this watch fired."""
        if not self.fired or self._task is None:
            return False
        self._task.uncancel()
        return True


async def pump_websocket(
    ws: web.WebSocketResponse, reader: Reader, *, service: str, send_timeout: float
) -> tuple[int, str]:
    """Send ``reader``'s frames on ``ws`` until the last; return the close code and reason.

    Per frame: take it from the outbox, send its bytes (shared by every reader of the task),
    observe its lag. Nothing else is allocated or armed per frame, and the sent counter (a
    lock per increment) is added to once per burst of frames.
    """
    sent = STREAM_FRAMES_SENT.labels(service, "websocket")
    lag = STREAM_FRAME_LAG.labels(service, "websocket")
    outbox = reader.outbox
    loop = asyncio.get_running_loop()
    watch = SendWatch(send_timeout)
    frame: WireFrame | None = None
    unsent_count = 0
    try:
        while (frame := await outbox.get()) is not None:
            watch.since = loop.time()
            await ws.send_frame(frame.data, WSMsgType.TEXT)
            watch.since = 0.0
            lag.observe(max(0.0, time.time() - frame.ts))
            unsent_count += 1
            if unsent_count >= _COUNT_EVERY or not len(outbox):
                sent.inc(unsent_count)
                unsent_count = 0
    except asyncio.CancelledError:
        if frame is None or not watch.absorb():
            raise
        return _too_slow(service, "websocket", reader, frame.first_seq, send_timeout)
    except ReaderTooSlow as exc:
        return _too_slow(service, "websocket", reader, exc.resume_seq, None)
    except GoingAway:
        return GOING_AWAY, f"worker shutting down; resume from seq {reader.next_seq}"
    finally:
        watch.close()
        if unsent_count:
            sent.inc(unsent_count)
    return DONE, "final frame sent"


def slow_reader_closed(service: str, transport: str, reader: Reader) -> None:
    """Count a reader closed for falling hopelessly behind, and the frames it never got."""
    STREAM_SLOW_READERS.labels(service, transport).inc()
    STREAM_FRAMES_DROPPED.labels(service, "slow_reader").inc(reader.outbox.dropped)


def _too_slow(
    service: str, transport: str, reader: Reader, resume_seq: int, stalled: float | None
) -> tuple[int, str]:
    slow_reader_closed(service, transport, reader)
    why = f"no frame taken for {stalled:g}s" if stalled else "too far behind"
    return SLOW_READER, f"reader too slow ({why}); resume from seq {resume_seq}"


async def _frames(first: WireFrame | None, reader: Reader) -> AsyncIterator[WireFrame]:
    if first is not None:
        yield first
    async for frame in reader:
        yield frame


async def pump_sse(
    resp: EventSourceResponse,
    reader: Reader,
    *,
    service: str,
    request_id: str,
    first: WireFrame | None = None,
) -> None:
    """Send ``reader``'s frames as SSE events (``id`` = seq, ``event`` = status)."""
    sent = STREAM_FRAMES_SENT.labels(service, "sse")
    lag = STREAM_FRAME_LAG.labels(service, "sse")
    try:
        async for frame in _frames(first, reader):
            await resp.send(frame.data.decode(), id=str(frame.seq), event=frame.status)
            sent.inc()
            lag.observe(max(0.0, time.time() - frame.ts))
    except ReaderTooSlow as exc:
        _, reason = _too_slow(service, "sse", reader, exc.resume_seq, None)
        body = error_body(
            "slow_reader", reason, request_id, resume_from_seq=exc.resume_seq
        ).decode()
        await resp.send(body, event="error")
    except GoingAway:
        pass  # the client reconnects with Last-Event-ID
