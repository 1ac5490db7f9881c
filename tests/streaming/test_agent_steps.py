"""Frames of agent steps (CONTRACT section 6), in process: tool calls, graph nodes, interrupts."""

from __future__ import annotations

from typing import Any

import orjson
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import interrupt

from tests.streaming.helpers import resolved
from tests.streaming.tool_graph import lookup, tool_graph
from worker.agents.store import ResolvedAgent
from worker.streaming.agent_events import (
    MAX_OUTPUT_BYTES,
    TOKEN_MESSAGE,
    interrupt_draft,
    stream_agent,
)
from worker.streaming.frames import PROCESSING, TOKEN, Draft
from worker.streaming.schemas import Frame

QUESTION = [HumanMessage("hi")]


def with_runnable(runnable: Any) -> ResolvedAgent:
    agent = resolved("echo", {})
    object.__setattr__(agent, "runnable", runnable)
    return agent


async def run(
    runnable: Any,
    value: Any = None,
    *,
    config: RunnableConfig | None = None,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
) -> tuple[Any, list[Draft]]:
    """Run ``runnable`` through ``stream_agent``; its output and every draft it emitted."""
    drafts: list[Draft] = []
    output = await stream_agent(
        with_runnable(runnable),
        {"messages": QUESTION} if value is None else value,
        config or {},
        drafts.append,
        max_output_bytes=max_output_bytes,
    )
    for seq, draft in enumerate(drafts, start=1):  # each one a frame of the documented shape
        Frame.model_validate_json(draft.encode(task_id="t", seq=seq, attempt=1))
    return output, drafts


def steps(drafts: list[Draft]) -> list[tuple[str | None, Any]]:
    return [(d.event, d.data) for d in drafts if d.event != TOKEN]


def node(name: str) -> tuple[str, dict[str, str]]:
    return ("node", {"node": name})


async def test_tool_calls_and_finished_nodes_come_in_order() -> None:
    graph = tool_graph([("add", {"a": 2, "b": 3})], [("add", {"a": 5, "b": 7})], "It is 12.")
    output, drafts = await run(graph)
    assert output["messages"][-1].content == "It is 12."
    call = [
        ("tool_start", {"tool": "add", "input": {"a": 2, "b": 3}, "tool_call_id": "call-0"}),
        ("tool_end", {"tool": "add", "output": "5", "tool_call_id": "call-0"}),
    ]
    second = [
        ("tool_start", {"tool": "add", "input": {"a": 5, "b": 7}, "tool_call_id": "call-0"}),
        ("tool_end", {"tool": "add", "output": "12", "tool_call_id": "call-0"}),
    ]
    assert steps(drafts) == [
        node("model"),
        *call,
        node("tools"),
        node("model"),
        *second,
        node("tools"),
        node("model"),
    ]
    assert all(d.status == PROCESSING for d in drafts)
    messages = {d.event: d.message for d in drafts}
    assert messages["tool_start"] == "Calling tool add"
    assert messages["tool_end"] == "Tool add finished"
    assert messages["node"] == "Node model finished"


async def test_tokens_keep_their_text_in_partial_result() -> None:
    _, drafts = await run(tool_graph("three little words"))
    tokens = [d for d in drafts if d.event == TOKEN]
    assert "".join(d.partial_result for d in tokens) == "three little words"
    assert {d.message for d in tokens} == {TOKEN_MESSAGE}
    body = orjson.loads(tokens[0].encode(task_id="t", seq=2, attempt=1))
    assert (body["event"], body["partial_result"]) == ("token", "three")
    assert "data" not in body
    # The last token comes before the model's node is reported finished.
    assert drafts[-1].event == "node"


async def test_parallel_calls_pair_up_by_tool_call_id() -> None:
    graph = tool_graph([("add", {"a": 1, "b": 1}), ("dump", {"n": 2})], "done")
    _, drafts = await run(graph)
    seen = steps(drafts)
    started = {data["tool_call_id"]: data["tool"] for event, data in seen if event == "tool_start"}
    ended = {data["tool_call_id"]: data["output"] for event, data in seen if event == "tool_end"}
    assert started == {"call-0": "add", "call-1": "dump"}
    assert ended == {"call-0": "2", "call-1": "éé"}
    ends = [i for i, (event, _) in enumerate(seen) if event == "tool_end"]
    assert max(ends) < seen.index(node("tools"))  # the node finishes after both its calls


