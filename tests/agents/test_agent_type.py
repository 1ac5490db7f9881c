"""The ``agent`` type in process: a LangGraph tool-calling agent on the fake model, run as the
worker runs agents (``runtime.invoke``)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from tests.agents.helpers import REGISTRY, local_agent
from worker.agents import runtime
from worker.agents.agent_type import BuildContext
from worker.agents.tools import ToolRegistry, as_tool
from worker.agents.types.agent import AgentConfig, build_graph
from worker.errors import AgentIterationLimit, BadRequest
from worker.streaming.agent_events import stream_agent
from worker.streaming.frames import TOKEN, Draft


def calls(*expressions: str) -> dict[str, Any]:
    """A scripted reply calling the calculator once per expression."""
    return {"tool_calls": [{"name": "calculator", "args": {"expression": e}} for e in expressions]}


def agent_config(*responses: Any, **extra: Any) -> dict[str, Any]:
    return {
        "tools": ["calculator"],
        "model": {"provider": "fake", "responses": list(responses)},
        **extra,
    }


class ToolEvents(AsyncCallbackHandler):
    """The tool runs of one agent run, in order, as the streaming door will see them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def on_tool_start(self, serialized: dict[str, Any], input_str: str, **kw: Any) -> None:
        self.events.append(("start", kw["inputs"]))

    async def on_tool_end(self, output: Any, **kw: Any) -> None:
        self.events.append(("end", output.content))

    async def on_tool_error(self, error: BaseException, **kw: Any) -> None:
        self.events.append(("error", type(error).__name__))


async def test_two_calculator_calls_then_an_answer() -> None:
    agent = local_agent("agent", agent_config(calls("2+2"), calls("4*10"), "(2+2)*10 is 40."))
    handler = ToolEvents()
    result = await runtime.invoke(agent, "What is (2+2)*10?", time_limit=10)
    assert result.output == "(2+2)*10 is 40."
    assert result.provider == "fake"

    # The same agent again (the script cycles), watching its tool runs.
    out = await agent.runnable.ainvoke("again", {"callbacks": [handler]})
    assert out == "(2+2)*10 is 40."
    assert handler.events == [
        ("start", {"expression": "2+2"}),
        ("end", "4"),
        ("start", {"expression": "4*10"}),
        ("end", "40"),
    ]


async def test_the_graph_keeps_every_message_of_the_run() -> None:
    config = AgentConfig.model_validate(agent_config(calls("1+1", "2*3"), "2 and 6."))
    graph = build_graph(config, BuildContext())
    state = await graph.ainvoke({"messages": [HumanMessage("two sums")]})
    messages: list[BaseMessage] = state["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert [m.content for m in messages if isinstance(m, ToolMessage)] == ["2", "6"]
    first = messages[1]
    assert isinstance(first, AIMessage)
    assert [c["id"] for c in first.tool_calls] == [
        m.tool_call_id for m in messages if isinstance(m, ToolMessage)
    ]


async def test_a_tool_that_raises_tells_the_model_which_answers() -> None:
    config = AgentConfig.model_validate(
        agent_config(calls("__import__('os').system('true')"), "I can only do arithmetic.")
    )
    graph = build_graph(config, BuildContext())
    state = await graph.ainvoke({"messages": [HumanMessage("run a command")]})
    error = state["messages"][2]
    assert isinstance(error, ToolMessage)
    assert error.status == "error"
    assert "calculator" in error.text
    assert "not allowed in arithmetic: Call" in error.text
    assert state["messages"][-1].text == "I can only do arithmetic."


async def test_past_max_iterations_the_run_fails_with_agent_iteration_limit() -> None:
    agent = local_agent("agent", agent_config(calls("1+1"), max_iterations=3))
    with pytest.raises(AgentIterationLimit) as info:
        await runtime.invoke(agent, "loop forever", time_limit=10)
    assert (info.value.code, info.value.status, info.value.retryable) == (
        "agent_iteration_limit",
        502,
        False,
    )
    assert "3 model calls" in info.value.message


async def test_the_last_allowed_call_may_answer() -> None:
    agent = local_agent("agent", agent_config(calls("1"), calls("2"), "done", max_iterations=3))
    assert (await runtime.invoke(agent, "x", time_limit=10)).output == "done"


async def test_input_is_text_or_messages_in_either_json_form() -> None:
    agent_type = REGISTRY.get("agent")
    (message,) = agent_type.parse_input("hi").to_messages()
    assert (type(message), message.content) == (HumanMessage, "hi")
    conversation = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"type": "human", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "and doubled?"},
        ]
    }
    value = agent_type.parse_input(conversation)
    agent = local_agent("agent", agent_config("8."))
    assert (await runtime.invoke(agent, value, time_limit=10)).output == "8."

    for bad, field in [
        ("", "input"),
        (42, "input"),
        ({"messages": []}, "input.messages"),
        ({"messages": [{"content": "no role"}]}, "input.messages"),
        ({"messages": [{"role": "tool", "content": "no call id"}]}, "input.messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "input.messages.0.role"),
        ({"text": "hi"}, "input.text"),
    ]:
        with pytest.raises(BadRequest) as info:
            agent_type.parse_input(bad)
        assert any(d["field"] == field for d in info.value.details), (bad, info.value.details)


def test_config_errors_are_400s() -> None:
    with pytest.raises(BadRequest) as info:
        REGISTRY.build("agent", {"tools": ["calculator", "rm"]})
    assert info.value.code == "unknown_tool"
    assert "known: calculator, current_time" in info.value.message

    for bad, field in [
        ({"tools": ["calculator", "calculator"]}, "config.tools"),
        ({"max_iterations": 0}, "config.max_iterations"),
        ({"tools": "calculator"}, "config.tools"),
        ({"temperature": 1}, "config.temperature"),
    ]:
        with pytest.raises(BadRequest) as info:
            REGISTRY.build("agent", bad)
        assert info.value.details[0]["field"] == field, info.value.details


def shout(text: str) -> str:
    """Say it louder."""
    return text.upper()


def test_tools_come_from_the_context_registry() -> None:
    tools = ToolRegistry.builtin()
    tools.register(as_tool(shout, "shout"))
    REGISTRY.build("agent", {"tools": ["shout"]}, BuildContext(tools=tools))
    with pytest.raises(BadRequest, match="unknown tool 'shout'"):
        REGISTRY.build("agent", {"tools": ["shout"]})


async def test_text_answers_stream_token_by_token() -> None:
    agent = local_agent("agent", agent_config(calls("6*7"), "It is 42 exactly."))
    drafts: list[Draft] = []
    output = await stream_agent(agent, agent.agent_type.parse_input("6*7?"), {}, drafts.append)
    assert output == "It is 42 exactly."
    tokens = [d.partial_result for d in drafts if d.event == TOKEN]
    assert tokens == ["It", " ", "is", " ", "42", " ", "exactly."]
    tools = [(d.event, d.data) for d in drafts if d.event in {"tool_start", "tool_end"}]
    assert [(event, (data or {})["tool"]) for event, data in tools] == [
        ("tool_start", "calculator"),
        ("tool_end", "calculator"),
    ]
    assert (tools[1][1] or {})["output"] == "42"
