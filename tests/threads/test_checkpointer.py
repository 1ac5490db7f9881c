"""KVCheckpointer: LangGraph graphs keep their threads in NATS, and any worker continues them."""

from __future__ import annotations

import uuid

import pytest
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command

from tests.threads.conftest import OpenStore
from tests.threads.helpers import approval_graph, contents, echo_graph, turn
from worker.errors import BadRequest, ThreadTooLarge
from worker.threads import ThreadStore


def config(thread_id: str) -> dict[str, dict[str, str]]:
    return {"configurable": {"thread_id": thread_id}}


async def test_history_accumulates_and_another_worker_continues(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    thread = f"chat.{uuid.uuid4().hex[:8]}"  # dots are allowed in thread ids
    graph_a, graph_b = echo_graph(a.checkpointer), echo_graph(b.checkpointer)

    await graph_a.ainvoke(turn("one"), config(thread))
    out = await graph_a.ainvoke(turn("two"), config(thread))
    assert contents(out["messages"]) == ["one", "echo: one", "two", "echo: two"]

    out = await graph_b.ainvoke(turn("three"), config(thread))
    assert contents(out["messages"])[-2:] == ["three", "echo: three"]
    assert len(out["messages"]) == 6
    state = await graph_a.aget_state(config(thread))
    assert contents(state.values["messages"]) == contents(out["messages"])

    # A thread whose id extends another's is another thread.
    out = await graph_a.ainvoke(turn("other"), config(f"{thread}.x"))
    assert contents(out["messages"]) == ["other", "echo: other"]


async def test_alist_is_newest_first_with_limit_before_and_filter(open_store: OpenStore) -> None:
    store = await open_store()
    graph = echo_graph(store.checkpointer)
    thread = uuid.uuid4().hex
    for text in ("a", "b", "c"):
        await graph.ainvoke(turn(text), config(thread))

    saver = store.checkpointer
    listed = [item async for item in saver.alist(config(thread))]
    ids = [item.config["configurable"]["checkpoint_id"] for item in listed]
    assert len(ids) == 9  # each turn: input, __start__ step, reply step
    assert ids == sorted(ids, reverse=True)
    latest = await saver.aget_tuple(config(thread))
    assert latest is not None
    assert latest.config["configurable"]["checkpoint_id"] == ids[0]
    assert listed[0].parent_config is not None
    assert listed[0].parent_config["configurable"]["checkpoint_id"] == ids[1]

    assert [i.config async for i in saver.alist(config(thread), limit=2)] == [
        listed[0].config,
        listed[1].config,
    ]
    before = {"configurable": {"thread_id": thread, "checkpoint_id": ids[3]}}
    older = [
        i.config["configurable"]["checkpoint_id"]
        async for i in saver.alist(config(thread), before=before, limit=3)
    ]
    assert older == ids[4:7]
    inputs = [i async for i in saver.alist(config(thread), filter={"source": "input"})]
    assert len(inputs) == 3
    assert all(i.metadata["source"] == "input" for i in inputs)
    assert [i async for i in saver.alist(config(thread), limit=0)] == []
    assert [i async for i in saver.alist(config(uuid.uuid4().hex))] == []


async def test_adelete_thread_removes_only_that_thread(open_store: OpenStore) -> None:
    store = await open_store()
    graph = echo_graph(store.checkpointer)
    gone, kept = uuid.uuid4().hex, uuid.uuid4().hex
    await graph.ainvoke(turn("x"), config(gone))
    await graph.ainvoke(turn("y"), config(kept))

    await store.checkpointer.adelete_thread(gone)

    assert await store.checkpointer.aget_tuple(config(gone)) is None
    assert [i async for i in store.checkpointer.alist(config(gone))] == []
    assert await store.checkpointer.aget_tuple(config(kept)) is not None
    out = await graph.ainvoke(turn("again"), config(gone))
    assert contents(out["messages"]) == ["again", "echo: again"]


async def test_interrupt_on_one_worker_resumes_on_another(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    thread = uuid.uuid4().hex

    out = await approval_graph(a.checkpointer).ainvoke(turn("deploy"), config(thread))
    assert [i.value for i in out["__interrupt__"]] == [{"question": "approve?"}]
    state = await a.get(thread)
    assert state.status == "interrupted"
    assert [i["value"] for i in state.interrupts] == [{"question": "approve?"}]

    out = await approval_graph(b.checkpointer).ainvoke(Command(resume="yes"), config(thread))
    assert contents(out["messages"]) == ["deploy", "echo: deploy", "approved: yes"]
    state = await a.get(thread)
    assert state.status == "idle"
    assert state.interrupts == []


async def test_subgraph_namespaces_are_kept_apart(open_store: OpenStore) -> None:
    store = await open_store()
    inner = echo_graph(store.checkpointer)  # compiled with a checkpointer: keeps its own ns
    builder = StateGraph(MessagesState)
    builder.add_node("inner", inner)
    builder.add_edge(START, "inner")
    outer = builder.compile(checkpointer=store.checkpointer)
    thread = uuid.uuid4().hex

    out = await outer.ainvoke(turn("hi"), config(thread))
    assert contents(out["messages"]) == ["hi", "echo: hi"]
    namespaces = {
        item.config["configurable"]["checkpoint_ns"]
        async for item in store.checkpointer.alist({"configurable": {"thread_id": thread}})
    }
    assert "" in namespaces
    inner_ns = [ns for ns in namespaces if ns.startswith("inner:")]
    assert inner_ns, namespaces
    root = [
        i
        async for i in store.checkpointer.alist(
            {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        )
    ]
    assert {i.config["configurable"]["checkpoint_ns"] for i in root} == {""}
    nested = await store.checkpointer.aget_tuple(
        {"configurable": {"thread_id": thread, "checkpoint_ns": inner_ns[0]}}
    )
    assert nested is not None
    assert contents(nested.checkpoint["channel_values"]["messages"]) == ["hi", "echo: hi"]


async def test_state_too_large_for_one_message_is_a_clear_error(open_store: OpenStore) -> None:
    store = await open_store()
    graph = echo_graph(store.checkpointer)
    limit = store.checkpointer.max_checkpoint_bytes
    with pytest.raises(ThreadTooLarge, match=r"larger than the \d+ bytes") as caught:
        await graph.ainvoke(turn("x" * (limit + 1)), config(uuid.uuid4().hex))
    assert caught.value.status == 413
    assert caught.value.code == "thread_too_large"


async def test_bad_thread_ids_and_sync_calls(open_store: OpenStore) -> None:
    store = await open_store()
    graph = echo_graph(store.checkpointer)
    for bad in ("", "a b", "x" * 129, "a>b", "a*"):
        with pytest.raises(BadRequest, match="invalid thread_id"):
            await graph.ainvoke(turn("x"), config(bad))
    with pytest.raises(NotImplementedError, match="async-only"):
        graph.invoke(turn("x"), config("sync"))
    assert isinstance(store, ThreadStore)
