"""The worker's breakers: one per name, settings from defaults or from the agents."""

from __future__ import annotations

from worker.resilience import Resilience, RetryPolicy


def test_one_breaker_per_name_with_explicit_settings_winning_over_defaults() -> None:
    resilience = Resilience(fail_max=5, reset_timeout=30, retry=RetryPolicy(max_attempts=3))
    first = resilience.guard("openai:a", fail_max=2, reset_timeout=10)
    default = resilience.guard("openai:a")  # an agent relying on the defaults
    assert default.breaker is first.breaker
    assert (first.breaker.fail_max, first.breaker.reset_timeout) == (2, 10)  # not undone
    resilience.guard("openai:a", reset_timeout=20)  # an explicit choice applies
    assert (first.breaker.fail_max, first.breaker.reset_timeout) == (2, 20)

    other = resilience.guard("openai:b", max_attempts=1, counted=["server_error"])
    assert other.breaker is not first.breaker
    assert (other.breaker.fail_max, other.breaker.reset_timeout) == (5, 30)
    assert other.retry.max_attempts == 1
    assert default.retry.max_attempts == 3
    assert other.counted == frozenset({"server_error"})
    assert resilience.snapshot()["openai:b"].state == "closed"
    assert resilience.unavailable() == set()
