"""A circuit breaker for asyncio: pybreaker's state machine behind ``with breaker.calling():``.

pybreaker counts failures, trips at ``fail_max``, times the open state and closes again after a
successful trial, and this module leaves all of that to it. What pybreaker cannot do for asyncio
code is what this wrapper adds, once, for every caller:

- Admission happens here, before the ``await``: an open breaker raises ``BreakerOpen`` at once,
  with ``retry_after`` set to the seconds left until it half-opens. (Decorating an ``async def``
  with pybreaker "works" but only times the creation of the coroutine, so it never trips.)
- Half-open admits exactly one trial call; every other caller fails fast as if open, instead of
  the whole waiting crowd hitting a provider that is just recovering.
- Cancellation (and any other ``BaseException`` that is not an ``Exception``) is neither a
  failure nor a success: the call simply did not finish. It is re-raised untouched.
- An outcome is recorded only if the breaker is still in the state that admitted the call: a slow
  call admitted before the breaker opened cannot close it again when it finally succeeds (the
  "generation" idea of sony/gobreaker).

Outcomes are fed to pybreaker through its own ``calling()`` context manager, so its counters,
listeners and state changes stay the single source of truth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import IntEnum
from types import TracebackType
from typing import Any

import pybreaker

from worker.errors import Unavailable
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import BREAKER_STATE, BREAKER_TRANSITIONS

log = get_logger(__name__)


class State(IntEnum):
    """A breaker's state, with the values of the ``agentos_circuit_breaker_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        """``closed``, ``half-open`` or ``open`` (pybreaker's names)."""
        return _LABELS[self]


_LABELS = {State.CLOSED: "closed", State.HALF_OPEN: "half-open", State.OPEN: "open"}
_STATES = {
    pybreaker.STATE_CLOSED: State.CLOSED,
    pybreaker.STATE_HALF_OPEN: State.HALF_OPEN,
    pybreaker.STATE_OPEN: State.OPEN,
}


class BreakerOpen(Unavailable):
    """The breaker refused the call without trying it; ``retry_after`` says when to try again."""

    code = "breaker_open"

    def __init__(self, name: str, *, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name!r} is open", retry_after=retry_after)
        self.breaker = name


class _Counted(Exception):
    """Raised inside pybreaker's ``calling()`` to record one failure."""


def counts_every_exception(exc: BaseException) -> bool:
    """The default failure filter: every ``Exception`` counts."""
    return isinstance(exc, Exception)


