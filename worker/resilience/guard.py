"""One provider's protection: retry -> breaker -> the call, observed (metrics and a span per
attempt), for plain calls and for streams."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from tenacity import RetryCallState

from worker.resilience.breaker import AsyncBreaker, BreakerOpen, Call, State
from worker.resilience.classify import TRANSIENT, ErrorKind, classify, retry_after_hint
from worker.resilience.retry import RetryPolicy, retrying
from worker.telemetry.metrics import (
    PROVIDER_CALL_DURATION,
    PROVIDER_CALLS,
    PROVIDER_RETRIES,
    labelled,
)
from worker.telemetry.tracing import TRACER_NAME

T = TypeVar("T")
SOON = 1.0
"""``retry_after`` for a provider that failed transiently but whose breaker is still closed."""


@dataclass(frozen=True, kw_only=True)
class ProviderGuard:
    """Retries and a (shared) breaker around one provider of one agent.

    ``counted`` are the error kinds that count as breaker failures for this agent's calls; other
    errors mean the provider answered, so they count as successes.
    """

    provider: str
    breaker: AsyncBreaker
    retry: RetryPolicy
    counted: frozenset[ErrorKind] = TRANSIENT
    tracer: trace.Tracer = field(default_factory=lambda: trace.get_tracer(TRACER_NAME))

    def counts(self, exc: BaseException) -> bool:
        """True when ``exc`` is a breaker failure for this guard."""
        return isinstance(exc, Exception) and classify(exc) in self.counted

    def unavailable_for(self, exc: BaseException) -> float | None:
        """Seconds until this provider is worth trying again after ``exc``, or None when ``exc``
        is not an availability problem (a 4xx, a bug): trying again would fail again."""
        if isinstance(exc, BreakerOpen):
            return exc.retry_after
        if not isinstance(exc, Exception) or classify(exc) not in TRANSIENT:
            return None
        if self.breaker.state is State.OPEN:
            return self.breaker.retry_after()
        hint = retry_after_hint(exc)
        return SOON if hint is None else hint

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()`` through retries and the breaker."""
        async for attempt in retrying(self.retry, before_sleep=self._count_retry):
            with attempt, _Attempt(self, attempt.retry_state.attempt_number):
                return await fn()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def call_sync(self, fn: Callable[[], T]) -> T:
        """``fn()`` through the breaker, once: the worker runs models asynchronously, so the
        synchronous path (kept for completeness) does not block a thread in retry sleeps."""
        with _Attempt(self, 1):
            return fn()

    async def stream(self, open_stream: Callable[[], AsyncIterator[T]]) -> AsyncIterator[T]:
        """Items of ``open_stream()`` through the breaker, retrying until the first item arrives.

        Once an item is out it cannot be taken back, so a failure after it ends the stream (and
        counts against the breaker) instead of starting again. The breaker call, and the span,
        last until the stream ends.
        """
        async for attempt in retrying(self.retry, before_sleep=self._count_retry):
            with attempt:
                guard = _Attempt(self, attempt.retry_state.attempt_number)
                guard.__enter__()
                items = open_stream()
                try:
                    first = await anext(items)
                except StopAsyncIteration:
                    guard.__exit__(None, None, None)
                    return
                except BaseException as exc:
                    guard.__exit__(type(exc), exc, exc.__traceback__)
                    raise
                break
        else:  # pragma: no cover - tenacity re-raises the last error instead
            raise AssertionError("unreachable")
        try:
            yield first
            async for item in items:
                yield item
        except BaseException as exc:
            guard.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            guard.__exit__(None, None, None)
        finally:
            # A consumer that stops early must not leave the provider's response open.
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    def _count_retry(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        reason = classify(exc) if exc is not None else "other"
        labelled(PROVIDER_RETRIES, self.provider, reason).inc()


class _Attempt:
    """One attempt: the breaker call, a span, the latency and outcome metrics."""

    __slots__ = ("_call", "_guard", "_number", "_span", "_start")

    def __init__(self, guard: ProviderGuard, number: int) -> None:
        self._guard = guard
        self._number = number
        self._call: Call | None = None
        self._start = 0.0
        # Started, not made current: a stream's attempt outlives the context it began in.
        self._span = guard.tracer.start_span(
            "model.provider_attempt",
            kind=SpanKind.CLIENT,
            attributes={"agentos.provider": guard.provider, "agentos.attempt": number},
        )

    def __enter__(self) -> _Attempt:
        call = self._guard.breaker.calling(self._guard.counts)
        try:
            call.__enter__()
        except BreakerOpen as exc:
            self._finish("breaker_open", exc)
            raise
        self._call = call
        self._span.set_attribute("agentos.breaker_trial", call.trial)
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._call is None:
            return
        call, self._call = self._call, None
        call.__exit__(exc_type, exc, tb)
        labelled(PROVIDER_CALL_DURATION, self._guard.provider).observe(
            time.perf_counter() - self._start
        )
        if exc is None:
            self._finish("ok", None)
        elif isinstance(exc, Exception):
            self._finish(classify(exc), exc)
        else:
            self._finish("cancelled", None)

    def _finish(self, outcome: str, exc: BaseException | None) -> None:
        labelled(PROVIDER_CALLS, self._guard.provider, outcome).inc()
        span = self._span
        span.set_attribute("agentos.outcome", outcome)
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()
