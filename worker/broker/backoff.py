"""Tenacity's wait strategies for loops whose attempt count tenacity does not hold.

A callback's attempts are its outbox message's deliveries (JetStream counts them) and a fetch
loop's failures are counted by the loop itself: neither is a call that ``AsyncRetrying`` could
wrap. The delays still come from tenacity's strategies (``wait_random_exponential`` and so on),
asked here for attempt ``n`` with the ``RetryCallState`` they read it from.
"""

from __future__ import annotations

from tenacity import RetryCallState, Retrying
from tenacity.wait import wait_base

# A call state wants the retrying object it belongs to; no wait strategy reads it.
_NO_RETRYING = Retrying()


def delay_after(wait: wait_base, attempt: int) -> float:
    """The seconds ``wait`` gives after failed attempt ``attempt`` (1-based)."""
    state = RetryCallState(retry_object=_NO_RETRYING, fn=None, args=(), kwargs={})
    state.attempt_number = max(1, attempt)
    return float(wait(state))
