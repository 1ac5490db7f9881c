"""The asyncio breaker wrapper: trips on failing coroutines, one trial when half-open, and
cancellation is never an outcome."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import pytest

from worker.resilience.breaker import AsyncBreaker, BreakerOpen, State


class Boom(Exception):
    """A provider failure."""


async def _failing() -> None:
    await asyncio.sleep(0)
    raise Boom


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

    start = time.perf_counter()
    with pytest.raises(BreakerOpen) as info:
        await _call(breaker, never)
    assert time.perf_counter() - start < 0.01  # refused before the await, not after
    assert not called
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
    await asyncio.sleep(0.06)

    gate = asyncio.Event()
    entered = 0

    async def trial() -> None:
        nonlocal entered
        entered += 1
        await gate.wait()

    tasks = [asyncio.create_task(_call(breaker, trial)) for _ in range(20)]
    await asyncio.sleep(0.01)
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
    await asyncio.sleep(0.06)
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    assert breaker.state is State.OPEN
    assert breaker.retry_after() > 0.03


async def test_a_cancelled_call_does_not_count_and_stays_a_cancellation() -> None:
    breaker = AsyncBreaker(name="t-cancel", fail_max=1, reset_timeout=30)
    task = asyncio.create_task(_call(breaker, lambda: asyncio.sleep(10)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert breaker.state is State.CLOSED
    assert breaker.fail_counter == 0

    # A deadline (asyncio.timeout cancels inside) is not a failure either, and stays a timeout.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await _call(breaker, lambda: asyncio.sleep(10))
    assert breaker.fail_counter == 0
    assert breaker.state is State.CLOSED


async def test_a_cancelled_trial_frees_the_half_open_slot() -> None:
    breaker = AsyncBreaker(name="t-cancel-trial", fail_max=1, reset_timeout=0.05)
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    await asyncio.sleep(0.06)
    trial = asyncio.create_task(_call(breaker, lambda: asyncio.sleep(10)))
    await asyncio.sleep(0.01)
    assert breaker.state is State.HALF_OPEN
    trial.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await trial
    assert breaker.state is State.HALF_OPEN  # no outcome recorded
    await _call(breaker, lambda: asyncio.sleep(0))  # the next caller is the trial
    assert breaker.state is State.CLOSED


async def test_a_slow_success_from_before_the_trip_does_not_close_it() -> None:
    breaker = AsyncBreaker(name="t-generation", fail_max=1, reset_timeout=30)
    gate = asyncio.Event()
    slow = asyncio.create_task(_call(breaker, gate.wait))
    await asyncio.sleep(0.01)
    with pytest.raises(Boom):
        await _call(breaker, _failing)
    assert breaker.state is State.OPEN
    gate.set()
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

    await asyncio.sleep(0.21)
    assert breaker.refuses_for() is None  # due: the next call would be the trial ...
    assert breaker.state is State.OPEN  # ... and asking did not take it
    gate = asyncio.Event()
    trial = asyncio.create_task(_call(breaker, gate.wait))
    await asyncio.sleep(0.01)
    assert breaker.state is State.HALF_OPEN
    assert breaker.refuses_for() == 0.2  # the trial is out: come back when it may be done
    with pytest.raises(BreakerOpen) as refused:
        await _call(breaker, _failing)
    assert refused.value.retry_after == 0.2
    gate.set()
    await trial
    assert breaker.refuses_for() is None  # closed again
