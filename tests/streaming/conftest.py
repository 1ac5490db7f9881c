"""An in-process StreamHub on the session's real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats as nats_client
import pytest

from tests.streaming.helpers import LOOPBACK
from worker.streaming.hub import StreamHub, StreamOptions
from worker.testing import NatsServer


@pytest.fixture
async def hub(nats: NatsServer) -> AsyncIterator[StreamHub]:
    """A started hub using the pool's default frames stream, stopped after the test."""
    nc = await nats_client.connect(nats.url)
    streams = StreamHub(
        nc=nc, js=nc.jetstream(), service="test", policy=LOOPBACK, options=StreamOptions()
    )
    await streams.start()
    yield streams
    await streams.stop()
    await nc.close()