async def test_a_tool_that_raises_gives_a_tool_error_and_the_run_goes_on() -> None:
    output, drafts = await run(tool_graph([("broken", {"reason": "no luck"})], "Sorry."))
    assert output["messages"][-1].content == "Sorry."
    failed = {"tool": "broken", "error": "RuntimeError: no luck", "tool_call_id": "call-0"}
    assert steps(drafts) == [
        node("model"),
        (
            "tool_start",
            {"tool": "broken", "input": {"reason": "no luck"}, "tool_call_id": "call-0"},
        ),
        ("tool_error", failed),
        node("tools"),
        node("model"),
    ]
    assert next(d.message for d in drafts if d.event == "tool_error") == "Tool broken failed"


async def test_a_huge_tool_output_is_cut_whole_characters_and_marked() -> None:
    _, drafts = await run(tool_graph([("dump", {"n": 5000})], "ok"), max_output_bytes=1001)
    (end,) = (d for d in drafts if d.event == "tool_end")
    assert end.data is not None
    assert end.data["output"] == "é" * 500  # 1,000 bytes: the 1,001st is half a character
    assert end.data["truncated"] is True
    assert len(end.encode(task_id="t", seq=1, attempt=1)) < 1500


async def test_output_that_is_not_text_is_sent_as_json() -> None:
    async def call_directly(value: Any, config: RunnableConfig) -> Any:
        return await lookup.ainvoke({"key": value}, config)

    output, drafts = await run(RunnableLambda(call_directly), "k")
    assert output == {"key": "k", "found": True}
    assert steps(drafts) == [
        ("tool_start", {"tool": "lookup", "input": {"key": "k"}}),
        ("tool_end", {"tool": "lookup", "output": '{"key":"k","found":true}'}),
    ]


async def test_a_node_is_reported_once_even_if_its_runnable_has_its_name() -> None:
    same: Runnable[Any, Any] = RunnableLambda(lambda state: {"messages": [AIMessage("x")]})
    same = same.with_config(run_name="same")
    inner = StateGraph(MessagesState)
    inner.add_node("same", same)
    inner.add_edge(START, "same")
    outer = StateGraph(MessagesState)
    outer.add_node("same", same)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "same")
    outer.add_edge("same", "sub")
    _, drafts = await run(outer.compile())
    # The subgraph's node is a node too, then the subgraph finishes as the outer node "sub".
    assert steps(drafts) == [node("same"), node("same"), node("sub")]


async def test_an_interrupt_in_a_subgraph_is_reported_once_with_its_question() -> None:
    def ask(state: MessagesState) -> dict[str, Any]:
        answer = interrupt({"question": "Approve the refund?"})
        return {"messages": [AIMessage(str(answer))]}

    inner = StateGraph(MessagesState)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    outer = StateGraph(MessagesState)
    outer.add_node("first", lambda state: {"messages": [AIMessage("checking")]})
    outer.add_node("approval", inner.compile())
    outer.add_edge(START, "first")
    outer.add_edge("first", "approval")
    graph = outer.compile(checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "refund-1"}}
    output, drafts = await run(graph, config=config)
    (pending,) = output["__interrupt__"]
    # Neither the asking node nor the subgraph holding it finished.
    assert steps(drafts) == [
        node("first"),
        ("interrupt", {"value": {"question": "Approve the refund?"}, "id": pending.id}),
    ]
    assert drafts[-1].message == "Waiting for input"


def test_interrupt_draft_is_an_interrupt_frame() -> None:
    draft = interrupt_draft("Proceed?", progress=40, interrupt_id="i-1")
    body = orjson.loads(draft.encode(task_id="t", seq=5, attempt=1))
    assert (body["status"], body["progress"], body["event"]) == (PROCESSING, 40, "interrupt")
    assert body["data"] == {"value": "Proceed?", "id": "i-1"}
    anonymous = orjson.loads(interrupt_draft(1).encode(task_id="t", seq=1, attempt=1))
    assert anonymous["data"] == {"value": 1}
