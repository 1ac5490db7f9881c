"""Runs on a thread in process (``worker.agents.thread_runs``): chat's history, the agent type,
a graph that asks a person and is resumed, busy threads, deadlines, a cancel inside a tool and
a lost lease, on the session's real nats-server; only the model is fake."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from tests.agents.helpers import local_agent
from tests.threads.conftest import Connect, OpenStore
from tests.threads.helpers import approval, contents
from worker.agents import thread_runs
from worker.agents.agent_type import BuildContext
from worker.agents.from_runnable import runnable_type
from worker.agents.store import ResolvedAgent
from worker.agents.thread_runs import OnThread, Resume
from worker.agents.tools import ToolRegistry, as_tool
from worker.agents.types.agent import AgentConfig, build_graph
from worker.errors import BadRequest, Conflict, DeadlineExceeded, NotFound, ThreadBusy
from worker.threads import ThreadStore, keys
from worker.threads.bucket import ThreadsBucket


def new_thread() -> str:
    return f"t-{uuid.uuid4().hex}"


def on(store: ThreadStore, thread_id: str, **more: Any) -> OnThread:
    return OnThread(threads=store, thread_id=thread_id, **more)


def chat(store: ThreadStore, *responses: str, delay: str = "0s") -> ResolvedAgent:
    model = {"provider": "fake", "responses": list(responses), "token_delay": delay}
    config = {"system_prompt": "You remember.", "model": model}
    return local_agent("chat", config, BuildContext(checkpointer=store.checkpointer))


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class ModelInputs(AsyncCallbackHandler):
    """The messages each model call of a run was given."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kw: Any
    ) -> None:
        self.calls.extend(messages)


async def test_chat_keeps_its_history_over_three_turns(open_store: OpenStore) -> None:
    store = await open_store()
    agent = chat(store, "Hello Ada.", "You are Ada.", "Ada, again.")
    thread = new_thread()
    seen = ModelInputs()

    async def with_seen(runnable: Runnable[Any, Any], value: Any, config: RunnableConfig) -> Any:
        return await runnable.ainvoke(value, {**config, "callbacks": [seen]})

    answers = []
    for text in ("I am Ada.", "Who am I?", "Once more?"):
        async with thread_runs.hold(agent, text, on(store, thread)) as run:
            result = await run.execute(with_seen, time_limit=10)
        assert (result.status, result.thread_id, result.interrupt) == ("completed", thread, None)
        assert result.provider == "fake"
        answers.append(result.output)
    assert answers == ["Hello Ada.", "You are Ada.", "Ada, again."]

    state = await store.get(thread)
    said = ["I am Ada.", "Hello Ada.", "Who am I?", "You are Ada.", "Once more?", "Ada, again."]
    assert contents(state.values["messages"]) == said
    assert [m.type for m in state.values["messages"]] == ["human", "ai"] * 3
    assert state.status == "idle"
    assert state.metadata == {"agent_id": agent.record.id}  # what a resume defaults to
    # The model read the system prompt (not stored on the thread), then the whole history.
    assert [m.type for m in seen.calls[-1]] == ["system", "human", "ai", "human", "ai", "human"]
    assert contents(seen.calls[-1]) == ["You remember.", *said[:-1]]

    # Without a thread, chat is its plain chain: it answers, and the thread is untouched.
    assert await agent.runnable.ainvoke("hi") == "Hello Ada."
    assert len((await store.get(thread)).values["messages"]) == 6


async def test_the_agent_type_keeps_its_tool_calls_on_the_thread(open_store: OpenStore) -> None:
    store = await open_store()
    calls = {"tool_calls": [{"name": "calculator", "args": {"expression": "2+2"}}]}
    config = {"tools": ["calculator"], "model": {"provider": "fake", "responses": [calls, "4."]}}
    agent = local_agent("agent", config, BuildContext(checkpointer=store.checkpointer))
    thread = new_thread()
    first = await thread_runs.invoke(agent, "2+2?", on(store, thread), time_limit=10)
    second = await thread_runs.invoke(
        agent,
        {"messages": [{"role": "user", "content": "Sure?"}]},
        on(store, thread),
        time_limit=10,
    )
    assert (first.output, second.output) == ("4.", "4.")
    messages = (await store.get(thread)).values["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai", "human", "ai", "tool", "ai"]
    assert messages[1].tool_calls[0]["name"] == "calculator"
    assert contents(messages)[2:4] == ["4", "4."]


