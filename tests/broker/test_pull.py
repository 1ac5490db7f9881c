"""The bounded pull-consumer loop against a real nats-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats as nats_py
from nats import errors as nats_errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy
from tenacity import wait_incrementing

from tests.broker.conftest import MakeQueue
from worker.broker.backoff import delay_after
from worker.broker.pull import PullConsumer
from worker.testing import NatsServer, wait_for


async def _publish(nc: Client, subject: str, n: int, *, start: int = 0) -> None:
    js = nc.jetstream()
    for i in range(start, start + n):
        await js.publish(subject, str(i).encode())


async def test_every_message_is_handled_never_more_than_limit_at_once(
    nc: Client, make_queue: MakeQueue
) -> None:
    queue = await make_queue()
    release = asyncio.Event()
    handled: list[str] = []
    peak = 0

    async def handle(msg: Msg) -> None:
        nonlocal peak
        peak = max(peak, pull.in_flight)
        await release.wait()
        handled.append(msg.data.decode())
        await msg.ack()

    pull = PullConsumer(
        nc.jetstream(), stream=queue.stream, durable=queue.durable, handle=handle, limit=4, batch=3
    )
    await _publish(nc, queue.subject, 30)
    await pull.start()
    try:
        await wait_for(lambda: pull.in_flight == 4, what="four messages held")
        release.set()

        async def all_acked() -> bool:
            info = await nc.jetstream().stream_info(queue.stream)
            return info.state.messages == 0

        await wait_for(all_acked, what="every message acked")
    finally:
        await pull.stop()
    assert sorted(handled, key=int) == [str(i) for i in range(30)]
    assert peak <= 4


async def test_stop_then_wait_returns_the_handlers_still_running(
    nc: Client, make_queue: MakeQueue
) -> None:
    queue = await make_queue()
    slow = asyncio.Event()
    finished: list[str] = []

    async def handle(msg: Msg) -> None:
        if msg.data == b"slow":
            await slow.wait()
        finished.append(msg.data.decode())
        await msg.ack()

    pull = PullConsumer(
        nc.jetstream(), stream=queue.stream, durable=queue.durable, handle=handle, limit=8, batch=8
    )
    js = nc.jetstream()
    await js.publish(queue.subject, b"fast")
    await js.publish(queue.subject, b"slow")
    await pull.start()
    await wait_for(
        lambda: finished == ["fast"] and pull.in_flight == 1,
        what="the fast one done, the slow held",
    )
    await pull.stop()
    (pending,) = await pull.wait(0.05)
    assert not pending.done()
    slow.set()
    assert await pull.wait(10) == set()
    assert finished == ["fast", "slow"]


async def test_a_handler_that_raises_does_not_stop_the_loop(
    nc: Client, make_queue: MakeQueue
) -> None:
    queue = await make_queue()
    handled: list[bytes] = []

    async def handle(msg: Msg) -> None:
        await msg.ack()
        if msg.data == b"0":
            raise RuntimeError("a bug in one handler")
        handled.append(msg.data)

    pull = PullConsumer(
        nc.jetstream(), stream=queue.stream, durable=queue.durable, handle=handle, limit=1, batch=1
    )
    await pull.start()
    try:
        await _publish(nc, queue.subject, 3)
        await wait_for(lambda: handled == [b"1", b"2"], what="the messages after the crash")
    finally:
        await pull.stop()


async def test_fetching_resumes_after_the_server_restarts(tmp_path: Path) -> None:
    server = NatsServer(store_dir=tmp_path / "nats").start()
    nc = await nats_py.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    js = nc.jetstream()
    await js.add_stream(name="RESTART", subjects=["restart.jobs"])
    await js.add_consumer("RESTART", durable_name="pool", ack_policy=AckPolicy.EXPLICIT)
    handled: set[bytes] = set()

    async def handle(msg: Msg) -> None:
        handled.add(msg.data)
        await msg.ack()

    pull = PullConsumer(js, stream="RESTART", durable="pool", handle=handle, limit=4, batch=4)
    await pull.start()
    try:
        await _publish(nc, "restart.jobs", 5)
        await wait_for(lambda: len(handled) == 5, what="the first five handled")
        server.stop()
        server.start()

        async def published_again() -> bool:
            # JetStream answers again once the server has recovered its streams.
            try:
                await js.publish("restart.jobs", b"after", timeout=0.5)
            except (nats_errors.TimeoutError, nats_errors.NoRespondersError):
                return False
            return True

        await wait_for(published_again, what="JetStream back")
        await wait_for(lambda: b"after" in handled, what="a message fetched after the restart")
    finally:
        await pull.stop()
        await nc.close()
        server.close()


def test_failed_fetches_wait_longer_each_time_up_to_a_cap() -> None:
    wait = wait_incrementing(start=0.2, increment=0.2, max=2.0)
    assert [round(delay_after(wait, n), 6) for n in (1, 2, 3, 10, 50)] == [0.2, 0.4, 0.6, 2.0, 2.0]
