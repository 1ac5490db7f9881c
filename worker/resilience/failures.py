"""What the caller of a provider chain sees when every provider failed or refused: the one
error shared by the chain (``model.ProviderChain``) and the admission check (``admission``), so
a run refused before it starts and a run whose providers all failed read the same."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.errors import Unavailable


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """One provider's failure during one run of a chain."""

    provider: str
    error: BaseException
    retry_after: float | None
    """Seconds until the provider is worth trying again; None: not an availability problem."""


def exhausted(exc: Exception, failures: Sequence[ProviderFailure]) -> Exception:
    """What the caller sees when every provider failed: ``Unavailable`` when at least one of
    them is merely unavailable, else ``exc`` itself (every failure was permanent: a 4xx, a bug;
    trying later would not help)."""
    if all(f.retry_after is None for f in failures):
        return exc
    return unavailable([(f.provider, describe(f.error), f.retry_after) for f in failures])


def unavailable(failed: Sequence[tuple[str, str, float | None]]) -> Unavailable:
    """``Unavailable`` (503) for providers that each failed, given as (provider, description of
    its error, seconds until it is worth trying again or None), at least one with a wait:
    ``Retry-After`` is the soonest of them."""
    summary = "; ".join(f"{provider}: {error}" for provider, error, _ in failed)
    return Unavailable(
        f"every model provider of this agent is unavailable ({summary})",
        code="provider_unavailable",
        retry_after=min(wait for _, _, wait in failed if wait is not None),
        details=[
            {"provider": provider, "error": error, "retry_after": wait}
            for provider, error, wait in failed
        ],
    )


def describe(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters of it)."""
    text = str(exc)
    first = text.splitlines()[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
