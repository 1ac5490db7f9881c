"""Breakers, retries and fallbacks of the ``chat`` agent against real failing HTTP providers
(the fake OpenAI server), through ``langchain-openai``."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.resilience.conftest import build_chat, openai_spec, provider_name
from worker.agents.providers import BASIC_ANSWER
from worker.errors import BudgetExceeded, Unavailable
from worker.resilience import Resilience, RetryPolicy, run_scope
from worker.resilience.scope import stop_run
from worker.testing import wait_for

FAST_BREAKER = {"fail_max": 3, "reset_timeout": "1s"}
NO_RETRY = {"max_attempts": 1}


async def test_primary_failing_opens_its_breaker_then_one_trial_then_traffic_returns(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    # The suite's default settings, in hand: the test watches the primary's breaker.
    resilience = Resilience(
        fail_max=3,
        reset_timeout=30,
        retry=RetryPolicy(max_attempts=1, initial_backoff=0.01, max_wait=5),
    )
    chat = build_chat(
        {
            "model": openai_spec(primary, breaker=FAST_BREAKER, retry=NO_RETRY),
            "fallbacks": [openai_spec(secondary)],
        },
        resilience,
    )
    with run_scope(time_limit=10) as report:
        assert await chat.ainvoke("hi") == "From the primary."
    assert (report.provider, report.degraded) == (provider_name(primary), False)

    primary.set(mode="status", status=500)
    for _ in range(3):  # fail_max failures, each answered by the secondary
        with run_scope(time_limit=10) as report:
            assert await chat.ainvoke("hi") == "From the secondary."
        assert (report.provider, report.degraded) == (provider_name(secondary), True)
    assert primary.count == 4

    # Open: the primary is skipped, without a request: each call goes straight to the
    # secondary. (How fast: python -m bench.outage measures a call that skips the primary.)
    for _ in range(20):
        with run_scope(time_limit=10) as report:
            assert await chat.ainvoke("hi") == "From the secondary."
        assert (report.provider, report.degraded) == (provider_name(secondary), True)
    assert primary.count == 4
    assert secondary.count == 23

    # After reset_timeout the primary recovers; of many concurrent calls exactly one is the
    # trial (the primary answers slowly, so the others arrive while it is out).
    primary.set(reply="From the primary.", delay=0.3)
    breaker = resilience.get(provider_name(primary))
    assert breaker is not None
    await wait_for(lambda: breaker.refuses_for() is None, what="the breaker due for a trial")
    answers = await asyncio.gather(*(chat.ainvoke("hi") for _ in range(10)))
    assert primary.count == 5
    assert answers.count("From the primary.") == 1
    assert answers.count("From the secondary.") == 9

    # The trial succeeded: traffic is back on the primary.
    primary.set(reply="From the primary.")
    with run_scope(time_limit=10) as report:
        assert await chat.ainvoke("hi") == "From the primary."
    assert (report.provider, report.degraded) == (provider_name(primary), False)
    assert primary.count == 6


async def test_both_failing_gives_the_basic_answer_marked_degraded(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    primary.set(mode="status", status=503)
    secondary.set(mode="close")
    chat = build_chat(
        {
            "model": openai_spec(primary),
            "fallbacks": [openai_spec(secondary), {"provider": "basic"}],
        }
    )
    with run_scope(time_limit=10) as report:
        assert await chat.ainvoke("hi") == BASIC_ANSWER
    assert (report.provider, report.degraded) == ("basic", True)


async def test_no_basic_provider_raises_unavailable_with_the_first_half_open(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    primary.set(mode="status", status=500)
    secondary.set(mode="status", status=502)
    chat = build_chat(
        {
            "model": openai_spec(primary, breaker={"fail_max": 1, "reset_timeout": "20s"}),
            "fallbacks": [openai_spec(secondary, breaker={"fail_max": 1, "reset_timeout": "8s"})],
        }
    )
    with pytest.raises(Unavailable) as first:
        [c async for c in chat.astream("hi")]  # both fail, both breakers open; as a stream
    assert 7 < first.value.retry_after <= 8  # type: ignore[operator]
    assert first.value.status == 503
    assert first.value.code == "provider_unavailable"

    with pytest.raises(Unavailable) as again:
        await chat.ainvoke("hi")  # both skipped at once: neither gets a request (below)
    assert 7 < again.value.retry_after <= 8  # type: ignore[operator]
    assert (primary.count, secondary.count) == (1, 1)
    assert [d["provider"] for d in again.value.details] == [
        provider_name(primary),
        provider_name(secondary),
    ]


async def test_a_4xx_is_not_retried_and_not_unavailable(primary: FakeOpenAI) -> None:
    primary.set(mode="status", status=400)
    chat = build_chat(
        {"model": openai_spec(primary, retry={"max_attempts": 3, "initial_backoff": "1ms"})}
    )
    with pytest.raises(Exception, match="400") as info:
        await chat.ainvoke("hi")
    assert not isinstance(info.value, Unavailable)  # trying later would fail again
    assert primary.count == 1


async def test_transient_errors_are_retried_with_backoff(primary: FakeOpenAI) -> None:
    primary.script({"mode": "status", "status": 502}, {"mode": "close"})
    chat = build_chat(
        {"model": openai_spec(primary, retry={"max_attempts": 3, "initial_backoff": "50ms"})}
    )
    assert await chat.ainvoke("hi") == "From the primary."
    # Waits of at least 50ms and 100ms (plus up to 50ms of jitter each) between the attempts,
    # as the server saw them.
    first, second, third = (r.at for r in primary.requests)
    assert second - first >= 0.05
    assert third - second >= 0.1
    assert primary.count == 3


async def test_a_429_retry_after_is_honoured(primary: FakeOpenAI) -> None:
    primary.script({"mode": "status", "status": 429, "retry_after": 0.4})
    chat = build_chat(
        {"model": openai_spec(primary, retry={"max_attempts": 2, "initial_backoff": "1ms"})}
    )
    start = time.perf_counter()
    assert await chat.ainvoke("hi") == "From the primary."
    assert time.perf_counter() - start >= 0.4
    waited = primary.requests[1].at - primary.requests[0].at
    assert waited >= 0.4  # as the server asked
    assert primary.count == 2


async def test_retries_never_wait_past_the_deadline(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    primary.set(mode="status", status=429, retry_after=3)
    chat = build_chat(
        {
            "model": openai_spec(primary, retry={"max_attempts": 5, "max_wait": "10s"}),
            "fallbacks": [openai_spec(secondary)],
        }
    )
    with run_scope(time_limit=1.0) as report:
        # A 3s wait would pass the 1s deadline: the run would fail instead of falling back.
        assert await chat.ainvoke("hi") == "From the secondary."
    assert primary.count == 1
    assert secondary.count == 1
    assert report.degraded


async def test_a_hanging_provider_times_out_and_falls_back(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    primary.set(mode="hang", hang=10)
    chat = build_chat(
        {
            "model": openai_spec(primary, timeout="300ms", retry=NO_RETRY),
            "fallbacks": [openai_spec(secondary)],
        }
    )
    start = time.perf_counter()
    assert await chat.ainvoke("hi") == "From the secondary."
    assert time.perf_counter() - start >= 0.3  # it gave the primary its timeout
    # ... and no more: the secondary was asked while the primary still hung (its 10 s).
    assert secondary.requests[0].at < primary.requests[0].at + 10


async def test_tokens_still_stream_through_the_guard_and_the_fallback(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    reply = "one two three four five"
    secondary.set(reply=reply, token_delay=0.02)
    primary.set(mode="status", status=500)
    chat = build_chat(
        {"model": openai_spec(primary, retry=NO_RETRY), "fallbacks": [openai_spec(secondary)]}
    )
    events = [
        e
        async for e in chat.astream_events("hi", version="v2")
        if e["event"] == "on_chat_model_stream"
    ]
    tokens = [e["data"]["chunk"].content for e in events]
    assert "".join(tokens) == reply
    assert len([t for t in tokens if t]) == 9  # five words and four spaces, one event each
    assert {e["metadata"]["agentos_provider"] for e in events} == {provider_name(secondary)}
    assert all(e["metadata"]["agentos_degraded"] for e in events)
    assert all(e["name"] == "ChatOpenAI" for e in events)

    # astream too, and the tokens arrive over time, not in one piece at the end.
    arrivals = [time.perf_counter() async for chunk in chat.astream("hi") if chunk]
    assert len(arrivals) == 9
    assert arrivals[-1] - arrivals[0] >= 0.1


async def test_a_shared_endpoint_has_one_breaker_for_every_agent(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    resilience = Resilience(
        fail_max=2, reset_timeout=30, retry=RetryPolicy(max_attempts=1, initial_backoff=0)
    )
    config = {"model": openai_spec(primary), "fallbacks": [openai_spec(secondary)]}
    one, two = build_chat(config, resilience), build_chat(config, resilience)
    primary.set(mode="status", status=500)
    await one.ainvoke("hi")
    await one.ainvoke("hi")  # opens the primary's breaker ...
    assert await two.ainvoke("hi") == "From the secondary."  # ... for the other agent too
    assert primary.count == 2
    assert resilience.snapshot()[provider_name(primary)].state == "open"


async def test_a_stopped_run_calls_no_provider_and_no_fallback(
    primary: FakeOpenAI, secondary: FakeOpenAI
) -> None:
    chat = build_chat({"model": openai_spec(primary), "fallbacks": [openai_spec(secondary)]})
    reason = BudgetExceeded("spent")
    with run_scope(time_limit=10):
        stop_run(reason)
        stop_run(BudgetExceeded("a second reason is ignored"))
        with pytest.raises(BudgetExceeded) as info:
            await chat.ainvoke("hi")
    assert info.value is reason
    assert (primary.count, secondary.count) == (0, 0)
    stop_run(reason)  # outside a scope: nothing to stop
    assert await chat.ainvoke("hi") == "From the primary."
