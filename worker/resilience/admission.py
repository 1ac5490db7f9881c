"""Admission: refuse a run before it starts when a provider chain it needs cannot answer.

During a provider outage every run of a ``chat`` agent ends the same way: each provider's
breaker refuses and the caller gets 503 with ``Retry-After``. Finding that out by running the
agent costs about a millisecond of CPU (prompt formatting, LangChain's callback managers and run
tree, the fallbacks machinery) for an answer known in advance, and a burst of callers queues
behind it. ``Admission.check`` gives the same answer in microseconds, before anything runs.

What an agent needs is recorded while its Runnable is built: the store hands the builder a
``BuildContext`` with an ``AdmissionRecorder``, and the builder declares each ``ProviderChain``
that every run calls (``BuildContext.requires``). A chain with a provider that cannot be
unavailable (``basic``, ``fake``: no breaker) needs no check, and an agent without such a chain
(``echo``, ``steps``) gets no ``Admission`` at all, so it pays nothing.

The check never decides more than the breakers would: it refuses only when *every* provider of
a required chain would be refused at this moment (open and not yet due to half-open, or
half-open with its one trial call out), with the error the chain itself raises then. When a
breaker is due, the run goes ahead and the breaker picks the one trial call, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.resilience.chain_check import ChainCheck
from worker.resilience.guard import ProviderGuard
from worker.resilience.model import ProviderChain


class Admission:
    """The provider chains every run of one agent calls; ``check`` runs before each run.

    Built by ``AdmissionRecorder`` once per build of the agent.
    """

    __slots__ = ("_chains",)

    def __init__(self, chains: Sequence[Sequence[ProviderGuard]]) -> None:
        self._chains = tuple(ChainCheck(chain) for chain in chains)

    @property
    def providers(self) -> list[str]:
        """The providers checked, chain by chain, in order."""
        return [provider for chain in self._chains for provider in chain.providers]

    def check(self) -> None:
        """Raise ``Unavailable`` (503, ``Retry-After`` until the first breaker half-opens) when a
        chain this agent needs cannot answer now; return when the run may go ahead.

        Why: fail fast without paying for a run that cannot succeed. It never refuses while any
        provider of each chain would take a call, so it changes no outcome, only its cost.
        """
        for chain in self._chains:
            refused = chain.refusal()
            if refused is not None:
                raise refused


class AdmissionRecorder:
    """Collects, while one agent's Runnable is built, the provider chains each run calls."""

    __slots__ = ("_chains",)

    def __init__(self) -> None:
        self._chains: list[tuple[ProviderGuard, ...]] = []

    def require(self, chain: ProviderChain) -> None:
        """Every run calls ``chain``: admit runs only while it can answer. A chain with a
        provider that has no guard (``basic``, ``fake``) can always answer: nothing to check."""
        guards = chain.guards
        if guards and all(guard is not None for guard in guards):
            self._chains.append(tuple(guard for guard in guards if guard is not None))

    def admission(self) -> Admission | None:
        """What to check before each run, or None when there is nothing to check."""
        return Admission(self._chains) if self._chains else None
