"""The live feed's connection and fast path, the catch-up that needs no consumer, and the
send watch: against the real nats-server."""

from __future__ import annotations

import asyncio
import uuid

import nats as nats_client
import orjson

from tests.streaming.helpers import LOOPBACK, assert_run, resolved
from worker.http.sockets import SendWatch
from worker.streaming.feed import Reader
from worker.streaming.frames import PROCESSING, STARTED, Draft
from worker.streaming.hub import StreamHub, StreamOptions
from worker.streaming.live import header_int
from worker.testing import NatsServer, wait_for

REPUBLISHED = (
    b"NATS/1.0\r\nNats-Msg-Id: t:7\r\nNats-Stream: AGENTOS_FRAMES\r\n"
    b"Nats-Subject: agentos.frames.t\r\nNats-Sequence: 1234\r\n"
    b"Nats-Time-Stamp: 2025-01-01T00:00:00.1Z\r\nNats-Last-Sequence: 1200\r\n\r\n"
)


def test_header_int_reads_the_republish_headers() -> None:
    assert header_int(REPUBLISHED, b"\r\nNats-Sequence:") == 1234
    assert header_int(REPUBLISHED, b"\r\nNats-Last-Sequence:") == 1200
    assert header_int(REPUBLISHED, b"\r\nNats-Missing:") is None
    assert header_int(b"NATS/1.0\r\nNats-Last-Sequence:\r\n\r\n", b"\r\nNats-Last-Sequence:") == 0


async def settled(readers: list[Reader], count: int) -> None:
    """Wait until ``count`` readers are following (subscribed, and caught up with the log)."""
    await wait_for(
        lambda: len(readers) == count and not any(r.catching_up for r in readers),
        what=f"{count} readers following",
    )


async def run_and_watch(hub: StreamHub, watchers: int) -> list[list[dict[str, object]]]:
    task_id = uuid.uuid4().hex
    following: list[Reader] = []

    async def watch() -> list[dict[str, object]]:
        async with hub.reader(task_id) as reader:
            following.append(reader)
            return [orjson.loads(f.data) async for f in reader]

    readers = [asyncio.create_task(watch()) for _ in range(watchers)]
    await settled(following, watchers)  # the run's frames reach them live
    agent = resolved("steps", {"steps": 20, "step_delay": "5ms"})
    await hub.run(agent, "x", task_id=task_id, time_limit=10)
    return await asyncio.wait_for(asyncio.gather(*readers), 10)


async def test_live_frames_take_the_fast_path_on_their_own_connection(hub: StreamHub) -> None:
    assert hub.live.client is not hub.log.nc
    before = hub.live.fast_delivered
    for frames in await run_and_watch(hub, 3):
        assert_run(frames)
        assert len(frames) == 22
    assert hub.live.fast_delivered > before  # one per live frame, however many readers


async def test_live_frames_on_the_shared_connection_take_the_public_api(
    nats: NatsServer,
) -> None:
    nc = await nats_client.connect(nats.url)
    options = StreamOptions(own_live_connection=False)
    hub = StreamHub(nc=nc, js=nc.jetstream(), service="test", policy=LOOPBACK, options=options)
    await hub.start()
    try:
        assert hub.live.client is nc
        for frames in await run_and_watch(hub, 2):
            assert_run(frames)
        assert hub.live.fast_delivered == 0
    finally:
        await hub.stop()
        await nc.close()


async def test_watchers_of_a_task_with_nothing_to_replay_create_no_consumer(
    hub: StreamHub,
) -> None:
    task_id = uuid.uuid4().hex
    first = Draft(status=STARTED, progress=0, message="started")
    await hub.log.claim(
        task_id, first.encode(task_id=task_id, seq=1, attempt=1), seq=1, after_sseq=0
    )
    subject = hub.log.subject(task_id)
    following: list[Reader] = []

    async def watch() -> list[int]:
        async with hub.reader(task_id, from_seq=2) as reader:
            following.append(reader)
            return [f.seq async for f in reader]

    readers = [asyncio.create_task(watch()) for _ in range(20)]
    await settled(following, 20)
    consumers = await hub.log.js.consumers_info(hub.options.stream)
    assert not [c for c in consumers if c.config.filter_subject == subject]
    for seq in range(2, 6):
        draft = Draft(status=PROCESSING, progress=seq, message="step", partial_result="x")
        await hub.log.publish_async(
            task_id, draft.encode(task_id=task_id, seq=seq, attempt=1), seq=seq
        )
    final = Draft(status="completed", progress=100, message="done", result="r")
    await hub.log.publish_async(task_id, final.encode(task_id=task_id, seq=6, attempt=1), seq=6)
    for seqs in await asyncio.wait_for(asyncio.gather(*readers), 10):
        assert seqs == [2, 3, 4, 5, 6]


