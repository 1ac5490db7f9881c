"""What a run's caller and its model calls share: the deadline, which provider answered,
whether the run was stopped, and where its model calls report their usage.

The caller (the HTTP invoke handler, the job runner, the streaming door) opens a ``run_scope``
around the run. Model calls deep inside the LangChain Runnable read the deadline from it, so a
retry never sleeps past it, and note in it which provider produced the answer. A run stopped
from inside (its budget spent: ``stop_run``) makes every later model call of the run refuse at
once, so that no fallback provider, nor the agent's next step, calls a model again. Model
calls report what they spend to the scope's ``meter`` (``worker.resilience.metering``).

Why a context variable holding a mutable object: LangChain runs every child Runnable in a *copy*
of the caller's context, so a value *set* inside the run never reaches the caller; an object put
there by the caller and *changed* inside does. The alternatives were worse: ``response_metadata``
on the ``AIMessage`` is dropped by the ``StrOutputParser`` (and by any agent that post-processes
the model's answer), and a callback handler would have to be threaded through every caller's
``RunnableConfig`` and understand every model's run tree.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.resilience.metering import Meter


@dataclass(slots=True)
class RunReport:
    """Filled in while the run goes: the provider of the last answer and whether any answer was
    degraded (served by a fallback or by the ``basic`` provider)."""

    deadline: float | None = None
    """``time.monotonic()`` value past which the caller stops waiting (None: no deadline)."""
    provider: str | None = None
    degraded: bool = False
    providers: list[str] = field(default_factory=list)
    """Every provider that answered during the run, in order (an agent may call models often)."""
    stopped: Exception | None = None
    """Why the run was stopped (``stop_run``): what its later model calls raise."""
    meter: Meter | None = None
    """Where the run's model calls report their usage (None: nowhere)."""

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None without one)."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()


_CURRENT: ContextVar[RunReport | None] = ContextVar("agentos_run_report", default=None)


class run_scope:  # named as the function it replaces: ``with run_scope(...) as report``
    """Open a scope for one run with ``time_limit`` seconds from now, its model calls
    reporting to ``meter``; yields its report.

    A class rather than a ``contextlib.contextmanager`` generator: it is entered on every
    invocation, and the generator version costs several times as much.
    """

    __slots__ = ("_report", "_token")

    def __init__(self, *, time_limit: float | None = None, meter: Meter | None = None) -> None:
        self._report = RunReport(
            deadline=None if time_limit is None else time.monotonic() + time_limit, meter=meter
        )
        self._token: Token[RunReport | None] | None = None

    def __enter__(self) -> RunReport:
        self._token = _CURRENT.set(self._report)
        return self._report

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)


def current_report() -> RunReport | None:
    """The report of the run in progress, if its caller opened a scope."""
    return _CURRENT.get()


def current_meter() -> Meter | None:
    """Where the model calls of the run in progress report their usage, if anywhere."""
    report = _CURRENT.get()
    return None if report is None else report.meter


def current_deadline() -> float | None:
    """The run's deadline (``time.monotonic()`` seconds), if there is one."""
    report = _CURRENT.get()
    return None if report is None else report.deadline


def record_answer(provider: str, *, degraded: bool) -> None:
    """Note that ``provider`` produced an answer (a no-op outside a scope)."""
    report = _CURRENT.get()
    if report is None:
        return
    report.provider = provider
    report.degraded = report.degraded or degraded
    report.providers.append(provider)


def stop_run(reason: Exception) -> None:
    """Stop the run in progress: its later model calls raise ``reason`` instead of calling a
    provider (a no-op outside a scope)."""
    report = _CURRENT.get()
    if report is not None and report.stopped is None:
        report.stopped = reason


def check_stopped() -> None:
    """Raise why the run in progress was stopped, if it was."""
    report = _CURRENT.get()
    if report is not None and report.stopped is not None:
        raise report.stopped
