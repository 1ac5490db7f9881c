"""``ChainCheck``: whether one provider chain can answer now, from its breakers alone.

Asked by ``Admission`` before a run starts and by ``ProviderChain`` before LangChain runs the
chain's models; both refuse with the same error, the one the chain would raise if it ran.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.resilience.breaker import BreakerOpen
from worker.resilience.failures import describe, unavailable
from worker.resilience.guard import ProviderGuard
from worker.telemetry.metrics import PROVIDER_CALLS, labelled


class ChainCheck:
    """Whether one provider chain can answer now: the guards of its providers, in order."""

    __slots__ = ("_errors", "_guards")

    def __init__(self, guards: Sequence[ProviderGuard]) -> None:
        self._guards = tuple(guards)
        # What each refused provider's error reads: the same on every refusal, so made once, at
        # the first, rather than on each of the thousands of refusals an outage brings.
        self._errors: tuple[str, ...] | None = None

    @property
    def providers(self) -> list[str]:
        """The chain's providers, in order."""
        return [guard.provider for guard in self._guards]

    def refusal(self) -> Exception | None:
        """The error of this chain when every breaker would refuse a call now (what the chain
        raises when it runs then), or None when one of them would take it.

        A refusal is counted as a ``breaker_open`` outcome of each provider, the outcome of an
        attempt its breaker refused, so the numbers read the same whoever refused.
        """
        if not self._guards:
            return None
        waits: list[float] = []
        for guard in self._guards:
            wait = guard.breaker.refuses_for()
            if wait is None:
                return None
            waits.append(wait)
        if self._errors is None:
            self._errors = tuple(
                describe(BreakerOpen(guard.breaker.name, retry_after=0)) for guard in self._guards
            )
        for guard in self._guards:
            labelled(PROVIDER_CALLS, guard.provider, "breaker_open").inc()
        return unavailable(
            [
                (guard.provider, error, wait)
                for guard, error, wait in zip(self._guards, self._errors, waits, strict=True)
            ]
        )
