"""How ``runtime.execute`` accounts a run: the worker's providers report into the run's scope
with no handler attached, a handler only for what does not report itself (another model, tools)
and never two on a streamed run, the result's ``spent``, and the switch that turns it off."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda

from tests.agents.accounting.helpers import Deltas, invoke, stream
from tests.agents.helpers import local_agent
from worker.agents import runtime
from worker.agents.accounting import PriceTable, UsageCallbacks
from worker.agents.agent_type import BuildContext
from worker.agents.fake_model import ScriptedChatModel, split_tokens
from worker.agents.from_runnable import runnable_type
from worker.agents.store import ResolvedAgent
from worker.streaming.agent_events import FrameCallbacks, stream_agent

PRICES = PriceTable.model_validate({"models": {"acct-wiring": {"input": 1, "output": 2}}})
CHAT = {"model": {"model": "acct-wiring", "responses": ["one two"]}}


async def handlers_of(agent: ResolvedAgent, *, streamed: bool = False) -> list[Any]:
    """The callback handlers a run of ``agent`` has, as ``runtime.execute`` runs it (streamed:
    as the streaming doors run it, their frame handler included)."""
    seen: list[Any] = []

    async def probe(value: Any, config: RunnableConfig) -> Any:
        seen.extend(config["callbacks"].handlers if config.get("callbacks") else [])
        return await agent.runnable.ainvoke(value, config)

    runnable = RunnableLambda(probe)

    async def work(config: RunnableConfig) -> Any:
        if streamed:
            return await stream_agent(agent, "hi", config, lambda _: None, runnable=runnable)
        return await runnable.ainvoke("hi", config)

    await runtime.execute(agent, work, time_limit=10)
    return seen


@pytest.mark.parametrize("type_name", ["chat", "echo", "steps"])
async def test_runs_of_types_whose_calls_report_themselves_get_no_handler(
    type_name: str,
) -> None:
    config = CHAT if type_name == "chat" else {}
    assert await handlers_of(local_agent(type_name, config)) == []


async def test_a_chat_run_reports_its_usage_and_price_without_a_handler() -> None:
    agent = local_agent("chat", {**CHAT, "system_prompt": "Be brief."}, BuildContext(prices=PRICES))
    result = await runtime.invoke(agent, "Hello there", time_limit=10)
    assert result.output == "one two"
    # "Be brief." and "Hello there" are 3 tokens each, "one two" 3: $1 and $2 per million.
    assert result.spent == {
        "usage": {
            "input_tokens": 6,
            "output_tokens": 3,
            "total_tokens": 9,
            "cost_usd": pytest.approx(12e-6, abs=1e-15),
            "cached_input_tokens": 0,
            "reasoning_tokens": 0,
            "estimated": False,
        }
    }


async def test_a_streamed_chat_run_reports_its_first_token() -> None:
    agent = local_agent("chat", CHAT)
    seen: list[Any] = []

    async def work(config: RunnableConfig) -> Any:
        seen.extend(config.get("callbacks") or [])
        return await stream_agent(agent, "hi", config, lambda _: None)

    result = await runtime.execute(agent, work, time_limit=10)
    assert seen == []  # only the frame handler, which stream_agent adds
    assert result.spent is not None
    assert result.spent["usage"]["output_tokens"] == len(split_tokens("one two"))
    assert result.spent["time_to_first_token"].endswith("s")


async def test_an_agent_run_gets_one_usage_handler_and_counts_each_call_once() -> None:
    config = {
        "tools": ["calculator"],
        "model": {
            "model": "acct-wiring-agent",
            "responses": [
                {"tool_calls": [{"name": "calculator", "args": {"expression": "6*7"}}]},
                "42",
            ],
        },
    }
    handlers = await handlers_of(local_agent("agent", config))
    assert [type(h) for h in handlers] == [UsageCallbacks]
    moved = Deltas()
    agent = local_agent("agent", config)
    tracker = agent.tracker()
    assert tracker is not None
    assert await stream(agent, "6*7?", tracker) == "42"
    labels = {"provider": "fake", "model": "acct-wiring-agent"}
    assert moved("agentos_llm_call_duration_seconds_count", **labels) == 2
    assert moved("agentos_tool_calls_total", tool="calculator", outcome="ok") == 1
    assert tracker.to_json()["usage"]["output_tokens"] == 1 + 1  # a tool call, then "42"


async def test_a_streamed_agent_run_has_one_handler() -> None:
    agent = local_agent("agent", {"model": {"responses": ["fine"]}})
    handlers = await handlers_of(agent, streamed=True)
    assert len(handlers) == 1
    assert isinstance(handlers[0], FrameCallbacks)
    assert isinstance(handlers[0]._usage, UsageCallbacks)


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
async def test_a_model_that_is_not_a_provider_is_heard_by_the_handler(streamed: bool) -> None:
    model = ScriptedChatModel(responses=["its own answer"], model="acct-wiring-own")
    prompt = ChatPromptTemplate.from_messages([("human", "{input}")])
    kind = runnable_type("own-model", prompt | model, source="tests")
    agent = local_agent(kind, {})
    tracker = agent.tracker()
    assert tracker is not None
    moved = Deltas()
    await (stream if streamed else invoke)(agent, {"input": "Say it"}, tracker)
    usage = tracker.to_json()["usage"]
    # "Say it" is 3 tokens as the fake model counts them, "its own answer" 5.
    assert (usage["input_tokens"], usage["output_tokens"]) == (3, 5)
    labels = {"agent_type": "own-model", "provider": "fake", "model": "acct-wiring-own"}
    assert moved("agentos_llm_tokens_total", **labels, kind="input") == 3


async def test_accounting_off_reports_nothing_and_enforces_no_limit() -> None:
    config = {**CHAT, "limits": {"max_tokens_per_run": 1}}
    agent = local_agent("chat", config, BuildContext(accounting=False))
    assert agent.accounting is None
    assert agent.tracker() is None
    moved = Deltas()
    result = await runtime.invoke(agent, "Hello", time_limit=10)
    assert (result.output, result.spent) == ("one two", None)
    labels = {"agent_type": "chat", "provider": "fake", "model": "acct-wiring"}
    assert moved("agentos_llm_tokens_total", **labels, kind="output") == 0
