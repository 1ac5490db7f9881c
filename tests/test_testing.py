"""worker.testing.wait_for: waits on a plain or an async probe, and says what never happened."""

from __future__ import annotations

import pytest

from worker.testing import wait_for


async def test_returns_the_first_truthy_value_of_a_plain_probe() -> None:
    seen = iter([None, [], {"status": "running"}])
    assert await wait_for(lambda: next(seen), what="a record", interval=0) == {"status": "running"}


async def test_awaits_an_async_probe() -> None:
    calls = 0

    async def probe() -> int:
        nonlocal calls
        calls += 1
        return calls if calls >= 3 else 0

    assert await wait_for(probe, what="the third call", interval=0) == 3


async def test_fails_saying_what_it_waited_for_and_what_it_saw() -> None:
    with pytest.raises(AssertionError, match=r"waited 0\.05s for the job running; last seen: 0"):
        await wait_for(lambda: 0, what="the job running", within=0.05, interval=0.01)


async def test_a_failing_probe_is_not_retried() -> None:
    def probe() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        await wait_for(probe, what="anything")
