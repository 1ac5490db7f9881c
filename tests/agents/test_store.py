"""The agent store against a real JetStream key-value bucket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import nats as nats_py
import pytest
from nats.aio.client import Client

from worker.agents.agent_type import BuildContext
from worker.agents.registry import AgentTypeRegistry
from worker.agents.store import AgentStore, merge_patch
from worker.errors import BadRequest, Conflict, NotFound
from worker.testing import NatsServer


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[Client]:
    client = await nats_py.connect(nats.url)
    yield client
    await client.close()


@pytest.fixture
async def store(nc: Client) -> AsyncIterator[AgentStore]:
    s = AgentStore(
        js=nc.jetstream(),
        registry=AgentTypeRegistry.discover(),
        build_context=BuildContext(),
        bucket=f"t_{uuid.uuid4().hex[:8]}",
    )
    await s.start()
    yield s
    await s.stop()


def test_merge_patch_follows_rfc_7386() -> None:
    assert merge_patch({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}, "f": 5}) == {
        "a": 1,
        "b": {"d": 3, "e": 4},
        "f": 5,
    }
    assert merge_patch({"a": [1]}, {"a": [2]}) == {"a": [2]}


async def test_crud_and_revisions(store: AgentStore, nc: Client) -> None:
    record = await store.create(type_name="echo", name="e")
    assert (await store.get(record.id)).revision == record.revision
    updated = await store.update(record.id, name="f")
    assert updated.revision > record.revision

    # Two workers write at once: each write either lands or is a 409, never a lost update.
    other = AgentStore(
        js=nc.jetstream(),
        registry=AgentTypeRegistry.discover(),
        build_context=BuildContext(),
        bucket=store.kv._name,
    )
    await other.start()
    try:
        results = await asyncio.gather(
            *(s.update(record.id, name=f"n{i}") for i, s in enumerate([store, other] * 10)),
            return_exceptions=True,
        )
    finally:
        await other.stop()
    landed = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert landed
    final = await store.kv.get(record.id)
    assert final.revision == updated.revision + len(landed)

    await store.delete(record.id)
    with pytest.raises(NotFound):
        await store.get(record.id)
    with pytest.raises(NotFound):
        await store.delete(record.id)


async def test_invalid_config_is_refused_before_storing(store: AgentStore) -> None:
    with pytest.raises(BadRequest):
        await store.create(type_name="steps", config={"steps": -1})
    assert store.list() == []


async def test_runnable_is_rebuilt_per_revision(store: AgentStore) -> None:
    record = await store.create(type_name="chat", config={"model": {"responses": ["a"]}})
    first = await store.resolve(record.id)
    assert await store.resolve(record.id) is first
    await store.update(record.id, config_patch={"model": {"responses": ["b"]}})
    second = await store.resolve(record.id)
    assert second is not first
    assert await second.runnable.ainvoke("x") == "b"
