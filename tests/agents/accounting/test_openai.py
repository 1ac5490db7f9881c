"""Usage through ``langchain-openai`` for real: the ``openai`` provider against the fake OpenAI
server, whose exact counts must reach the tracker unchanged, plain and streamed; and a stream
cancelled before its usage arrived."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.agents.accounting.helpers import Deltas, invoke, stream, token_text
from tests.agents.helpers import local_agent
from tests.fakes.openai_server import FakeOpenAI
from worker.agents.accounting import PriceTable, UsageTracker
from worker.streaming.frames import TOKEN, Draft

USAGE = {
    "prompt_tokens": 1234,
    "completion_tokens": 56,
    "cached_tokens": 1000,
    "reasoning_tokens": 7,
}
EXPECTED = {
    "input_tokens": 1234,
    "output_tokens": 56,
    "total_tokens": 1290,
    "cached_input_tokens": 1000,
    "reasoning_tokens": 7,
    "estimated": False,
}


@pytest.fixture
async def provider() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def openai_config(server: FakeOpenAI, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": {
            "provider": "openai",
            "model": model,
            "base_url": server.base_url,
            "api_key": "sk-test",
            "timeout": "5s",
            "retry": {"max_attempts": 1},
        },
        **extra,
    }


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
async def test_exact_counts_from_the_provider_arrive_unchanged(
    provider: FakeOpenAI, streamed: bool
) -> None:
    model = f"acct-openai-{'streamed' if streamed else 'plain'}"
    provider.set(reply="Fine, thanks for asking.", usage=USAGE)
    agent = local_agent("chat", openai_config(provider, model))
    tracker = UsageTracker(agent_type="chat")
    moved = Deltas()
    drafts: list[Draft] = []
    if streamed:
        output = await stream(agent, "How are you?", tracker, drafts.append)
    else:
        output = await invoke(agent, "How are you?", tracker)
    assert output == "Fine, thanks for asking."
    assert provider.requests[-1].stream is streamed
    report = tracker.to_json()
    assert report["usage"] == {**EXPECTED, "cost_usd": None}
    assert ("time_to_first_token" in report) is streamed
    if streamed:
        assert token_text(drafts) == "Fine, thanks for asking."
    # ChatOpenAI names the provider "openai" and the model as configured.
    labels = {"agent_type": "chat", "provider": "openai", "model": model}
    tokens = "agentos_llm_tokens_total"
    assert moved(tokens, **labels, kind="input") == 1234
    assert moved(tokens, **labels, kind="output") == 56
    assert moved(tokens, **labels, kind="cached_input") == 1000
    assert moved(tokens, **labels, kind="reasoning") == 7
    model_labels = {"provider": "openai", "model": model}
    assert moved("agentos_llm_call_duration_seconds_count", **model_labels) == 1
    assert moved("agentos_llm_time_to_first_token_seconds_count", **model_labels) == streamed


async def test_the_agent_type_sums_its_calls_over_openai(provider: FakeOpenAI) -> None:
    provider.script(
        {"tool_calls": [{"name": "calculator", "args": {"expression": "2+2"}}], "usage": USAGE},
        {"reply": "4.", "usage": {"prompt_tokens": 1300, "completion_tokens": 2}},
    )
    agent = local_agent("agent", openai_config(provider, "acct-openai-agent", tools=["calculator"]))
    tracker = UsageTracker(agent_type="agent")
    assert await stream(agent, "2+2?", tracker) == "4."
    usage = tracker.to_json()["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (1234 + 1300, 56 + 2)
    assert (usage["cached_input_tokens"], usage["reasoning_tokens"]) == (1000, 7)


async def test_prices_apply_to_the_providers_counts(provider: FakeOpenAI) -> None:
    provider.set(reply="ok", usage=USAGE)
    prices = PriceTable.model_validate(
        {
            "models": {
                "openai:acct-openai-priced": {"input": 2.5, "output": 10, "cached_input": 1.25}
            }
        }
    )
    tracker = UsageTracker(agent_type="chat", prices=prices)
    await invoke(local_agent("chat", openai_config(provider, "acct-openai-priced")), "?", tracker)
    # 234 uncached x $2.50 + 1000 cached x $1.25 + 56 x $10, per million tokens
    assert tracker.to_json()["usage"]["cost_usd"] == pytest.approx(0.002395, abs=1e-12)


async def test_a_stream_cancelled_before_its_usage_keeps_its_streamed_tokens(
    provider: FakeOpenAI,
) -> None:
    reply = " ".join(f"w{i}" for i in range(200))
    provider.set(reply=reply, token_delay=0.02, usage=USAGE)
    agent = local_agent("chat", openai_config(provider, "acct-openai-cancelled"))
    tracker = UsageTracker(agent_type="chat")
    tokens: list[Draft] = []
    five = asyncio.Event()

    def emit(draft: Draft) -> None:
        if draft.event == TOKEN:
            tokens.append(draft)
            if len(tokens) >= 5:
                five.set()

    run = asyncio.create_task(stream(agent, "Count", tracker, emit))
    await asyncio.wait_for(five.wait(), 10)
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    tracker.close()
    usage = tracker.to_json()["usage"]
    assert usage["output_tokens"] == len(tokens) < 399
    assert usage["input_tokens"] == 0  # the prompt's count comes with the usage, at the end
    assert usage["estimated"] is True