async def test_a_graph_asks_and_is_resumed(open_store: OpenStore) -> None:
    store = await open_store()
    agent = local_agent(
        runnable_type("approval", approval), {}, BuildContext(checkpointer=store.checkpointer)
    )
    thread = new_thread()
    deploy = {"messages": [{"role": "user", "content": "deploy"}]}

    asked = await thread_runs.invoke(agent, deploy, on(store, thread), time_limit=10)
    assert (asked.status, asked.output) == ("interrupted", None)
    assert asked.interrupt == {"question": "approve?"}
    assert asked.interrupts[0]["id"]
    state = await store.get(thread)
    assert state.status == "interrupted"
    assert [i["value"] for i in state.interrupts] == [{"question": "approve?"}]

    # Only a resume continues it; the module's graph was never given the checkpointer.
    done = await thread_runs.invoke(
        agent, None, on(store, thread, resume=Resume("yes")), time_limit=10
    )
    assert (done.status, done.interrupts) == ("completed", ())
    assert contents(done.output["messages"]) == ["deploy", "echo: deploy", "approved: yes"]
    assert (await store.get(thread)).status == "idle"
    assert approval.checkpointer is None

    with pytest.raises(Conflict) as twice:
        await thread_runs.invoke(agent, None, on(store, thread, resume=Resume(1)), time_limit=10)
    assert (twice.value.status, twice.value.code) == (409, "thread_not_interrupted")
    with pytest.raises(NotFound) as unknown:
        await thread_runs.invoke(
            agent, None, on(store, new_thread(), resume=Resume(1)), time_limit=10
        )
    assert unknown.value.code == "thread_not_found"


async def test_types_that_keep_no_thread_are_refused(open_store: OpenStore) -> None:
    store = await open_store()
    ctx = BuildContext(checkpointer=store.checkpointer)
    backwards = runnable_type("backwards", RunnableLambda(lambda text: str(text)[::-1]))
    for agent in (local_agent("echo", {}, ctx), local_agent(backwards, {}, ctx)):
        with pytest.raises(BadRequest) as refused:
            await thread_runs.invoke(agent, "x", on(store, new_thread()), time_limit=10)
        assert (refused.value.status, refused.value.code) == (400, "threads_unsupported")


async def test_a_busy_thread_refuses_at_once_or_waits_its_turn(open_store: OpenStore) -> None:
    store = await open_store()
    agent = chat(store, "a slow answer of several words", delay="100ms")
    thread = new_thread()
    first = asyncio.create_task(
        thread_runs.invoke(agent, "first", on(store, thread), time_limit=10)
    )
    await wait_until(lambda: _status_is(store, thread, "busy"))
    with pytest.raises(ThreadBusy) as busy:
        await thread_runs.invoke(agent, "now", on(store, thread), time_limit=10)
    assert (busy.value.status, busy.value.code, busy.value.retryable) == (409, "thread_busy", True)
    waited = await thread_runs.invoke(agent, "later", on(store, thread, wait=30), time_limit=10)
    assert first.done()
    assert waited.output == "a slow answer of several words"
    said = contents((await store.get(thread)).values["messages"])
    assert said[0::2] == ["first", "later"]


async def _status_is(store: ThreadStore, thread: str, status: str) -> bool:
    try:
        return (await store.get(thread)).status == status
    except NotFound:
        return False


async def test_a_deadline_ends_the_run_and_frees_the_thread(open_store: OpenStore) -> None:
    store = await open_store()
    agent = chat(store, "too slow to answer in time", delay="1s")
    thread = new_thread()
    with pytest.raises(DeadlineExceeded):
        await thread_runs.invoke(agent, "hi", on(store, thread), time_limit=0.3)
    assert (await store.get(thread)).status == "idle"


