"""The worker's one NATS connection, its JetStream context, and its health."""

from __future__ import annotations

import contextlib

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import NATS_CONNECTED

log = get_logger(__name__)


class Broker:
    """A connected NATS client that reconnects forever and reports whether it is up."""

    def __init__(self, *, service: str) -> None:
        self._service = service
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._closing = False

    @property
    def client(self) -> Client:
        """The NATS client (after ``connect``)."""
        if self.nc is None:
            raise RuntimeError("Broker.connect() was not awaited")
        return self.nc

    @property
    def jetstream(self) -> JetStreamContext:
        """The JetStream context (after ``connect``)."""
        if self.js is None:
            raise RuntimeError("Broker.connect() was not awaited")
        return self.js

    @property
    def connected(self) -> bool:
        """True while the client holds a live connection."""
        return self.nc is not None and self.nc.is_connected

    async def connect(self, servers: str, *, name: str) -> None:
        """Connect to ``servers`` (comma-separated URLs)."""

        async def disconnected() -> None:
            NATS_CONNECTED.labels(self._service).set(0)
            if not self._closing:
                log.warning("nats disconnected")

        async def reconnected() -> None:
            NATS_CONNECTED.labels(self._service).set(1)
            log.info("nats reconnected", url=str(self.nc.connected_url) if self.nc else None)

        async def error(exc: Exception) -> None:
            log.warning("nats error", error=str(exc))

        async def closed() -> None:
            if not self._closing:
                log.error("nats connection closed")

        self.nc = await nats.connect(
            servers=[s.strip() for s in servers.split(",") if s.strip()],
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
            closed_cb=closed,
        )
        self.js = self.nc.jetstream()
        NATS_CONNECTED.labels(self._service).set(1)

    async def close(self) -> None:
        """Flush what is pending and close.

        Not ``drain()``: every component has already stopped its subscriptions, and draining
        a pull subscription whose messages were fetched (never "processed" by a callback)
        waits for its whole timeout.
        """
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)
            await self.nc.close()
        NATS_CONNECTED.labels(self._service).set(0)
