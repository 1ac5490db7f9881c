"""langgraph-checkpoint-conformance, the LangGraph team's suite for checkpointers, against ours."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from langgraph.checkpoint.conformance import checkpointer_test, validate
from nats.aio.client import Client

from worker.threads import KVCheckpointer
from worker.threads.bucket import ThreadsBucket


async def test_passes_the_conformance_suite(connect: Callable[[], Awaitable[Client]]) -> None:
    nc = await connect()
    js = nc.jetstream()

    @checkpointer_test(name="KVCheckpointer")
    async def kv_checkpointer() -> AsyncIterator[KVCheckpointer]:
        name = f"conformance_{uuid.uuid4().hex[:10]}"  # each capability suite a fresh bucket
        bucket = await ThreadsBucket.open(nc=nc, js=js, name=name, retention=3600, replicas=1)
        yield KVCheckpointer(bucket)
        await js.delete_key_value(name)

    report = await validate(kv_checkpointer)
    failures = {name: r.failures for name, r in report.results.items() if r.failures}
    assert report.passed_all_base(), failures
    assert not failures
    ran = {name: r.tests_passed for name, r in report.results.items() if r.detected}
    assert set(ran) == {"put", "put_writes", "get_tuple", "list", "delete_thread"}
    assert all(count >= 5 for count in ran.values()), ran
