"""The job messages on the wire and the job records the worker keeps.

``TaskMessage`` is the seed's Go struct as ``encoding/json`` writes it: ``timeout`` an integer of
nanoseconds (Go's duration strings are accepted too), keys matched case-insensitively.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.agents.accounting import RunUsage
from worker.durations import GoDuration, ReportedDuration
from worker.gojson import GoModel
from worker.jobs.history import CallbackDelivery, TaskEvent, appended
from worker.threads.keys import THREAD_ID

TASK_TYPE = "agent_execution"
TASK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


class TaskStatus(StrEnum):
    """Where a job is. All but the first two are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"
    INTERRUPTED = "interrupted"
    """The run stopped to ask a person (CONTRACT section 6): its thread waits for a resume."""

    @property
    def final(self) -> bool:
        """True once the job is over (nothing runs it now)."""
        return self in _FINAL

    @property
    def settled(self) -> bool:
        """True when the job has a result to deliver: it ran to an outcome. A dead job never
        did, so publishing (or replaying) it again runs it."""
        return self in _FINAL and self is not TaskStatus.DEAD


_FINAL = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.DEAD,
        TaskStatus.INTERRUPTED,
    }
)


class TaskMessage(GoModel):
    """The seed's ``TaskMessage``, published on ``agent.execute``."""

    id: str = Field(pattern=TASK_ID_PATTERN, description="Task id, also its idempotency key.")
    type: str = Field(description=f"Always {TASK_TYPE!r}.")
    payload: dict[str, Any] = Field(
        description='{"agent_id": "...", "input": ..., "thread_id"?: "...", "resume"?: ...}: '
        "with thread_id the run continues that conversation thread (waiting its turn while "
        "another run holds it); with resume (and thread_id) it answers the thread's question, "
        "and input may be left out."
    )
    callback: str | None = Field(
        None, max_length=2048, description="URL the result is POSTed to (optional)."
    )
    timeout: GoDuration | None = Field(
        None, description="Run time limit: integer nanoseconds or a Go duration; 0 = default."
    )
    stream_url: str | None = Field(
        None, max_length=2048, description="WebSocket URL the run's frames are pushed to."
    )

    @property
    def agent_id(self) -> str:
        """``payload.agent_id`` (checked by ``parse_task``)."""
        return str(self.payload["agent_id"])

    @property
    def input(self) -> Any:
        """``payload.input``."""
        return self.payload.get("input")

    @property
    def thread_id(self) -> str | None:
        """``payload.thread_id`` (checked by ``parse_task``)."""
        thread_id = self.payload.get("thread_id")
        return thread_id if isinstance(thread_id, str) else None

    @property
    def resuming(self) -> bool:
        """True when the job answers its thread's question (``payload.resume``)."""
        return "resume" in self.payload

    @property
    def resume(self) -> Any:
        """``payload.resume``: the answer handed to the graph's ``interrupt()``."""
        return self.payload.get("resume")


