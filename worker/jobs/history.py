"""A job's story, kept in its task record: its state changes in order, and how its callback went.

Events are folded into the record writes a job makes anyway (its claim, a hand-back, its final
record), so telling the story costs no round trip of its own; only callback attempts made from
the outbox are writes of their own, one per attempt. Both lists are bounded: a job redelivered
or a callback retried for hours keeps its latest entries and counts the ones it dropped.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from worker.callbacks.attempts import Attempt

HISTORY_LIMIT = 50
"""Events a record keeps; older ones are dropped (and counted)."""
TRIES_LIMIT = 10
"""Callback attempts a record lists; older ones are dropped (and counted)."""

EventName = Literal[
    "queued",
    "redelivered",
    "running",
    "handed_back",
    "cancel_requested",
    "completed",
    "failed",
    "cancelled",
    "interrupted",
    "dead",
]


class TaskEvent(BaseModel):
    """One state change of a job."""

    event: EventName = Field(
        description="queued (published or submitted); redelivered (its message came back: "
        "reason worker_lost, handed_back or not_acked); running (an attempt began on "
        "worker_id); handed_back (given back to the pool: reason draining or the error code); "
        "cancel_requested; then its outcome: completed, failed, cancelled, interrupted or dead."
    )
    at: datetime
    attempt: int | None = Field(None, description="The run's attempt number (1 for the first).")
    worker_id: str | None = Field(None, description="The worker the event happened on.")
    delivery: int | None = Field(
        None, description="How many times JetStream has delivered the job's message."
    )
    reason: str | None = Field(None, description="A short code: why it happened.")
    detail: str | None = Field(None, description="The same, for people.")


class CallbackTry(BaseModel):
    """One attempt at delivering the job's callback."""

    attempt: int = Field(description="1 for the first attempt, made as the job ended.")
    at: datetime
    status_code: int | None = Field(None, description="The receiver's HTTP status.")
    error: str | None = Field(
        None,
        description="Why no answer came (connection error, open breaker), or why it was given up.",
    )


class CallbackDelivery(BaseModel):
    """How the job's callback went."""

    attempts: int = Field(0, description="Attempts so far.")
    last_status_code: int | None = Field(None, description="The last answer's HTTP status.")
    last_error: str | None = Field(
        None, description="Why the last attempt got no answer (e.g. a connection error)."
    )
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = Field(None, description="When it is tried again.")
    delivered_at: datetime | None = Field(None, description="When a receiver answered 2xx.")
    dead_lettered_at: datetime | None = Field(
        None, description="When it was given up (kept in the dead-letter stream)."
    )
    dead_letter_reason: str | None = Field(
        None, description="callback_rejected, callback_expired or callback_refused."
    )
    tries: list[CallbackTry] = Field(
        default_factory=list, description=f"The last {TRIES_LIMIT} attempts, oldest first."
    )
    tries_dropped: int = Field(0, description="Attempts no longer listed in tries.")


def event(
    name: EventName,
    *,
    attempt: int | None = None,
    worker_id: str | None = None,
    delivery: int | None = None,
    reason: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> TaskEvent:
    """A ``name`` event, at ``at`` (now by default)."""
    # Built without validation: the worker's own values, on the hot path of every job.
    return TaskEvent.model_construct(
        event=name,
        at=at or datetime.now(UTC),
        attempt=attempt,
        worker_id=worker_id,
        delivery=delivery,
        reason=reason,
        detail=detail,
    )


def appended(
    history: list[TaskEvent], dropped: int, *new: TaskEvent
) -> tuple[list[TaskEvent], int]:
    """``history`` with ``new`` at its end, cut to its last ``HISTORY_LIMIT`` events; and the
    count of events dropped so far."""
    events = [*history, *new]
    over = max(0, len(events) - HISTORY_LIMIT)
    return events[over:], dropped + over


def with_attempt(delivery: CallbackDelivery | None, attempt: Attempt) -> CallbackDelivery:
    """``delivery`` (None: nothing tried yet) with ``attempt`` added.

    Attempts may be recorded out of order (the inline attempt is written after the job's ack, by
    when the outbox may have made the next), so tries are kept in time order and the ``last_*``
    fields follow the latest attempt, whatever order the writes came in.
    """
    d = delivery.model_copy(deep=True) if delivery else CallbackDelivery()
    tried = CallbackTry.model_construct(
        attempt=attempt.number, at=attempt.at, status_code=attempt.status_code, error=attempt.error
    )
    bisect.insort(d.tries, tried, key=lambda t: t.at)
    if len(d.tries) > TRIES_LIMIT:
        del d.tries[0]
        d.tries_dropped += 1
    d.attempts += 1
    if d.last_attempt_at is None or attempt.at >= d.last_attempt_at:
        d.last_attempt_at = attempt.at
        d.last_status_code = attempt.status_code
        d.last_error = attempt.error
        d.next_attempt_at = (
            attempt.at + timedelta(seconds=attempt.delay)
            if attempt.outcome == "retry" and attempt.delay is not None
            else None
        )
    if attempt.outcome == "delivered" and d.delivered_at is None:
        d.delivered_at = attempt.at
    elif attempt.outcome == "dead_lettered" and d.dead_lettered_at is None:
        d.dead_lettered_at = attempt.at
        d.dead_letter_reason = attempt.reason
    if d.delivered_at is not None or d.dead_lettered_at is not None:
        d.next_attempt_at = None
    return d
