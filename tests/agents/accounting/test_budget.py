"""Budgets: an agent's ``limits``, and a run stopped with ``budget_exceeded`` when it would pass
one, mid-stream or after a model call, without falling back to another provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.agents.accounting.helpers import Deltas, invoke, stream
from tests.agents.helpers import REGISTRY, local_agent
from tests.fakes.openai_server import FakeOpenAI
from worker.agents.accounting import PriceTable, RunLimits, UsageTracker, limits_of
from worker.errors import BadRequest, BudgetExceeded
from worker.streaming.frames import TOKEN, Draft

LONG = " ".join(f"word{i}" for i in range(50))  # 99 tokens as the fake model streams them
PRICES = PriceTable.model_validate({"models": {"acct-budget": {"input": 1000, "output": 1000}}})


def chat(limits: dict[str, Any], **model: Any) -> dict[str, Any]:
    return {"model": {"model": "acct-budget", "responses": [LONG], **model}, "limits": limits}


def tracker_for(config: dict[str, Any], agent_type: str = "chat") -> UsageTracker:
    return UsageTracker(agent_type=agent_type, prices=PRICES, limits=limits_of(config))


def test_the_error_is_the_agents_limit_not_a_retryable_failure() -> None:
    error = BudgetExceeded("stopped")
    assert (error.status, error.code, error.retryable) == (422, "budget_exceeded", False)


@pytest.mark.parametrize("agent_type", ["chat", "agent"])
def test_chat_and_agent_configs_take_limits(agent_type: str) -> None:
    kind = REGISTRY.get(agent_type)
    config = {"limits": {"max_tokens_per_run": 1000, "max_cost_per_run": 0.05}}
    parsed = kind.parse_config(config)
    assert parsed.limits == RunLimits(max_tokens_per_run=1000, max_cost_per_run=0.05)  # type: ignore[attr-defined]
    schema = kind.describe()["config_schema"]
    assert "limits" in schema["properties"]
    assert limits_of(config) == RunLimits(max_tokens_per_run=1000, max_cost_per_run=0.05)
    assert limits_of({}) is None
    assert limits_of({"limits": {}}) is None


@pytest.mark.parametrize(
    "limits",
    [{"max_tokens_per_run": 0}, {"max_cost_per_run": -1}, {"max_tokens": 10}],
)
def test_bad_limits_are_refused(limits: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as info:
        REGISTRY.get("chat").parse_config({"limits": limits})
    assert info.value.details[0]["field"].startswith("config.limits")


async def test_the_token_limit_stops_a_run_mid_stream() -> None:
    config = chat({"max_tokens_per_run": 10})
    tracker = tracker_for(config)
    tokens: list[Draft] = []
    moved = Deltas()
    with pytest.raises(BudgetExceeded) as info:
        await stream(local_agent("chat", config), "Go", tracker, tokens.append)
    assert info.value.details == {"limit": "max_tokens_per_run", "allowed": 10, "spent": 11}
    # Stopped at the token that passed the limit, long before the end of the answer.
    assert len([d for d in tokens if d.event == TOKEN]) <= 11
    assert tracker.exceeded is info.value
    usage = tracker.to_json()["usage"]
    assert usage["output_tokens"] == 11
    assert usage["estimated"] is True
    assert (
        moved("agentos_budget_exceeded_total", agent_type="chat", limit="max_tokens_per_run") == 1
    )


async def test_the_cost_limit_stops_a_run_mid_stream() -> None:
    # $1000 per million tokens: a token costs $0.001, so $0.005 allows 5 output tokens.
    config = chat({"max_cost_per_run": 0.005})
    tracker = tracker_for(config)
    moved = Deltas()
    with pytest.raises(BudgetExceeded) as info:
        await stream(local_agent("chat", config), "Go", tracker)
    assert info.value.details["limit"] == "max_cost_per_run"
    assert tracker.to_json()["usage"]["output_tokens"] == 6
    assert moved("agentos_budget_exceeded_total", agent_type="chat", limit="max_cost_per_run") == 1


async def test_a_plain_run_is_stopped_after_the_call_that_passed_the_limit() -> None:
    config = chat({"max_tokens_per_run": 100})  # the prompt and the 99 tokens pass it
    tracker = tracker_for(config)
    with pytest.raises(BudgetExceeded) as info:
        await invoke(local_agent("chat", config), "Go", tracker)
    assert info.value.details["spent"] == tracker.usage.total_tokens > 100


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
async def test_a_budget_stop_does_not_fall_back_to_another_provider(streamed: bool) -> None:
    config = chat({"max_tokens_per_run": 10})
    config["fallbacks"] = [{"provider": "basic", "answer": "Fallback answer."}]
    moved = Deltas()
    with pytest.raises(BudgetExceeded):
        await (stream if streamed else invoke)(
            local_agent("chat", config), "Go", tracker_for(config)
        )
    assert moved("agentos_llm_call_duration_seconds_count", provider="basic", model="basic") == 0


async def test_an_agent_stopped_by_its_budget_calls_no_model_again() -> None:
    call = {"tool_calls": [{"name": "calculator", "args": {"expression": "1+1"}}]}
    usage = {"input_tokens": 40, "output_tokens": 10}
    config = {
        "tools": ["calculator"],
        "model": {
            "model": "acct-budget-agent",
            "responses": [{**call, "usage": usage}, {**call, "usage": usage}, "2"],
        },
        "limits": {"max_tokens_per_run": 50},
    }
    tracker = tracker_for(config, "agent")
    moved = Deltas()
    with pytest.raises(BudgetExceeded) as info:
        await invoke(local_agent("agent", config), "1+1?", tracker)
    # The first call spent exactly the limit (allowed); the second passed it, and was the last.
    assert info.value.details == {"limit": "max_tokens_per_run", "allowed": 50, "spent": 100}
    labels = {"provider": "fake", "model": "acct-budget-agent"}
    assert moved("agentos_llm_call_duration_seconds_count", **labels) == 2
    assert moved("agentos_tool_calls_total", tool="calculator", outcome="ok") == 1


async def test_without_limits_the_tracker_never_raises() -> None:
    tracker = UsageTracker(agent_type="chat")
    await stream(local_agent("chat", chat({})), "Go", tracker)
    assert tracker.exceeded is None


@pytest.fixture
async def provider() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def test_the_token_limit_stops_an_openai_stream(provider: FakeOpenAI) -> None:
    provider.set(reply=LONG, usage={"prompt_tokens": 5, "completion_tokens": 99})
    config = {
        "model": {
            "provider": "openai",
            "model": "acct-budget-openai",
            "base_url": provider.base_url,
            "api_key": "sk-test",
            "retry": {"max_attempts": 3},
        },
        "limits": {"max_tokens_per_run": 20},
    }
    tracker = tracker_for(config)
    with pytest.raises(BudgetExceeded):
        await stream(local_agent("chat", config), "Go", tracker)
    assert tracker.to_json()["usage"]["output_tokens"] == 21
    assert provider.count == 1  # not retried
