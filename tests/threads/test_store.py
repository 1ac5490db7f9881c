"""ThreadStore: the records, state, history and deletion of CONTRACT section 6."""

from __future__ import annotations

import uuid

import orjson
import pytest
from nats.js.api import StorageType

from tests.threads.conftest import Connect, OpenStore
from tests.threads.helpers import contents, echo_graph, turn
from worker.errors import BadRequest, Conflict, NotFound, ThreadBusy


async def test_create_get_and_the_json_forms(open_store: OpenStore) -> None:
    store = await open_store()
    record = await store.create(metadata={"user": "ada"})
    assert uuid.UUID(record.thread_id)
    body = record.to_json()
    assert body["metadata"] == {"user": "ada"}
    assert body["created_at"].endswith("Z")

    state = await store.get(record.thread_id)
    assert (state.status, state.values, state.checkpoint_id) == ("idle", {}, None)
    assert state.metadata == {"user": "ada"}

    named = await store.create("support.ticket-42")
    assert named.thread_id == "support.ticket-42"
    with pytest.raises(Conflict) as exists:
        await store.create("support.ticket-42")
    assert (exists.value.status, exists.value.code) == (409, "thread_exists")


async def test_a_run_creates_its_thread_and_get_shows_its_messages(open_store: OpenStore) -> None:
    store = await open_store()
    graph = echo_graph(store.checkpointer)
    thread = f"t-{uuid.uuid4().hex}"
    async with store.lease(thread, "run-1"):
        await graph.ainvoke(turn("hello"), store.config(thread))

    state = await store.get(thread)
    assert state.status == "idle"
    assert contents(state.values["messages"]) == ["hello", "echo: hello"]
    body = orjson.loads(orjson.dumps(state.to_json()))
    assert set(body) >= {"thread_id", "status", "values", "updated_at"}
    assert [(m["type"], m["content"]) for m in body["values"]["messages"]] == [
        ("human", "hello"),
        ("ai", "echo: hello"),
    ]
    assert body["updated_at"] >= body["created_at"]


async def test_history_is_newest_first(open_store: OpenStore) -> None:
    store = await open_store()
    graph = echo_graph(store.checkpointer)
    thread = uuid.uuid4().hex
    for text in ("a", "b"):
        async with store.lease(thread, f"run-{text}"):
            await graph.ainvoke(turn(text), store.config(thread))

    history = await store.history(thread)
    assert len(history) == 6
    assert [h.created_at for h in history] == sorted((h.created_at for h in history), reverse=True)
    assert contents(history[0].values["messages"]) == ["a", "echo: a", "b", "echo: b"]
    assert history[0].parent_checkpoint_id == history[1].checkpoint_id
    assert history[-1].parent_checkpoint_id is None
    page = await store.history(thread, limit=2, before=history[1].checkpoint_id)
    assert [h.checkpoint_id for h in page] == [h.checkpoint_id for h in history[2:4]]
    entry = orjson.loads(orjson.dumps(history[0].to_json()))
    assert entry["metadata"]["source"] == "loop"
    assert await store.history((await store.create()).thread_id) == []


async def test_delete(open_store: OpenStore) -> None:
    store, other = await open_store(), await open_store()
    graph = echo_graph(store.checkpointer)
    thread = uuid.uuid4().hex
    async with store.lease(thread, "run-1"):
        await graph.ainvoke(turn("x"), store.config(thread))
        with pytest.raises(ThreadBusy):
            await other.delete(thread)

    await other.delete(thread)
    with pytest.raises(NotFound):
        await store.get(thread)
    with pytest.raises(NotFound):
        await store.history(thread)
    with pytest.raises(NotFound) as unknown:
        await store.delete(thread)
    assert (unknown.value.status, unknown.value.code) == (404, "thread_not_found")
    # The id is free again, and the new thread starts empty.
    await store.create(thread)
    assert (await store.get(thread)).values == {}


async def test_unknown_and_malformed_threads(open_store: OpenStore) -> None:
    store = await open_store()
    with pytest.raises(NotFound):
        await store.get("nobody")
    with pytest.raises(NotFound):
        async with store.lease("nobody", "resume-1", create=False):
            pass
    for call in (
        store.get("bad id"),
        store.history("x" * 129),
        store.delete("a/b"),
        store.create("ä"),
    ):
        with pytest.raises(BadRequest) as bad:
            await call
        assert (bad.value.status, bad.value.code) == (400, "invalid_thread_id")


async def test_bucket_follows_the_settings(
    open_store: OpenStore, connect: Connect, bucket_name: str
) -> None:
    await open_store(thread_retention="2h")
    nc = await connect()
    info = await nc.jetstream().stream_info(f"KV_{bucket_name}")
    assert info.config.max_age == 7200
    assert info.config.num_replicas == 1
    assert info.config.storage == StorageType.FILE
    assert not info.config.allow_direct
    await open_store(thread_retention="3h")  # a changed retention is applied at the next start
    info = await nc.jetstream().stream_info(f"KV_{bucket_name}")
    assert info.config.max_age == 10800
