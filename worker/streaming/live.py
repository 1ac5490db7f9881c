"""The connection that carries this worker's live frames, and its fast path through nats-py.

A watcher costs one republished NATS message per frame, so at 1,000 watchers of 10 frames a
second nats-py's own per-message work dominates the worker: parsing the six headers JetStream
adds (of which a reader needs two), building a ``Msg``, and a queue hop plus a task switch
through the subscription's own task. Live feeds therefore subscribe on a connection of their own
(thousands of frames a second never queue in front of job acknowledgements and KV reads on the
shared one), a ``nats.aio.client.Client`` whose ``_process_msg`` hands the raw header block and
payload of a live subscription straight to its handler, from the read loop. Measured at 10,000
republished frames a second over 1,000 subscriptions, receiving and parsing a frame took 40 µs
of CPU through the public API and 22 µs through this path.

That hook is nats-py's private API, so the fast path is only an optimisation over the public
one: every live subscription also has an ordinary callback, which handles whatever does not
take the fast path (the first messages before the hook is registered, or every message should
a future nats-py stop calling ``_process_msg``). If the own connection cannot be opened the
feeds use the shared connection's public API.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import urlunparse

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from worker.broker.connection import ConnectOptions, open_connection
from worker.streaming.log import LAST_SEQUENCE_HEADER, SEQUENCE_HEADER
from worker.telemetry.logs import get_logger

log = get_logger(__name__)

LiveHandler = Callable[[int, int, bytes], None]
"""Called with a frame's stream sequence, the task's previous stream sequence, and its JSON."""

_SEQUENCE = b"\r\n" + SEQUENCE_HEADER.encode() + b":"
_LAST_SEQUENCE = b"\r\n" + LAST_SEQUENCE_HEADER.encode() + b":"
_CRLF = b"\r\n"
_EXPECTED = ["self", "sid", "subject", "reply", "data", "headers"]
_HOOKABLE = list(inspect.signature(Client._process_msg).parameters) == _EXPECTED


def header_int(block: bytes, name: bytes) -> int | None:
    """The integer value of header ``name`` (``b"\\r\\nName:"``) in a raw NATS header block."""
    start = block.find(name)
    if start < 0:
        return None
    start += len(name)
    end = block.find(_CRLF, start)
    value = block[start:end].strip()
    return int(value) if value else 0


class _LiveClient(Client):
    """A nats-py client that passes the messages of registered subscriptions to their handler
    unparsed (the hook is an optimisation: see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.fast: dict[int, LiveHandler] = {}
        self.fast_delivered = 0

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        handler = self.fast.get(sid)
        if handler is None or not headers:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        try:
            sseq = header_int(headers, _SEQUENCE)
            prev = header_int(headers, _LAST_SEQUENCE) or 0
        except ValueError:
            sseq = None
        if sseq is None:  # not a republished frame: the ordinary path decides
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        self.fast_delivered += 1
        handler(sseq, prev, data)


class LiveConnection:
    """Subscriptions to republished frames, on an own connection when it can have one."""

    def __init__(
        self,
        *,
        shared: Client,
        connect: ConnectOptions | None = None,
        own_connection: bool = True,
    ) -> None:
        """``connect``: how the own connection reaches NATS (the worker's credentials and
        TLS); None: the shared connection's servers, with no credentials."""
        self._shared = shared
        self._connect = connect
        self._wants_own = own_connection
        self._own: _LiveClient | None = None

    @property
    def client(self) -> Client:
        """The connection live subscriptions are on."""
        return self._own or self._shared

    @property
    def fast_delivered(self) -> int:
        """Frames that took the fast path so far."""
        return self._own.fast_delivered if self._own is not None else 0

    async def start(self) -> None:
        """Open the own connection to the servers the shared one uses (else stay on it)."""
        if not self._wants_own:
            return
        if not _HOOKABLE:
            log.info("nats-py without the expected hook: live frames take the public API")
        own = _LiveClient()
        options = self._connect or ConnectOptions(
            servers=tuple(urlunparse(uri) for uri in self._shared.servers)
        )
        try:
            await open_connection(
                own,
                options,
                name="agentos-worker-live-frames",
                error_cb=self._error,
                reconnect_time_wait=1,
                connect_timeout=5,
            )
        except Exception as exc:  # the shared connection serves, only a little slower
            log.warning("live frames use the shared NATS connection", error=repr(exc))
            return
        self._own = own

    async def stop(self) -> None:
        """Close the own connection."""
        own, self._own = self._own, None
        if own is not None:
            with contextlib.suppress(Exception):
                await own.close()

    @staticmethod
    async def _error(exc: Exception) -> None:
        log.warning("live frames connection error", error=repr(exc))

    async def subscribe(self, subject: str, handler: LiveHandler) -> Subscription:
        """Follow ``subject``: ``handler`` gets each republished frame."""

        async def on_message(msg: Msg) -> None:
            headers = msg.headers or {}
            try:
                sseq = int(headers[SEQUENCE_HEADER])
                prev = int(headers.get(LAST_SEQUENCE_HEADER) or 0)
            except (KeyError, ValueError):
                return
            handler(sseq, prev, msg.data)

        client = self.client
        sub: Subscription = await client.subscribe(
            subject,
            cb=on_message,
            pending_msgs_limit=65536,
            pending_bytes_limit=64 << 20,
        )
        if isinstance(client, _LiveClient) and _HOOKABLE:
            client.fast[sub._id] = handler
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        """Stop following ``sub``."""
        client: Any = sub._conn
        if isinstance(client, _LiveClient):
            client.fast.pop(sub._id, None)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
