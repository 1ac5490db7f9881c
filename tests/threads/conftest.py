"""Fixtures for threads: stores on a bucket of each test's own, each on its own NATS connection
(the way two workers of a pool see the same bucket), and a stream hub; for the pool tests,
worker settings of each test's own, a callback receiver and a NATS connection to publish jobs
on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats as nats_py
import pytest
from nats.aio.client import Client

from tests.jobs.receiver import Receiver
from tests.threads import pool
from worker.config import Settings
from worker.outbound.ssrf import CallbackPolicy
from worker.streaming.hub import StreamHub, StreamOptions
from worker.testing import NatsServer
from worker.threads import ThreadStore

OpenStore = Callable[..., Awaitable[ThreadStore]]
Connect = Callable[[], Awaitable[Client]]


@pytest.fixture
def bucket_name() -> str:
    return f"threads_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def connect(nats: NatsServer) -> AsyncIterator[Connect]:
    """Factory of NATS connections, all closed at the end."""
    opened: list[Client] = []

    async def open_one() -> Client:
        client = await nats_py.connect(nats.url)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        await client.close()


@pytest.fixture
async def open_store(connect: Connect, bucket_name: str) -> AsyncIterator[OpenStore]:
    """Factory of thread stores ("workers") on the test's bucket, each on a new connection."""
    first: list[Client] = []

    async def open_one(**settings: Any) -> ThreadStore:
        nc = await connect()
        first.append(nc)
        values = {"threads_bucket": bucket_name, "worker_id": f"w-{len(first)}", **settings}
        return await ThreadStore.open(nc=nc, js=nc.jetstream(), settings=Settings(**values))

    yield open_one
    if first:
        await first[0].jetstream().delete_key_value(bucket_name)


@pytest.fixture
async def hub(connect: Connect) -> AsyncIterator[StreamHub]:
    """A started StreamHub on the pool's default frames stream, stopped after the test."""
    nc = await connect()
    streams = StreamHub(
        nc=nc, js=nc.jetstream(), service="test", policy=CallbackPolicy([]), options=StreamOptions()
    )
    await streams.start()
    yield streams
    await streams.stop()


@pytest.fixture
def pool_env() -> dict[str, str]:
    """Settings for the worker processes of one pool test (see ``tests.threads.pool``)."""
    return pool.pool_env()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real callback receiver on loopback."""
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def nc(connect: Connect) -> Client:
    """A NATS connection of the test's own, as the Go backend publishes on."""
    return await connect()
