"""The fake OpenAI server's modes for many conversations at once (``bench.agents`` uses them):
one behaviour that makes every turn of the ``agent`` type call a tool then answer, and answers
whose tokens carry the time they were sent."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from langchain_openai import ChatOpenAI

from tests.agents.helpers import local_agent
from tests.fakes.openai_server import FakeOpenAI
from worker.streaming.agent_events import stream_agent
from worker.streaming.frames import Draft

CALCULATE = [{"name": "calculator", "args": {"expression": "6*7"}}]


@pytest.fixture
async def provider() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def agent_config(server: FakeOpenAI) -> dict[str, object]:
    return {
        "tools": ["calculator"],
        "model": {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": server.base_url,
            "api_key": "sk-test",
            "timeout": "5s",
        },
    }


async def test_every_turn_calls_the_tool_once_then_answers(provider: FakeOpenAI) -> None:
    provider.set(tool_calls=CALCULATE, reply_after_tools=True, reply="It is 42.")
    agent = local_agent("agent", agent_config(provider))
    for turn in range(2):  # the same behaviour serves each turn, with no script
        value = agent.agent_type.parse_input(f"What is 6*7? (turn {turn})")
        drafts: list[Draft] = []
        assert await stream_agent(agent, value, {}, drafts.append) == "It is 42."
    roles = [[m["role"] for m in seen.messages] for seen in provider.requests]
    one_turn = [["system", "user"], ["system", "user", "assistant", "tool"]]
    assert roles == one_turn * 2
    assert [m["content"] for m in provider.requests[1].messages if m["role"] == "tool"] == ["42"]


async def test_stamped_tokens_carry_their_send_time(provider: FakeOpenAI) -> None:
    provider.set(stamped_tokens=5, token_delay=0.001)
    model = ChatOpenAI(
        model="gpt-test", base_url=provider.base_url, api_key="sk-test", max_retries=0
    )
    before = time.time_ns()
    texts = [chunk.text async for chunk in model.astream("Count.")]
    after = time.time_ns()
    stamps = [int(text) for text in texts if text]
    assert len(stamps) == 5
    assert all(text.endswith(" ") for text in texts if text)
    assert before <= stamps[0] < stamps[-1] <= after
    assert stamps == sorted(stamps)
