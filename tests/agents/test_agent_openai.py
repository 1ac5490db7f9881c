"""Tool calls through ``langchain-openai`` for real: ``ChatOpenAI`` against the fake OpenAI
server answering with ``tool_calls``, whole and streamed as deltas, and the ``agent`` type on
the ``openai`` provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_openai import ChatOpenAI

from tests.agents.helpers import local_agent
from tests.fakes.openai_server import FakeOpenAI
from worker.agents import runtime
from worker.agents.tools.calculator import calculator_tool
from worker.agents.tools.clock import current_time_tool
from worker.errors import AgentIterationLimit, Unavailable
from worker.streaming.agent_events import stream_agent
from worker.streaming.frames import TOKEN, Draft

TWO_CALLS = [
    {"name": "calculator", "args": {"expression": "(2 + 2) * 10"}, "id": "call_a"},
    {"name": "current_time", "args": {}, "id": "call_b"},
]


@pytest.fixture
async def provider() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def chat_openai(server: FakeOpenAI, **extra: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-test", base_url=server.base_url, api_key="sk-test", max_retries=0, **extra
    )


async def test_chat_openai_reads_tool_calls_whole(provider: FakeOpenAI) -> None:
    provider.set(tool_calls=TWO_CALLS)
    model = chat_openai(provider).bind_tools([calculator_tool(), current_time_tool()])
    message = await model.ainvoke("What is (2+2)*10, and what time is it?")
    assert isinstance(message, AIMessage)
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [
        ("calculator", {"expression": "(2 + 2) * 10"}, "call_a"),
        ("current_time", {}, "call_b"),
    ]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert provider.requests[-1].tools == ["calculator", "current_time"]
    assert not provider.requests[-1].stream


async def test_chat_openai_assembles_tool_calls_streamed_as_deltas(provider: FakeOpenAI) -> None:
    provider.set(tool_calls=TWO_CALLS)
    model = chat_openai(provider, streaming=True).bind_tools(
        [calculator_tool(), current_time_tool()]
    )
    chunks = [c async for c in model.astream("What is (2+2)*10, and what time is it?")]
    assert provider.requests[-1].stream
    # The arguments arrived in pieces, one delta each, and LangChain put them together.
    pieces = [c for c in chunks if c.tool_call_chunks and not c.tool_call_chunks[0]["name"]]
    assert len(pieces) > 2
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert isinstance(whole, AIMessageChunk)
    assert [(c["name"], c["args"], c["id"]) for c in whole.tool_calls] == [
        ("calculator", {"expression": "(2 + 2) * 10"}, "call_a"),
        ("current_time", {}, "call_b"),
    ]
    assert whole.response_metadata["finish_reason"] == "tool_calls"


def openai_agent(server: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "tools": ["calculator"],
        "model": {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": server.base_url,
            "api_key": "sk-test",
            "timeout": "5s",
        },
        **extra,
    }


def script_two_calculations(server: FakeOpenAI) -> None:
    server.script(
        {"tool_calls": [{"name": "calculator", "args": {"expression": "2+2"}}]},
        {"tool_calls": [{"name": "calculator", "args": {"expression": "4*10"}}]},
        {"reply": "(2+2)*10 is 40."},
    )


async def test_agent_on_the_openai_provider(provider: FakeOpenAI) -> None:
    script_two_calculations(provider)
    agent = local_agent("agent", openai_agent(provider))
    result = await runtime.invoke(agent, "What is (2+2)*10?", time_limit=10)
    assert result.output == "(2+2)*10 is 40."
    assert result.provider == f"openai:{provider.base_url}#gpt-test"
    assert provider.count == 3
    assert all(seen.tools == ["calculator"] for seen in provider.requests)
    # The calculator's answers went back to the model as tool messages, in order.
    last = provider.requests[-1].messages
    assert [m["role"] for m in last] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    assert [m["content"] for m in last if m["role"] == "tool"] == ["4", "40"]


async def test_agent_on_the_openai_provider_streams(provider: FakeOpenAI) -> None:
    script_two_calculations(provider)
    agent = local_agent("agent", openai_agent(provider))
    drafts: list[Draft] = []
    value = agent.agent_type.parse_input("What is (2+2)*10?")
    output = await stream_agent(agent, value, {}, drafts.append)
    assert output == "(2+2)*10 is 40."
    assert all(seen.stream for seen in provider.requests)
    assert "".join(str(d.partial_result) for d in drafts if d.event == TOKEN) == "(2+2)*10 is 40."
    assert [m["content"] for m in provider.requests[-1].messages if m["role"] == "tool"] == [
        "4",
        "40",
    ]


async def test_agent_iteration_limit_over_the_openai_provider(provider: FakeOpenAI) -> None:
    provider.set(tool_calls=[{"name": "calculator", "args": {"expression": "1+1"}}])
    agent = local_agent("agent", openai_agent(provider, max_iterations=2))
    with pytest.raises(AgentIterationLimit, match="after 2 model calls"):
        await runtime.invoke(agent, "loop", time_limit=10)
    assert provider.count == 2


async def test_a_provider_down_is_unavailable_not_an_agent_failure(provider: FakeOpenAI) -> None:
    provider.set(mode="status", status=503)
    config = openai_agent(provider)
    config["model"]["retry"] = {"max_attempts": 1}
    agent = local_agent("agent", config)
    with pytest.raises(Unavailable) as info:
        await runtime.invoke(agent, "2+2?", time_limit=10)
    assert info.value.status == 503
