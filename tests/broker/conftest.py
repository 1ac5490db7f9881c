"""Fixtures for the broker parts: a client of the session's nats-server, and work-queue
streams with a durable pull consumer, each test its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import nats as nats_py
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from worker.testing import NatsServer


@dataclass(frozen=True)
class Queue:
    """A work-queue stream on ``subject`` and its durable pull consumer."""

    stream: str
    subject: str
    durable: str


MakeQueue = Callable[..., Awaitable[Queue]]


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[Client]:
    client = await nats_py.connect(nats.url)
    yield client
    await client.close()


@pytest.fixture
async def make_queue(nc: Client) -> AsyncIterator[MakeQueue]:
    """Factory of queues (``ack_wait`` in seconds); their streams are deleted at the end."""
    js = nc.jetstream()
    made: list[str] = []

    async def make(*, ack_wait: float = 30.0) -> Queue:
        tag = uuid.uuid4().hex[:8]
        queue = Queue(stream=f"Q_{tag}", subject=f"test.queue.{tag}", durable=f"pool-{tag}")
        await js.add_stream(
            StreamConfig(
                name=queue.stream, subjects=[queue.subject], retention=RetentionPolicy.WORK_QUEUE
            )
        )
        made.append(queue.stream)
        await js.add_consumer(
            queue.stream,
            ConsumerConfig(
                durable_name=queue.durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait
            ),
        )
        return queue

    yield make
    for stream in made:
        await js.delete_stream(stream)