async def test_send_watch_cancels_only_a_send_that_waits_too_long() -> None:
    loop = asyncio.get_running_loop()

    async def pump(*, stuck: bool) -> bool:
        watch = SendWatch(0.2)
        try:
            # The sleeps play the scenario, they order nothing: a send that never completes
            # (cancelled by the watch), and sends that complete with pauses between them.
            if stuck:
                watch.since = loop.time()  # a send the socket never takes
                await asyncio.sleep(5)
            else:
                for _ in range(10):  # sends that complete, with waits for frames between
                    watch.since = loop.time()
                    await asyncio.sleep(0.01)
                    watch.since = 0.0
                    await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            return watch.absorb()
        finally:
            watch.close()
        return False

    assert await asyncio.wait_for(pump(stuck=True), 2) is True
    assert await asyncio.wait_for(pump(stuck=False), 2) is False


async def test_replays_short_and_long_deliver_every_frame_short_ones_without_a_consumer(
    hub: StreamHub,
) -> None:
    for stored in (12, 120):  # direct gets, then an ordered consumer
        task_id = uuid.uuid4().hex
        acks = []
        for seq in range(1, stored + 1):
            draft = Draft(status=STARTED if seq == 1 else PROCESSING, progress=0, message="m")
            data = draft.encode(task_id=task_id, seq=seq, attempt=1)
            acks.append(await hub.log.publish_async(task_id, data, seq=seq))
        await asyncio.gather(*acks)

        following: list[Reader] = []

        async def watch(
            from_seq: int, task_id: str = task_id, following: list[Reader] = following
        ) -> list[int]:
            async with hub.reader(task_id, from_seq=from_seq) as reader:
                following.append(reader)
                return [f.seq async for f in reader]

        readers = [asyncio.create_task(watch(stored - 8)) for _ in range(5)]
        await settled(following, 5)  # their replays done
        if stored < 32:
            consumers = await hub.log.js.consumers_info(hub.options.stream)
            subject = hub.log.subject(task_id)
            assert not [c for c in consumers if c.config.filter_subject == subject]
        final = Draft(status="completed", progress=100, message="done", result="r")
        data = final.encode(task_id=task_id, seq=stored + 1, attempt=1)
        await (await hub.log.publish_async(task_id, data, seq=stored + 1))
        for seqs in await asyncio.wait_for(asyncio.gather(*readers), 10):
            assert seqs == list(range(stored - 8, stored + 2))


async def test_a_long_replay_goes_at_the_readers_pace_and_leaves_no_consumer(
    hub: StreamHub,
) -> None:
    # More frames than any client-side buffer of a push consumer: a slow reader of a finished
    # task must still get every one, in order (a push consumer dropped frames here and hung).
    stored = 6000
    task_id = uuid.uuid4().hex
    acks = []
    for seq in range(1, stored + 1):
        if seq == stored:
            draft = Draft(status="completed", progress=100, message="done", result="r")
        else:
            draft = Draft(status=STARTED if seq == 1 else PROCESSING, progress=0, message="m")
        data = draft.encode(task_id=task_id, seq=seq, attempt=1)
        acks.append(await hub.log.publish_async(task_id, data, seq=seq))
    await asyncio.gather(*acks)

    async def watch() -> list[int]:
        seqs = []
        async with hub.reader(task_id, from_seq=1) as reader:
            async for frame in reader:
                seqs.append(frame.seq)
                if frame.seq % 500 == 0:
                    await asyncio.sleep(0.05)  # the scenario: a reader slower than the server
        return seqs

    assert await asyncio.wait_for(watch(), 60) == list(range(1, stored + 1))
    consumers = await hub.log.js.consumers_info(hub.options.stream)
    assert not [c for c in consumers if c.config.filter_subject == hub.log.subject(task_id)]
