"""The worker's breakers, one per provider endpoint, and the defaults of its guards.

Created once in the worker's lifecycle and handed to agent builders (``BuildContext``), so every
agent naming the same endpoint shares its breaker: when it opens for one agent it is open for
all, which is the point. A breaker's ``fail_max`` and ``reset_timeout`` come from the
``WORKER_PROVIDER_BREAKER_*`` settings unless an agent's provider config sets them; when agents
set different values, the agent built last wins (and a log line says so).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from opentelemetry import trace

from worker.resilience.breaker import AsyncBreaker, State
from worker.resilience.classify import TRANSIENT, ErrorKind
from worker.resilience.guard import ProviderGuard
from worker.resilience.retry import RetryPolicy
from worker.telemetry.logs import get_logger
from worker.telemetry.tracing import TRACER_NAME

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """A breaker as ``/readyz`` shows it."""

    state: str
    retry_after: float
    fail_counter: int


class Resilience:
    """Breakers by name, plus the default breaker and retry settings of provider guards."""

    def __init__(
        self,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self.retry = retry or RetryPolicy()
        # The process's tracer (OpenTelemetry's global) unless one is given, as tests do.
        self.tracer = tracer or trace.get_tracer(TRACER_NAME)
        self._breakers: dict[str, AsyncBreaker] = {}

    def breaker(
        self, name: str, *, fail_max: int | None = None, reset_timeout: float | None = None
    ) -> AsyncBreaker:
        """The breaker called ``name``, created on first use with the given settings (unset:
        the defaults). An existing breaker takes settings that are given explicitly; unset ones
        leave it as it is, so an agent relying on the defaults does not undo another's choice.
        """
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = AsyncBreaker(
                name=name,
                fail_max=self.fail_max if fail_max is None else fail_max,
                reset_timeout=self.reset_timeout if reset_timeout is None else reset_timeout,
            )
            self._breakers[name] = breaker
            return breaker
        wanted = (
            breaker.fail_max if fail_max is None else fail_max,
            breaker.reset_timeout if reset_timeout is None else reset_timeout,
        )
        if wanted != (breaker.fail_max, breaker.reset_timeout):
            log.warning(
                "agents disagree on a shared breaker's settings; the latest applies",
                breaker=name,
                fail_max=wanted[0],
                reset_timeout=wanted[1],
            )
            breaker.fail_max, breaker.reset_timeout = wanted
        return breaker

    def guard(
        self,
        provider: str,
        *,
        fail_max: int | None = None,
        reset_timeout: float | None = None,
        counted: Iterable[ErrorKind] | None = None,
        max_attempts: int | None = None,
        initial_backoff: float | None = None,
        max_wait: float | None = None,
    ) -> ProviderGuard:
        """A guard for ``provider`` (also its breaker's name); unset values take the defaults."""
        retry = replace(
            self.retry,
            max_attempts=self.retry.max_attempts if max_attempts is None else max_attempts,
            initial_backoff=(
                self.retry.initial_backoff if initial_backoff is None else initial_backoff
            ),
            max_wait=self.retry.max_wait if max_wait is None else max_wait,
        )
        return ProviderGuard(
            provider=provider,
            breaker=self.breaker(provider, fail_max=fail_max, reset_timeout=reset_timeout),
            retry=retry,
            counted=TRANSIENT if counted is None else frozenset(counted),
            tracer=self.tracer,
        )

    def get(self, name: str) -> AsyncBreaker | None:
        """The breaker called ``name``, if one was created."""
        return self._breakers.get(name)

    def snapshot(self) -> dict[str, BreakerStatus]:
        """Every breaker's state, by name."""
        return {
            name: BreakerStatus(
                state=b.state.label,
                retry_after=round(b.retry_after(), 3),
                fail_counter=b.fail_counter,
            )
            for name, b in sorted(self._breakers.items())
        }

    def unavailable(self) -> set[str]:
        """Names of the breakers that refuse calls now (open, or half-open)."""
        return {name for name, b in self._breakers.items() if b.state is not State.CLOSED}