class MessageRejected(Exception):
    """A task message that can never run: it goes to the dead-letter stream with ``reason``."""

    def __init__(self, reason: str, detail: str, *, task_id: str = "", callback: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.task_id = task_id
        self.callback = callback


def parse_task(data: bytes) -> TaskMessage:
    """Decode and check a task message; raise ``MessageRejected`` with the dead-letter reason."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected("malformed_json", f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MessageRejected("invalid_message", "a task message is a JSON object")
    try:
        task = TaskMessage.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        # Best effort, so a bad message with a usable callback still gets a `failed` callback.
        folded = {str(k).lower(): v for k, v in raw.items()}
        task_id = folded.get("id") if isinstance(folded.get("id"), str) else ""
        callback = folded.get("callback") if isinstance(folded.get("callback"), str) else ""
        raise MessageRejected(
            "invalid_message", fields, task_id=str(task_id), callback=str(callback)
        ) from None
    if task.type != TASK_TYPE:
        raise MessageRejected(
            "unknown_type",
            f"unknown task type {task.type!r}; expected {TASK_TYPE!r}",
            task_id=task.id,
            callback=task.callback or "",
        )
    agent_id = task.payload.get("agent_id")
    if not isinstance(agent_id, str) or not agent_id:
        raise MessageRejected(
            "invalid_message",
            "payload.agent_id: a non-empty string is required",
            task_id=task.id,
            callback=task.callback or "",
        )
    _check_thread(task)
    if "input" not in task.payload and not task.resuming:
        raise MessageRejected(
            "invalid_message",
            "payload.input: field required",
            task_id=task.id,
            callback=task.callback or "",
        )
    return task


def _check_thread(task: TaskMessage) -> None:
    thread_id = task.payload.get("thread_id")
    problem = ""
    if thread_id is not None and not (
        isinstance(thread_id, str) and THREAD_ID.fullmatch(thread_id)
    ):
        problem = "payload.thread_id: 1 to 128 characters of A-Z a-z 0-9 _ . -"
    elif task.resuming and thread_id is None:
        problem = "payload.resume: a resume needs payload.thread_id, the thread it answers"
    if problem:
        raise MessageRejected(
            "invalid_message", problem, task_id=task.id, callback=task.callback or ""
        )


class TaskError(BaseModel):
    """Why a job did not complete."""

    code: str
    message: str


class TaskRecord(BaseModel):
    """A job's state, kept in the results bucket under its id (24 h)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: TaskStatus
    agent_id: str = ""
    callback: str | None = None
    stream_url: str | None = None
    stream_refused: str | None = None
    """Why the worker does not push this job's frames to ``stream_url`` (the outbound policy)."""
    attempts: int = 0
    worker_id: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    result: Any = None
    error: TaskError | None = None
    execution_time: float | None = None
    cancel_requested: bool = False
    traceparent: str | None = None
    thread_id: str | None = None
    interrupt: Any = None
    """What an ``interrupted`` job asks."""
    usage: RunUsage | None = None
    """What the job's run spent (CONTRACT section 7), whatever its outcome."""
    time_to_first_token: str | None = None
    """For a run that streamed tokens: from its start to its first token (a Go duration)."""
    history: list[TaskEvent] = Field(default_factory=list)
    history_dropped: int = 0
    callback_delivery: CallbackDelivery | None = None
    """How the callback to ``callback`` went."""

    def note(self, *events: TaskEvent) -> None:
        """Add ``events`` to the job's story (written with the record's next write)."""
        self.history, self.history_dropped = appended(self.history, self.history_dropped, *events)


_USAGE_DESCRIPTION = (
    "What the run spent on model calls, up to its end (a failed or cancelled run's too); "
    "absent when it did not run or the worker counts none (WORKER_ACCOUNTING=false)."
)
_TTFT_DESCRIPTION = (
    "For a run that streamed tokens: from its start to its first token, a Go duration."
)


class TaskView(BaseModel):
    """``GET /v1/tasks/{id}``: a job's state as callers see it."""

    id: str
    status: TaskStatus
    agent_id: str
    attempts: int
    worker_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: Any = None
    error: TaskError | None = None
    execution_time: ReportedDuration | None = None
    cancel_requested: bool = False
    thread_id: str | None = Field(None, description="The conversation thread the job runs on.")
    interrupt: Any = Field(
        None, description="What an `interrupted` job asks (resume its thread to answer)."
    )
    stream_refused: str | None = Field(
        None,
        description=(
            "Set when the job's stream_url is not an allowed target (WORKER_CALLBACK_ALLOW): "
            "why no frames are pushed there. The job runs all the same, and its frames are "
            "served from /v1/tasks/{task_id}/events."
        ),
    )
    usage: RunUsage | None = Field(None, description=_USAGE_DESCRIPTION)
    time_to_first_token: str | None = Field(
        None, description=_TTFT_DESCRIPTION, examples=["412.5ms"]
    )
    history: list[TaskEvent] = Field(
        default_factory=list,
        description="The job's state changes, oldest first: queued, each attempt running on its "
        "worker, hand-backs and redeliveries, its outcome (the last 50).",
    )
    history_dropped: int = Field(0, description="Older events no longer in history.")
    callback: CallbackDelivery | None = Field(
        None, description="How the job's callback went; null until it is first attempted."
    )

    @classmethod
    def of(cls, record: TaskRecord) -> TaskView:
        """The view of ``record``."""
        fields = record.model_dump(include=set(cls.model_fields) - {"callback"})
        return cls(**fields, callback=record.callback_delivery)


class CallbackMetadata(BaseModel):
    execution_time: ReportedDuration | None = None
    attempts: int
    worker_id: str | None
    usage: RunUsage | None = Field(None, description=_USAGE_DESCRIPTION)
    time_to_first_token: str | None = Field(
        None, description=_TTFT_DESCRIPTION, examples=["412.5ms"]
    )


CallbackStatus = Literal["completed", "failed", "cancelled", "interrupted"]
_CALLBACK_STATUS: dict[TaskStatus, CallbackStatus] = {
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
    TaskStatus.DEAD: "failed",
    TaskStatus.INTERRUPTED: "interrupted",
}


class CallbackBody(BaseModel):
    """What is POSTed to a task's callback URL (CONTRACT section 2)."""

    task_id: str
    status: CallbackStatus
    result: Any = None
    error: TaskError | None = None
    interrupt: Any = None
    """An ``interrupted`` job's question (CONTRACT section 6)."""
    thread_id: str | None = None
    metadata: CallbackMetadata

    @classmethod
    def of(cls, record: TaskRecord) -> CallbackBody:
        """The callback body for a finished ``record``. A dead job (it never ran: malformed,
        unknown agent, deliveries exhausted) is a ``failed`` callback whose ``error.code`` is
        the dead-letter reason, as CONTRACT section 2 says; ``GET /v1/tasks/{id}`` shows it as
        ``dead``."""
        # Built without validation: every value comes from a record the worker wrote (a record
        # that is not final has no callback: KeyError).
        return cls.model_construct(
            task_id=record.id,
            status=_CALLBACK_STATUS[record.status],
            result=record.result if record.status == TaskStatus.COMPLETED else None,
            error=record.error,
            interrupt=record.interrupt if record.status == TaskStatus.INTERRUPTED else None,
            thread_id=record.thread_id,
            metadata=CallbackMetadata.model_construct(
                execution_time=record.execution_time,
                attempts=record.attempts,
                worker_id=record.worker_id,
                usage=record.usage,
                time_to_first_token=record.time_to_first_token,
            ),
        )

    def to_json(self) -> bytes:
        """Serialised, without the ``null`` members a receiver does not need."""
        data = self.model_dump(mode="json", exclude_none=True)
        if self.metadata.usage is not None:  # whole: a null cost_usd says "no price"
            data["metadata"]["usage"] = self.metadata.usage.model_dump(mode="json")
        if self.status == "completed":
            data.setdefault("result", None)
        elif self.status == "interrupted":
            data.setdefault("interrupt", None)
        return orjson.dumps(data)


class TaskAccepted(BaseModel):
    """``POST /v1/tasks`` answer."""

    id: str
    status: TaskStatus
    location: str