class AsyncBreaker:
    """One circuit breaker, for coroutines (and threads: admission and settling take a lock).

    Use it as ``with breaker.calling(): await call()``. ``counts`` decides which exceptions are
    failures; one that is not counted means the other side answered, so it counts as a success
    (pybreaker's rule for excluded exceptions).
    """

    def __init__(
        self,
        *,
        name: str,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        counts: Callable[[BaseException], bool] = counts_every_exception,
    ) -> None:
        self.name = name
        self.counts = counts
        self._storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._cb = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            state_storage=self._storage,
            name=name,
            listeners=[_Listener(self)],
            throw_new_error_on_trip=False,
        )
        self._lock = threading.Lock()
        self._generation = 0
        self._trial_in_flight = False
        BREAKER_STATE.labels(name).set(State.CLOSED)
        # Every transition's series exists from the start, so increase() sees the first one.
        for state in State:
            BREAKER_TRANSITIONS.labels(name, state.label)

    # --- settings (shared breakers take the latest agent's settings) ---------------------------

    @property
    def fail_max(self) -> int:
        """Consecutive failures that open the breaker."""
        return self._cb.fail_max

    @fail_max.setter
    def fail_max(self, value: int) -> None:
        self._cb.fail_max = value

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before it admits a trial call."""
        return self._cb.reset_timeout

    @reset_timeout.setter
    def reset_timeout(self, value: float) -> None:
        self._cb.reset_timeout = value

    # --- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state (an open breaker whose timeout has passed is still ``OPEN`` until
        the next call turns it half-open)."""
        return _STATES[self._cb.current_state]

    @property
    def fail_counter(self) -> int:
        """Consecutive failures counted so far."""
        return self._cb.fail_counter

    def retry_after(self) -> float:
        """Seconds until an open breaker half-opens (0 when it is not open, or is due)."""
        if self.state is not State.OPEN:
            return 0.0
        opened_at = self._storage.opened_at
        if opened_at is None:
            return 0.0
        # pybreaker times the open state by the wall clock (an aware datetime); as plain
        # seconds, since this runs for every refused call during an outage.
        return max(0.0, opened_at.timestamp() + self._cb.reset_timeout - time.time())

    def refuses_for(self) -> float | None:
        """Seconds a call made now would be refused for, or None when it would be admitted.

        The same decision as admission (``calling``), without taking the call: open and not yet
        due, the time until it half-opens; half-open with its one trial call out, a short wait
        for the trial's outcome. An open breaker that is due counts as admitting (the next call
        is its trial). Read without the lock, so it is advice: the breaker stays the judge of
        every call actually made.
        """
        state = self.state
        if state is State.OPEN:
            wait = self.retry_after()
            return wait if wait > 0 else None
        if state is State.HALF_OPEN and self._trial_in_flight:
            # A trial is out; its outcome decides. Ask to come back very soon.
            return min(1.0, self._cb.reset_timeout)
        return None

    def calling(self, counts: Callable[[BaseException], bool] | None = None) -> Call:
        """A context manager guarding one call; ``counts`` overrides the breaker's filter."""
        return Call(self, counts or self.counts)

    # --- internals, used by Call -----------------------------------------------------------------

    def _admit(self) -> tuple[int, bool]:
        """Let a call through or raise ``BreakerOpen``; returns (generation, is_trial)."""
        with self._lock:
            wait = self.refuses_for()
            if wait is not None:
                raise BreakerOpen(self.name, retry_after=wait)
            state = self.state
            if state is State.OPEN:  # and due: this call is the trial
                self._cb.half_open()  # the listener bumps the generation
                state = State.HALF_OPEN
            if state is State.HALF_OPEN:
                self._trial_in_flight = True
                return self._generation, True
            return self._generation, False

    def _settle(
        self,
        generation: int,
        trial: bool,
        exc: BaseException | None,
        counts: Callable[[BaseException], bool],
    ) -> None:
        with self._lock:
            if trial:
                self._trial_in_flight = False
            if exc is not None and not isinstance(exc, Exception):
                return  # cancelled (or the process is exiting): no outcome to record
            if generation != self._generation:
                return  # admitted under another state; its result says nothing about this one
            _record(self._cb, failed=exc is not None and counts(exc))


def _record(cb: pybreaker.CircuitBreaker, *, failed: bool) -> None:
    """Feed one outcome to pybreaker through its own ``calling()``, so it counts and trips."""

    def outcome() -> None:
        if failed:
            raise _Counted

    try:
        with cb.calling():
            outcome()
    except _Counted:
        pass  # recorded: that was the point


class Call:
    """One admitted call (see ``AsyncBreaker.calling``)."""

    __slots__ = ("_breaker", "_counts", "_generation", "_trial")

    def __init__(self, breaker: AsyncBreaker, counts: Callable[[BaseException], bool]) -> None:
        self._breaker = breaker
        self._counts = counts
        self._generation = -1
        self._trial = False

    @property
    def trial(self) -> bool:
        """True for the one call a half-open breaker let through."""
        return self._trial

    def __enter__(self) -> Call:
        self._generation, self._trial = self._breaker._admit()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._breaker._settle(self._generation, self._trial, exc, self._counts)


class _Listener(pybreaker.CircuitBreakerListener):
    """Mirrors pybreaker's state changes into the generation counter, metrics and logs."""

    def __init__(self, breaker: AsyncBreaker) -> None:
        self._breaker = breaker

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        self._breaker._generation += 1
        state = _STATES[new_state.name]
        BREAKER_STATE.labels(self._breaker.name).set(state)
        BREAKER_TRANSITIONS.labels(self._breaker.name, state.label).inc()
        log.info(
            "circuit breaker state changed",
            breaker=self._breaker.name,
            old_state=getattr(old_state, "name", None),
            new_state=state.label,
        )
