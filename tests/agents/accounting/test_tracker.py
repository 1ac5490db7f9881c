"""``UsageTracker`` on the fake model in process: usage summed over a run's model calls, latency
of streamed tokens, tool calls, and what a run cancelled mid-stream spent."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.agents.accounting.helpers import Deltas, invoke, stream, token_text
from tests.agents.helpers import local_agent
from worker.agents.accounting import UsageTracker
from worker.agents.fake_model import split_tokens
from worker.durations import parse_go_duration
from worker.streaming.frames import TOKEN, Draft

TWO_CALLS = {
    "tools": ["calculator"],
    "model": {
        "model": "acct-two-calls",
        "responses": [
            {
                "tool_calls": [{"name": "calculator", "args": {"expression": "6*7"}}],
                "usage": {"input_tokens": 120, "output_tokens": 15, "cached_input_tokens": 100},
            },
            {
                "content": "It is 42.",
                "usage": {"input_tokens": 140, "output_tokens": 30, "reasoning_tokens": 12},
            },
        ],
    },
}


async def test_usage_is_summed_over_every_model_call_of_a_run() -> None:
    agent = local_agent("agent", TWO_CALLS)
    tracker = UsageTracker(agent_type="agent")
    moved = Deltas()
    assert await invoke(agent, "What is 6*7?", tracker) == "It is 42."
    tracker.close()
    assert tracker.to_json() == {
        "usage": {
            "input_tokens": 260,
            "output_tokens": 45,
            "total_tokens": 305,
            "cost_usd": None,  # no price table
            "cached_input_tokens": 100,
            "reasoning_tokens": 12,
            "estimated": False,
        }
    }
    labels = {"agent_type": "agent", "provider": "fake", "model": "acct-two-calls"}
    tokens = "agentos_llm_tokens_total"
    assert moved(tokens, **labels, kind="input") == 260
    assert moved(tokens, **labels, kind="output") == 45
    assert moved(tokens, **labels, kind="cached_input") == 100
    assert moved(tokens, **labels, kind="reasoning") == 12
    assert moved("agentos_llm_unpriced_tokens_total", **labels) == 305
    model = {"provider": "fake", "model": "acct-two-calls"}
    assert moved("agentos_llm_call_duration_seconds_count", **model) == 2
    # Nothing streamed: no time to first token.
    assert moved("agentos_llm_time_to_first_token_seconds_count", **model) == 0
    # The calculator ran once, and its time was taken.
    assert moved("agentos_tool_calls_total", tool="calculator", outcome="ok") == 1
    assert moved("agentos_tool_duration_seconds_count", tool="calculator") == 1


async def test_a_tool_that_raises_counts_as_an_error() -> None:
    config = {
        "tools": ["calculator"],
        "model": {
            "responses": [
                {"tool_calls": [{"name": "calculator", "args": {"expression": "1/0"}}]},
                "Cannot divide by zero.",
            ]
        },
    }
    tracker = UsageTracker(agent_type="agent")
    moved = Deltas()
    assert await invoke(local_agent("agent", config), "1/0?", tracker) == "Cannot divide by zero."
    assert moved("agentos_tool_calls_total", tool="calculator", outcome="error") == 1
    assert moved("agentos_tool_calls_total", tool="calculator", outcome="ok") == 0
    assert moved("agentos_tool_duration_seconds_count", tool="calculator") == 1


async def test_the_fake_model_counts_tokens_as_it_splits_them() -> None:
    agent = local_agent("chat", {"system_prompt": "Be brief.", "model": {"responses": ["a b c"]}})
    tracker = UsageTracker(agent_type="chat")
    assert await invoke(agent, "Hello there", tracker) == "a b c"
    usage = tracker.to_json()["usage"]
    # "Be brief." and "Hello there" are 3 tokens each; "a b c" is 5 (spaces count).
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (6, 5, 11)


async def test_a_streamed_run_times_its_first_token_and_the_gaps() -> None:
    reply = "alpha beta gamma delta"
    agent = local_agent("chat", {"model": {"model": "acct-streamed", "responses": [reply]}})
    tracker = UsageTracker(agent_type="chat")
    drafts: list[Draft] = []
    moved = Deltas()
    assert await stream(agent, "Go", tracker, drafts.append) == reply
    assert token_text(drafts) == reply
    report = tracker.to_json()
    assert report["usage"]["output_tokens"] == len(split_tokens(reply)) == 7
    assert report["usage"]["estimated"] is False  # the model's own count, on its last chunk
    assert parse_go_duration(report["time_to_first_token"]) > 0
    model = {"provider": "fake", "model": "acct-streamed"}
    assert moved("agentos_llm_time_to_first_token_seconds_count", **model) == 1
    assert moved("agentos_llm_inter_token_seconds_count", **model) == 6
    assert moved("agentos_llm_call_duration_seconds_count", **model) == 1


async def test_a_run_cancelled_mid_stream_keeps_the_tokens_streamed_before() -> None:
    reply = " ".join(f"word{i}" for i in range(100))
    config = {"model": {"model": "acct-cancelled", "responses": [reply], "token_delay": "20ms"}}
    agent = local_agent("chat", config)
    tracker = UsageTracker(agent_type="chat")
    tokens: list[Draft] = []
    three = asyncio.Event()

    def emit(draft: Draft) -> None:
        if draft.event == TOKEN:
            tokens.append(draft)
            if len(tokens) >= 3:
                three.set()

    moved = Deltas()
    run = asyncio.create_task(stream(agent, "Count", tracker, emit))
    await asyncio.wait_for(three.wait(), 10)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    assert run.cancelled()
    tracker.close()
    usage = tracker.to_json()["usage"]
    # The stream's usage never came: each token streamed counts as one output token.
    assert usage["output_tokens"] == len(tokens) < len(split_tokens(reply))
    assert usage["input_tokens"] == 0
    assert usage["estimated"] is True
    labels = {"agent_type": "chat", "provider": "fake", "model": "acct-cancelled"}
    assert moved("agentos_llm_tokens_total", **labels, kind="output") == len(tokens)
    model = {"provider": "fake", "model": "acct-cancelled"}
    assert moved("agentos_llm_call_duration_seconds_count", **model) == 1
    tracker.close()  # once is enough: nothing is counted twice
    assert moved("agentos_llm_call_duration_seconds_count", **model) == 1


async def test_the_basic_provider_spends_nothing() -> None:
    agent = local_agent("chat", {"model": {"provider": "basic", "answer": "Down, sorry."}})
    tracker = UsageTracker(agent_type="chat")
    moved = Deltas()
    assert await invoke(agent, "Hi", tracker) == "Down, sorry."
    usage = tracker.to_json()["usage"]
    assert (usage["total_tokens"], usage["cost_usd"]) == (0, 0.0)  # nothing spent: priced at 0
    labels = {"agent_type": "chat", "provider": "basic", "model": "basic"}
    assert moved("agentos_llm_unpriced_tokens_total", **labels) == 0
    assert moved("agentos_llm_call_duration_seconds_count", provider="basic", model="basic") == 1


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_run_without_model_calls_reports_zero(streamed: bool) -> None:
    agent = local_agent("echo", {})
    tracker = UsageTracker(agent_type="echo")
    await (stream if streamed else invoke)(agent, "hi", tracker)
    assert tracker.to_json() == {
        "usage": {
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "cost_usd": 0.0,
            "cached_input_tokens": 0,
            "reasoning_tokens": 0,
            "estimated": False,
        }
    }
