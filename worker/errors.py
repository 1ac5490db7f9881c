"""One small error hierarchy, each kind mapped to one HTTP status and one job outcome.

``WorkerError`` subclasses say what kind of failure happened; the HTTP door renders every one as
``{"error": {"code", "message", "request_id"}}`` and the job runner decides from ``retryable``
whether a job is handed back or finished.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

HANDBACK = "agentos:handback"
"""The cancel message of a run whose job will run again elsewhere (a draining worker hands it
back): ``task.cancel(HANDBACK)``. Its frames then end with a ``processing`` frame, not a final
``cancelled`` one."""


class WorkerError(Exception):
    """Base: a failure with a stable ``code``, an HTTP ``status`` and a job disposition."""

    status = 500
    code = "internal"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.retry_after = retry_after


class BadRequest(WorkerError):
    """The caller sent something invalid; sending it again fails again."""

    status = 400
    code = "validation_error"


class Unauthorized(WorkerError):
    status = 401
    code = "unauthorized"


class Forbidden(WorkerError):
    status = 403
    code = "forbidden"


class NotFound(WorkerError):
    status = 404
    code = "not_found"


class Conflict(WorkerError):
    status = 409
    code = "conflict"


class ThreadBusy(Conflict):
    """Another run holds the thread; a job waits its turn, an HTTP caller may try again later."""

    code = "thread_busy"
    retryable = True


class PayloadTooLarge(WorkerError):
    status = 413
    code = "payload_too_large"


class ThreadTooLarge(PayloadTooLarge):
    """A thread's state outgrew what one NATS message may carry."""

    code = "thread_too_large"


class Overloaded(WorkerError):
    """This worker is at capacity; another worker, or this one a moment later, can serve it."""

    status = 503
    code = "overloaded"
    retryable = True


class Unavailable(WorkerError):
    """Something the call needs (NATS, a model provider) is down; retrying later helps."""

    status = 503
    code = "unavailable"
    retryable = True


class DeadlineExceeded(WorkerError):
    status = 504
    code = "deadline_exceeded"
    retryable = True


class AgentFailed(WorkerError):
    """The agent's Runnable raised: the request was fine, the run was not."""

    status = 502
    code = "agent_error"


class AgentIterationLimit(AgentFailed):
    """A tool-calling agent wanted more model calls than its ``max_iterations``: the run
    failed like any other agent failure (502), and sending it again would likely fail again."""

    code = "agent_iteration_limit"


class BudgetExceeded(WorkerError):
    """The run would pass its agent's ``limits`` (tokens or cost per run) and was stopped.

    422, not 400 (the request itself is well-formed), not 429 (waiting does not help: the same
    run would pass the same limit again) and not 5xx (nothing failed: the agent's own limit
    refused it); the Go client retries 429 and 5xx, and must not retry this. As a job it
    fails for good."""

    status = 422
    code = "budget_exceeded"


def validation_details(exc: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    """The ``details`` of a 400 for ``exc``: each failing field (a dotted path, under ``prefix``
    when given) with pydantic's message."""
    return [
        {
            "field": ".".join([*([prefix] if prefix else []), *(str(p) for p in err["loc"])]),
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
