"""The asyncio breaker wrapper: trips on failing coroutines, one trial when half-open, and
cancellation is never an outcome."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from worker.resilience.breaker import AsyncBreaker, BreakerOpen, State
from worker.testing import wait_for


class Boom(Exception):
    """A provider failure."""


async def _failing() -> None:
    await asyncio.sleep(0)  # a real coroutine: it yields to the loop once, then fails
    raise Boom


async def _succeeding() -> None:
    return None


class Slow:
    """A call that outlasts the test unless it is cancelled; ``started`` once it was admitted."""

    def __init__(self) -> None:
        self.started = False
        self.gate = asyncio.Event()

    async def __call__(self) -> None:
        self.started = True
        await self.gate.wait()


async def _due(breaker: AsyncBreaker) -> None:
    """Wait until the open breaker's reset_timeout is over: its next call is the trial."""
    await wait_for(lambda: breaker.refuses_for() is None, what=f"{breaker.name} due for a trial")


async def _call(breaker: AsyncBreaker, fn: Callable[[], Awaitable[object]]) -> None:
    with breaker.calling():
        await fn()


async def test_a_failing_async_def_trips_it() -> None:
    breaker = AsyncBreaker(name="t-trip", fail_max=3, reset_timeout=30)
    for _ in range(3):
        with pytest.raises(Boom):
            await _call(breaker, _failing)
    assert breaker.state is State.OPEN

    called = False

    async def never() -> None:
        nonlocal called
        called = True

    with pytest.raises(BreakerOpen) as info:
        await _call(breaker, never)
    assert not called
    # Refused before the await, not after: entering the guard raises, without a loop turn.
    with pytest.raises(BreakerOpen), breaker.calling():
        pytest.fail("admitted")
    assert 29 < info.value.retry_after <= 30
    assert info.value.status == 503
    assert info.value.retryable


async def test_successes_reset_the_count_and_uncounted_errors_are_successes() -> None:
    breaker = AsyncBreaker(
        name="t-count", fail_max=2, reset_timeout=30, counts=lambda e: isinstance(e, Boom)
    )
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    assert breaker.fail_counter == 1

    async def bad_request() -> None:
        raise ValueError("a 400: the provider answered")

    with pytest.raises(ValueError, match="a 400"):
        await _call(breaker, bad_request)
    assert breaker.fail_counter == 0
    assert breaker.state is State.CLOSED


async def test_concurrent_calls_in_half_open_admit_exactly_one() -> None:
    breaker = AsyncBreaker(name="t-half-open", fail_max=1, reset_timeout=0.05)
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    assert breaker.state is State.OPEN
    await _due(breaker)

    gate = asyncio.Event()
    entered = 0

    async def trial() -> None:
        nonlocal entered
        entered += 1
        await gate.wait()

    tasks = [asyncio.create_task(_call(breaker, trial)) for _ in range(20)]
    await wait_for(
        lambda: entered + sum(t.done() for t in tasks) >= 20, what="every caller let in or refused"
    )
    assert entered == 1
    assert breaker.state is State.HALF_OPEN
    refused = [t for t in tasks if t.done()]
    assert len(refused) == 19
    assert all(isinstance(t.exception(), BreakerOpen) for t in refused)

    gate.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert breaker.state is State.CLOSED  # the trial succeeded: traffic flows again


async def test_a_failed_trial_opens_it_again() -> None:
    breaker = AsyncBreaker(name="t-trial-fails", fail_max=1, reset_timeout=0.05)
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    await _due(breaker)
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    assert breaker.state is State.OPEN
    assert breaker.retry_after() > 0.03


async def test_a_cancelled_call_does_not_count_and_stays_a_cancellation() -> None:
    breaker = AsyncBreaker(name="t-cancel", fail_max=1, reset_timeout=30)
    slow = Slow()
    task = asyncio.create_task(_call(breaker, slow))
    await wait_for(lambda: slow.started, what="the call admitted")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert breaker.state is State.CLOSED
    assert breaker.fail_counter == 0

    # A deadline (asyncio.timeout cancels inside) is not a failure either, and stays a timeout.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await _call(breaker, Slow())
    assert breaker.fail_counter == 0
    assert breaker.state is State.CLOSED


async def test_a_cancelled_trial_frees_the_half_open_slot() -> None:
    breaker = AsyncBreaker(name="t-cancel-trial", fail_max=1, reset_timeout=0.05)
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    await _due(breaker)
    slow = Slow()
    trial = asyncio.create_task(_call(breaker, slow))
    await wait_for(lambda: slow.started, what="the trial admitted")
    assert breaker.state is State.HALF_OPEN
    trial.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await trial
    assert breaker.state is State.HALF_OPEN  # no outcome recorded
    await _call(breaker, _succeeding)  # the next caller is the trial
    assert breaker.state is State.CLOSED


async def test_a_slow_success_from_before_the_trip_does_not_close_it() -> None:
    breaker = AsyncBreaker(name="t-generation", fail_max=1, reset_timeout=30)
    call = Slow()
    slow = asyncio.create_task(_call(breaker, call))
    await wait_for(lambda: call.started, what="the slow call admitted")
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    assert breaker.state is State.OPEN
    call.gate.set()
    await slow  # admitted while closed; its success says nothing about the open endpoint
    assert breaker.state is State.OPEN


async def test_refuses_for_answers_as_admission_would_without_taking_the_call() -> None:
    breaker = AsyncBreaker(name="t-refuses-for", fail_max=1, reset_timeout=0.2)
    assert breaker.refuses_for() is None  # closed
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    wait = breaker.refuses_for()
    assert wait is not None
    assert 0.1 < wait <= 0.2  # open: until it half-opens

    await _due(breaker)
    assert breaker.refuses_for() is None  # due: the next call would be the trial ...
    assert breaker.state is State.OPEN  # ... and asking did not take it
    call = Slow()
    trial = asyncio.create_task(_call(breaker, call))
    await wait_for(lambda: call.started, what="the trial admitted")
    assert breaker.state is State.HALF_OPEN
    assert breaker.refuses_for() == 0.2  # the trial is out: come back when it may be done
    with pytest.raises(BreakerOpen) as refused:
        await _call(breaker, _failing)
    assert refused.value.retry_after == 0.2
    call.gate.set()
    await trial
    assert breaker.refuses_for() is None  # closed again
