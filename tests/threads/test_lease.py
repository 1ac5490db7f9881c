"""The thread lease: one run at a time per thread across the pool; a dead holder's lease expires."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest

from tests.threads.conftest import Connect, OpenStore
from worker.errors import ThreadBusy
from worker.testing import wait_for
from worker.threads import Holder, ThreadStore, keys
from worker.threads.bucket import ThreadsBucket


async def raw_bucket(connect: Connect, name: str) -> ThreadsBucket:
    """The bucket as another party sees it, to write leases no live run holds."""
    nc = await connect()
    return await ThreadsBucket.open(nc=nc, js=nc.jetstream(), name=name, retention=3600, replicas=1)


async def test_two_holders_race_and_exactly_one_wins(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    thread = uuid.uuid4().hex
    release = asyncio.Event()
    won: list[str] = []
    refused: list[ThreadBusy] = []

    async def run(name: str, store: ThreadStore) -> None:
        try:
            async with store.leases.hold(thread, Holder(name, "r")):
                won.append(name)
                await release.wait()
        except ThreadBusy as exc:
            refused.append(exc)

    tasks = [asyncio.create_task(run(f"w{i}", s)) for i, s in enumerate((a, b, a, b))]
    await wait_for(
        lambda: len(won) + len(refused) == 4 or len(refused) == 3, what="every holder's answer"
    )
    assert len(won) == 1
    assert [(e.status, e.code) for e in refused] == [(409, "thread_busy")] * 3
    release.set()
    await asyncio.gather(*tasks)


async def test_a_waiting_holder_gets_the_thread_after_release(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    thread = uuid.uuid4().hex
    order: list[str] = []
    first_in = asyncio.Event()
    let_go = asyncio.Event()

    async def first() -> None:
        async with a.lease(thread, "run-1"):
            order.append("first")
            first_in.set()
            await let_go.wait()
            order.append("first done")

    async def second() -> None:
        await first_in.wait()
        async with b.lease(thread, "run-2", wait=30):
            order.append("second")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_in.wait()
    state = await b.get(thread)
    assert state.status == "busy"
    with pytest.raises(ThreadBusy, match="busy: run 'run-1' is writing it"):
        async with b.lease(thread, "run-3"):
            pass
    let_go.set()
    await asyncio.gather(*tasks)
    assert order == ["first", "first done", "second"]
    assert (await a.get(thread)).status == "idle"


async def test_waiting_gives_up_at_its_deadline(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    thread = uuid.uuid4().hex
    async with a.lease(thread, "holder"):
        started = time.monotonic()
        with pytest.raises(ThreadBusy):
            async with b.lease(thread, "waiter", wait=0.3):
                pass
        assert time.monotonic() - started >= 0.2  # it did wait, and then stopped


async def test_an_expired_lease_is_taken_over(
    open_store: OpenStore, connect: Connect, bucket_name: str
) -> None:
    store = await open_store(thread_lease_ttl=1)
    thread = uuid.uuid4().hex
    # A holder that died a moment ago: its lease stays in the bucket and nobody renews it.
    dead = {"worker_id": "dead-worker", "run_id": "run-0", "expires_at": time.time() + 3}
    await (await raw_bucket(connect, bucket_name)).put(keys.lease(thread), orjson.dumps(dead))
    with pytest.raises(ThreadBusy, match="run-0"):
        async with store.lease(thread, "run-1"):
            pass
    async with store.lease(thread, "run-1", wait=10) as lease:
        assert lease.holder == Holder("w-1", "run-1")
        info = await store.leases.current(thread)
        assert info is not None
        assert info.holder == lease.holder


async def test_a_lease_is_renewed_while_the_run_goes(open_store: OpenStore) -> None:
    a, b = await open_store(thread_lease_ttl=1), await open_store(thread_lease_ttl=1)
    thread = uuid.uuid4().hex
    async with a.lease(thread, "long-run") as lease:
        first_expiry = lease.expires_at
        await wait_for(lambda: time.time() > first_expiry + 0.5, what="past the first TTL")
        assert lease.expires_at > first_expiry
        with pytest.raises(ThreadBusy):
            async with b.lease(thread, "other"):
                pass
        assert not lease.lost.is_set()


async def test_a_lease_taken_over_is_reported_lost_and_not_released(
    open_store: OpenStore, connect: Connect, bucket_name: str
) -> None:
    store = await open_store(thread_lease_ttl=1)
    other = await raw_bucket(connect, bucket_name)
    thread = uuid.uuid4().hex
    async with store.leases.hold(thread, Holder("slow", "run-1")) as lease:
        # Another run takes the thread over (it judged this holder dead): the next renewal
        # finds out ...
        taker = {"worker_id": "fast", "run_id": "run-2", "expires_at": time.time() + 60}
        await other.put(keys.lease(thread), orjson.dumps(taker))
        await wait_for(lease.lost.is_set, what="the renewal to find the lease lost")
    # ... and the late first holder's release leaves the new holder's lease alone.
    info = await store.leases.current(thread)
    assert info is not None
    assert info.holder == Holder("fast", "run-2")
