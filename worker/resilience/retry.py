"""Retries of a model provider call: exponential backoff with jitter, transient errors only.

Built on tenacity (already a dependency of langchain-core). LangChain's own ``with_retry`` was
the other candidate; it was not chosen because it is tenacity with a fixed exponential wait: it
cannot wait what a 429's ``Retry-After`` asks, cannot stop before the caller's deadline, and
retries only ``invoke`` (not the start of a stream). Here:

- only transient errors are retried (``classify.is_transient``): connection errors, timeouts,
  429 and 5xx; a 4xx that will fail again is not, and neither is an open breaker;
- the wait is what ``Retry-After`` says when the provider sent it, otherwise
  ``initial_backoff * 2**n`` plus jitter, capped at ``max_wait``;
- a retry whose wait would end past the run's deadline (``scope.current_deadline``), or that
  would wait longer than ``max_wait``, is not made: the error goes to the fallback instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from worker.resilience.classify import is_transient, retry_after_hint
from worker.resilience.scope import current_deadline


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How hard to try one provider before its fallback takes over."""

    max_attempts: int = 3
    """Attempts in all, the first included (1 disables retries)."""
    initial_backoff: float = 0.5
    """Wait before the first retry, doubled for each next one, plus up to as much jitter."""
    max_wait: float = 10.0
    """Longest single wait; a ``Retry-After`` longer than this is not waited for."""


class _BackoffOrRetryAfter(wait_base):
    """``Retry-After`` when the provider sent one, else exponential backoff with jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._max = policy.max_wait
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial_backoff,
            max=policy.max_wait,
            jitter=policy.initial_backoff,
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        hint = retry_after_hint(exc) if exc is not None else None
        if hint is not None:
            # Honour the provider's ask exactly; _StopPastBudget refuses waits past max_wait.
            return hint
        return float(self._backoff(retry_state))


class _StopPastBudget(stop_base):
    """Stop when the coming wait would outlast ``max_wait`` or end past the run's deadline."""

    def __init__(self, max_wait: float) -> None:
        self._max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        sleep = retry_state.upcoming_sleep
        if sleep > self._max_wait:
            return True
        deadline = current_deadline()
        return deadline is not None and time.monotonic() + sleep >= deadline


def retrying(
    policy: RetryPolicy, *, before_sleep: Callable[[RetryCallState], None] | None = None
) -> AsyncRetrying:
    """A tenacity ``AsyncRetrying`` for ``policy`` (one per call: it holds the call's state)."""
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=_BackoffOrRetryAfter(policy),
        stop=stop_after_attempt(policy.max_attempts) | _StopPastBudget(policy.max_wait),
        before_sleep=before_sleep,
        sleep=asyncio.sleep,
        reraise=True,
    )
