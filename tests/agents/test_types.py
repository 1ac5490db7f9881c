"""The built-in agent types, as LangChain Runnables."""

from __future__ import annotations

import time

from worker.agents.fake_model import split_tokens
from worker.agents.registry import AgentTypeRegistry
from worker.agents.types.steps import PROGRESS_EVENT

registry = AgentTypeRegistry.discover()


async def test_echo_returns_its_input() -> None:
    echo = registry.build("echo")
    assert await echo.ainvoke({"x": [1]}) == {"x": [1]}
    assert echo.invoke("sync too") == "sync too"


async def test_chat_streams_the_fake_reply_token_by_token() -> None:
    reply = "Paris is the capital of France."
    chat = registry.build("chat", {"model": {"provider": "fake", "responses": [reply]}})
    chunks = [c async for c in chat.astream("capital?")]
    assert "".join(chunks) == reply
    assert [c for c in chunks if c] == split_tokens(reply)


async def test_fake_token_delay_applies_per_token() -> None:
    reply = "one two three four"  # 7 tokens with the spaces
    chat = registry.build(
        "chat", {"model": {"provider": "fake", "responses": [reply], "token_delay": "20ms"}}
    )
    start = time.perf_counter()
    assert await chat.ainvoke("go") == reply
    assert time.perf_counter() - start >= 7 * 0.02


async def test_chat_keeps_braces_in_the_system_prompt_literal() -> None:
    chat = registry.build(
        "chat",
        {"system_prompt": "Answer in {json}.", "model": {"provider": "fake", "responses": ["{}"]}},
    )
    assert await chat.ainvoke("x") == "{}"


async def test_steps_reports_progress_as_custom_events() -> None:
    steps = registry.build("steps", {"steps": 4, "step_delay": "1ms"})
    events = [
        e["data"]
        async for e in steps.astream_events("job", version="v2")
        if e["event"] == "on_custom_event" and e["name"] == PROGRESS_EVENT
    ]
    assert [e["progress"] for e in events] == [25, 50, 75, 100]
    assert events[-1]["message"] == "Processing step 4 of 4"
