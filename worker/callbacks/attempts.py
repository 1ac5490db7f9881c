"""What one callback delivery attempt came to, for whoever keeps the job's story.

The outbox knows how each attempt went; the jobs door keeps the task records. The outbox hands
each attempt it makes from its stream to an ``AttemptLog`` (the jobs door supplies one that
writes it into the task record), and returns the inline first attempt to its caller, which
already holds the record and writes it there itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Outcome = Literal["delivered", "retry", "dead_lettered"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at delivering a task's callback."""

    task_id: str
    number: int
    """1 for the inline attempt, then one more for each delivery from the outbox."""
    at: datetime
    outcome: Outcome
    status_code: int | None = None
    """The receiver's HTTP status; None when no answer came (see ``error``)."""
    error: str | None = None
    """Why there was no answer (a connection error, an open breaker), or why the callback was
    given up."""
    delay: float | None = None
    """Seconds until the next attempt (``retry`` only)."""
    reason: str | None = None
    """The dead-letter reason (``dead_lettered`` only): callback_rejected, callback_expired..."""


class AttemptLog(Protocol):
    """Where the outbox reports the attempts it makes from its stream."""

    async def attempted(self, attempt: Attempt) -> None:
        """Keep ``attempt``. Best effort, and never raises: a delivery goes on whatever
        becomes of its story."""
