"""Admission: a run whose providers are all unavailable is refused before its Runnable starts,
with the error the chain would give; nothing is refused while a provider could answer, and a
half-open breaker still gets exactly one trial call."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.runnables import RunnableConfig
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAI
from tests.resilience.conftest import openai_spec, provider_name, resolve_agent
from worker.agents import runtime
from worker.agents.providers import BASIC_ANSWER
from worker.agents.store import ResolvedAgent
from worker.errors import Unavailable
from worker.resilience import Resilience, RetryPolicy
from worker.testing import wait_for

NO_RETRY = {"max_attempts": 1}


class Runs(AsyncCallbackHandler):
    """Counts the LangChain runs (chains and chat models) that start."""

    def __init__(self) -> None:
        self.chains = 0
        self.models = 0

    async def on_chain_start(self, *_: Any, **__: Any) -> None:
        self.chains += 1

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: Any, *, run_id: UUID, **_: Any
    ) -> None:
        self.models += 1


class Started:
    """The ``work`` of a run (as ``runtime.invoke`` does it), noting whether it was called."""

    def __init__(self, agent: ResolvedAgent, runs: Runs) -> None:
        self.calls = 0
        self._agent = agent
        self._runs = runs

    async def __call__(self, config: RunnableConfig) -> Any:
        self.calls += 1
        return await self._agent.runnable.ainvoke("hi", {**config, "callbacks": [self._runs]})


def _refused(provider: str) -> float:
    labels = {"provider": provider, "outcome": "breaker_open"}
    return REGISTRY.get_sample_value("agentos_provider_calls_total", labels) or 0.0


async def test_an_outage_is_refused_before_the_runnable_starts_with_the_chains_error(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    primary.set(mode="status", status=500)
    secondary.set(mode="status", status=502)
    agent = resolve_agent(
        "chat",
        {
            "model": openai_spec(
                primary, breaker={"fail_max": 1, "reset_timeout": "20s"}, retry=NO_RETRY
            ),
            "fallbacks": [
                openai_spec(
                    secondary, breaker={"fail_max": 1, "reset_timeout": "8s"}, retry=NO_RETRY
                )
            ],
        },
    )
    p_name, s_name = provider_name(primary), provider_name(secondary)
    assert agent.admission is not None
    assert agent.admission.providers == [p_name, s_name]

    # Both providers fail for real: the run starts, both breakers open, 503 from the chain.
    runs = Runs()
    work = Started(agent, runs)
    with pytest.raises(Unavailable):
        await runtime.execute(agent, work, time_limit=5)
    assert (work.calls, runs.models) == (1, 2)
    assert (primary.count, secondary.count) == (1, 1)

    # Now every run is refused at admission: no LangChain run, no provider request.
    runs = Runs()
    work = Started(agent, runs)
    before = (_refused(p_name), _refused(s_name))
    for _ in range(100):
        with pytest.raises(Unavailable) as refused:
            await runtime.execute(agent, work, time_limit=5)
    # (How fast a refusal is: python -m bench.outage, whose invocations admission refuses.)
    assert (work.calls, runs.chains, runs.models) == (0, 0, 0)
    assert (primary.count, secondary.count) == (1, 1)
    assert (_refused(p_name), _refused(s_name)) == (before[0] + 100, before[1] + 100)

    # The same error the chain gives when asked directly (its Runnable starts, then refuses).
    with pytest.raises(Unavailable) as chained:
        await agent.runnable.ainvoke("hi", {"callbacks": [runs]})
    assert runs.chains > 0  # the handler does see runs: admission is what skipped them
    assert (primary.count, secondary.count) == (1, 1)
    ours, theirs = refused.value, chained.value
    assert (ours.status, ours.code, ours.retryable) == (theirs.status, theirs.code, True)
    assert ours.status == 503
    assert ours.code == "provider_unavailable"
    assert ours.message == theirs.message
    assert [d["provider"] for d in ours.details] == [d["provider"] for d in theirs.details]
    assert ours.retry_after is not None
    assert theirs.retry_after is not None
    assert 7 < ours.retry_after <= 8  # until the first breaker (the secondary's) half-opens
    assert abs(ours.retry_after - theirs.retry_after) < 0.5


async def test_a_half_open_breaker_still_admits_exactly_one_trial(primary: FakeOpenAI) -> None:
    primary.set(mode="status", status=500)
    # The suite's default settings, in hand: the test watches the primary's breaker.
    resilience = Resilience(
        fail_max=3,
        reset_timeout=30,
        retry=RetryPolicy(max_attempts=1, initial_backoff=0.01, max_wait=5),
    )
    agent = resolve_agent(
        "chat",
        {
            "model": openai_spec(
                primary, breaker={"fail_max": 1, "reset_timeout": "500ms"}, retry=NO_RETRY
            )
        },
        resilience,
    )
    assert agent.admission is not None
    with pytest.raises(Unavailable):
        await runtime.invoke(agent, "hi", time_limit=5)  # opens the breaker
    with pytest.raises(Unavailable) as refused:
        await runtime.invoke(agent, "hi", time_limit=5)  # refused at admission
    assert refused.value.retry_after is not None
    assert 0.3 < refused.value.retry_after <= 0.5
    assert primary.count == 1

    # Due: admission lets the next run through and the breaker makes it the trial. It answers
    # slowly, so every other run arrives while it is out, and is refused before it starts.
    breaker = resilience.get(provider_name(primary))
    assert breaker is not None
    await wait_for(lambda: breaker.refuses_for() is None, what="the breaker due for a trial")
    primary.set(reply="From the primary.", delay=0.3)
    trial = asyncio.create_task(runtime.invoke(agent, "hi", time_limit=5))
    await wait_for(lambda: primary.count == 2, what="the trial's request at the primary")
    assert primary.count == 2
    runs = Runs()
    works = [Started(agent, runs) for _ in range(9)]
    outcomes = await asyncio.gather(
        *(runtime.execute(agent, w, time_limit=5) for w in works), return_exceptions=True
    )
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
    assert all(o.retry_after == 0.5 for o in outcomes if isinstance(o, Unavailable))
    assert sum(w.calls for w in works) == 0
    assert runs.chains == 0
    assert (await trial).output == "From the primary."
    assert primary.count == 2  # exactly one trial

    # The trial succeeded: the breaker is closed and runs are admitted again.
    primary.set(reply="From the primary.")
    answers = await asyncio.gather(*(runtime.invoke(agent, "hi", time_limit=5) for _ in range(3)))
    assert [a.output for a in answers] == ["From the primary."] * 3
    assert primary.count == 5


async def test_nothing_is_refused_while_a_provider_could_answer(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    primary.set(mode="status", status=500)
    breaker = {"fail_max": 1, "reset_timeout": "5m"}

    # A `basic` (or `fake`) provider always answers: such an agent has nothing to check.
    with_basic = resolve_agent(
        "chat",
        {
            "model": openai_spec(primary, breaker=breaker, retry=NO_RETRY),
            "fallbacks": [{"provider": "basic"}],
        },
    )
    assert with_basic.admission is None
    for _ in range(3):  # the first opens the primary's breaker; then the primary is skipped
        result = await runtime.invoke(with_basic, "hi", time_limit=5)
        assert (result.output, result.provider, result.degraded) == (BASIC_ANSWER, "basic", True)
    assert primary.count == 1
    with_fake = resolve_agent(
        "chat", {"model": openai_spec(primary), "fallbacks": [{"provider": "fake"}]}
    )
    assert with_fake.admission is None

    # The primary's breaker is open but the secondary's is closed: admitted, the secondary answers.
    with_secondary = resolve_agent(
        "chat",
        {
            "model": openai_spec(primary, breaker=breaker, retry=NO_RETRY),
            "fallbacks": [openai_spec(secondary, retry=NO_RETRY)],
        },
    )
    assert with_secondary.admission is not None
    with_secondary.admission.check()
    for _ in range(3):
        result = await runtime.invoke(with_secondary, "hi", time_limit=5)
        assert (result.output, result.degraded) == ("From the secondary.", True)
    assert (primary.count, secondary.count) == (2, 3)  # its own breakers: one more failure


def test_agents_without_a_model_have_nothing_to_check() -> None:
    assert resolve_agent("echo", {}).admission is None
    assert resolve_agent("steps", {"steps": 1, "step_delay": 0}).admission is None
    assert resolve_agent("chat", {}).admission is None  # the default `fake` model


async def test_refusals_keep_no_memory(primary: FakeOpenAI) -> None:
    primary.set(mode="status", status=500)
    spec = openai_spec(primary, breaker={"fail_max": 1, "reset_timeout": "5m"}, retry=NO_RETRY)
    agent = resolve_agent("chat", {"model": spec})

    async def refuse(n: int) -> None:
        for _ in range(n):
            with pytest.raises(Unavailable):
                await runtime.invoke(agent, "hi", time_limit=5)

    await refuse(200)  # the first opens the breaker; the rest warm up (metric children...)
    assert primary.count == 1
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        await refuse(2000)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(d.size_diff for d in after.compare_to(before, "filename"))
    print(f"\nadmission refusals: {growth} bytes kept after 2000")  # shown with pytest -s
    assert growth < 64 * 1024  # nothing per refusal (a leak would be >= 2000 objects)
    assert primary.count == 1