class SlowTool:
    """A tool that blocks until its run is cancelled, telling when it has started."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    def registry(self) -> ToolRegistry:
        async def lookup(query: str) -> str:
            """Look something up, slowly."""
            self.started.set()
            await asyncio.sleep(3600)  # the scenario: a tool that only ends by cancel
            return "never"

        tools = ToolRegistry.builtin()
        tools.register(as_tool(lookup, "lookup"))
        return tools


LOOKUP = {"tool_calls": [{"name": "lookup", "args": {"query": "x"}}]}


def looking_up(store: ThreadStore, tool: SlowTool) -> tuple[ResolvedAgent, dict[str, Any]]:
    config = {"tools": ["lookup"], "model": {"provider": "fake", "responses": [LOOKUP, "Done."]}}
    ctx = BuildContext(checkpointer=store.checkpointer, tools=tool.registry())
    return local_agent("agent", config, ctx), config


async def test_a_cancel_inside_a_tool_leaves_the_last_complete_step(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    tool = SlowTool()
    agent, config = looking_up(store, tool)
    thread = new_thread()
    run = asyncio.create_task(thread_runs.invoke(agent, "look", on(store, thread), time_limit=30))
    await asyncio.wait_for(tool.started.wait(), 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    # The thread ends at the model's step, which asked for the tool: nothing of the tool step
    # landed, not as a checkpoint, not as a write; its lease is free at once.
    history = await store.history(thread)
    assert all(m.type != "tool" for c in history for m in c.values.get("messages", []))
    latest = history[0]
    assert [m.type for m in latest.values["messages"]] == ["human", "ai"]
    assert latest.values["messages"][-1].tool_calls[0]["name"] == "lookup"
    graph = build_graph(
        AgentConfig.model_validate(config),
        BuildContext(checkpointer=store.checkpointer, tools=tool.registry()),
        checkpointer=store.checkpointer,
    )
    snapshot = await graph.aget_state(store.config(thread))
    assert snapshot.config["configurable"]["checkpoint_id"] == latest.checkpoint_id
    assert snapshot.next == ("tools",)
    assert all(not task.result for task in snapshot.tasks)
    assert (await store.get(thread)).status == "idle"

    # The next run on the thread goes on from there; its model reads that the call it made was
    # stopped (a provider refuses a tool call left unanswered).
    seen = ModelInputs()

    async def with_seen(runnable: Runnable[Any, Any], value: Any, config: RunnableConfig) -> Any:
        return await runnable.ainvoke(value, {**config, "callbacks": [seen]})

    async with thread_runs.hold(agent, "never mind", on(store, thread)) as next_run:
        after = await next_run.execute(with_seen, time_limit=10)
    assert after.output == "Done."
    assert [m.type for m in seen.calls[-1]] == ["system", "human", "ai", "tool", "human"]
    assert seen.calls[-1][3].tool_call_id == latest.values["messages"][-1].tool_calls[0]["id"]
    messages = (await store.get(thread)).values["messages"]
    assert [m.type for m in messages][-2:] == ["human", "ai"]
    assert contents(messages)[-2:] == ["never mind", "Done."]


async def test_cancels_while_it_unwinds_wait_for_its_last_checkpoint(
    open_store: OpenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store()
    tool = SlowTool()
    agent, _ = looking_up(store, tool)
    thread = new_thread()
    # The checkpoint of the model's step is held back until the gate opens: it is still being
    # written when the run is cancelled, and when it is cancelled again and again meanwhile.
    gate, held = asyncio.Event(), asyncio.Event()
    write = store.checkpointer.aput

    async def gated(config: RunnableConfig, checkpoint: Any, *args: Any) -> RunnableConfig:
        messages = checkpoint["channel_values"].get("messages") or []
        if messages and getattr(messages[-1], "tool_calls", None):
            held.set()
            await gate.wait()
        return await write(config, checkpoint, *args)

    monkeypatch.setattr(store.checkpointer, "aput", gated)
    run = asyncio.create_task(thread_runs.invoke(agent, "look", on(store, thread), time_limit=30))
    await asyncio.wait_for(asyncio.gather(tool.started.wait(), held.wait()), 10)
    for _ in range(20):
        run.cancel()
        await asyncio.sleep(0.005)
    assert not run.done()  # it waits for its write, whoever cancels it
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await run
    # The write landed before the run let the thread go.
    latest = (await store.history(thread))[0]
    assert latest.values["messages"][-1].tool_calls[0]["name"] == "lookup"
    assert (await store.get(thread)).status == "idle"


async def test_a_lost_lease_stops_the_run(
    open_store: OpenStore, connect: Connect, bucket_name: str
) -> None:
    store = await open_store(thread_lease_ttl=1.5)
    tool = SlowTool()
    agent, _ = looking_up(store, tool)
    thread = new_thread()
    run = asyncio.create_task(thread_runs.invoke(agent, "look", on(store, thread), time_limit=30))
    await asyncio.wait_for(tool.started.wait(), 10)
    # Another run takes the thread over (as after this worker stalled past the lease's TTL).
    nc = await connect()
    other = await ThreadsBucket.open(
        nc=nc, js=nc.jetstream(), name=bucket_name, retention=3600, replicas=1
    )
    thief = {"worker_id": "w-other", "run_id": "thief", "expires_at": time.time() + 60}
    await other.put(keys.lease(thread), orjson.dumps(thief))
    with pytest.raises(Conflict) as lost:
        await asyncio.wait_for(run, 10)
    assert lost.value.code == "thread_lease_lost"
    assert (await store.leases.current(thread)) is not None  # the thief's, left alone
