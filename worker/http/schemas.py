"""The HTTP API's models. Handlers validate with them and ``/openapi.json`` is generated from
them, so the document and the behaviour cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.agents.accounting import RunUsage
from worker.durations import GoDuration, ReportedDuration
from worker.gojson import GoModel
from worker.threads.keys import THREAD_ID_PATTERN

ThreadId = Annotated[
    str,
    Field(
        description="A conversation thread: 1 to 128 characters of A-Z a-z 0-9 _ . - "
        "(another string is refused with 400 invalid_thread_id).",
        json_schema_extra={"pattern": THREAD_ID_PATTERN},
    ),
]
"""A thread id as the API documents it. Its rule is checked by ``worker.threads.keys`` (400
``invalid_thread_id``), not by pydantic, whose error would be a plain ``validation_error``."""


class AgentConfig(GoModel):
    """The seed's ``AgentConfig``: what ``POST /create-agent`` and ``POST /v1/agents`` take.

    Keys match case-insensitively, so an untagged Go struct (``{"Type": "chat"}``) works, and
    Go's zero values (``"Name": ""``, ``"Config": null``) mean "not given".
    """

    type: str = Field(min_length=1, max_length=128, description="A type from /v1/agent-types.")
    name: str = Field("", max_length=256)
    config: dict[str, Any] | None = Field(None, description="Validated by the type's schema.")


class AgentPatch(GoModel):
    """``PATCH /v1/agents/{id}``: a new name and/or a JSON merge patch (RFC 7386) of config."""

    name: str | None = Field(None, max_length=256)
    config: dict[str, Any] | None = None


class Agent(BaseModel):
    """An agent as the API returns it (the seed's ``Agent``)."""

    id: str
    type: str
    name: str
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class AgentList(BaseModel):
    agents: list[Agent]


class InvokeRequest(GoModel):
    """``POST /v1/agents/{id}/invoke`` and ``/stream``."""

    input: Any = Field(description="The agent's input; its type's input schema applies.")
    timeout: GoDuration | None = Field(
        None, description="Deadline: integer nanoseconds or a Go duration string; default 30s."
    )
    thread_id: ThreadId | None = Field(
        None,
        description="Continue this conversation thread (created when new; CONTRACT section 6). "
        "409 thread_busy while another run holds it; 400 threads_unsupported for an agent "
        "that keeps no thread.",
    )


class InvokeMetadata(BaseModel):
    run_id: str
    execution_time: ReportedDuration = Field(description="Go duration string, e.g. '12.5ms'.")
    agent_id: str
    agent_type: str
    worker_id: str
    provider: str | None = Field(
        None, description="The model provider that produced the answer (agents with models)."
    )
    degraded: bool = Field(
        False, description="True when a fallback or the basic provider answered."
    )
    thread_id: str | None = Field(None, description="The thread the run continued, if any.")
    usage: RunUsage | None = Field(
        None,
        description="What the run spent on model calls (absent when the worker counts none: "
        "WORKER_ACCOUNTING=false).",
    )
    time_to_first_token: str | None = Field(
        None,
        description="For a run that streamed tokens: from its start to its first token, a Go "
        "duration.",
        examples=["412.5ms"],
    )


class InvokeResponse(BaseModel):
    output: Any = Field(description="The agent's output (null when the run was interrupted).")
    status: Literal["completed", "interrupted"] = Field(
        "completed",
        description="interrupted: the run stopped to ask a person (LangGraph's interrupt()); "
        "answer with POST /v1/threads/{thread_id}/resume.",
    )
    interrupt: Any = Field(
        None,
        description="What an interrupted run asks: the value given to interrupt() (a list when "
        "several are pending).",
    )
    metadata: InvokeMetadata


class AgentTypeInfo(BaseModel):
    name: str
    description: str
    config_schema: dict[str, Any]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class AgentTypeList(BaseModel):
    agent_types: list[AgentTypeInfo]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.")
    message: str
    request_id: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "request_id"}}``."""

    error: ErrorDetail


class Health(BaseModel):
    status: str
    worker_id: str


class Readiness(BaseModel):
    status: str = Field(description="'ready' or 'not_ready'.")
    checks: dict[str, bool]
    worker_id: str
    degraded: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Agents with a model provider whose breaker is open or half-open, with "
        "those providers. They still answer through fallbacks, or 503 with Retry-After.",
    )
    breakers: dict[str, str] = Field(
        default_factory=dict, description="Every provider breaker's state: closed, half-open, open."
    )


class CreateThread(GoModel):
    """``POST /v1/threads`` (the body is optional)."""

    thread_id: ThreadId | None = Field(None, description="Default: a new UUID.")
    metadata: dict[str, Any] | None = Field(None, description="The caller's, kept as given.")


class Thread(BaseModel):
    """A thread as created."""

    thread_id: str
    created_at: datetime
    metadata: dict[str, Any]


class Interrupt(BaseModel):
    """A question a run stopped on (LangGraph's ``interrupt(value)``)."""

    id: str | None = None
    value: Any = None


class ThreadValues(BaseModel):
    """A thread's state: ``messages`` (LangChain messages in their JSON form,
    ``{"type": "human"|"ai"|"tool"|"system", "content", ...}``) and any other channel of the
    agent's graph."""

    model_config = ConfigDict(extra="allow")
    messages: list[dict[str, Any]] | None = None


class ThreadState(BaseModel):
    """``GET /v1/threads/{thread_id}``: the thread now."""

    thread_id: str
    status: Literal["idle", "busy", "interrupted"] = Field(
        description="busy: a run holds it; interrupted: it waits for POST .../resume."
    )
    values: ThreadValues
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    checkpoint_id: str | None = Field(None, description="The newest checkpoint (none: no run).")
    interrupts: list[Interrupt] = Field(description="What an interrupted thread asks.")


class ThreadCheckpoint(BaseModel):
    """One checkpoint of a thread's history."""

    checkpoint_id: str
    parent_checkpoint_id: str | None
    created_at: datetime
    metadata: dict[str, Any] = Field(
        description="LangGraph's (source, step, ...), the agent and the run that wrote it "
        "(agent_id, agent_type, run_id); the last checkpoint of a turn also holds what the "
        "turn spent: usage and, when it streamed tokens, time_to_first_token."
    )
    values: ThreadValues
    interrupts: list[Interrupt]


class ThreadHistory(BaseModel):
    """``GET /v1/threads/{thread_id}/history``: checkpoints, newest first."""

    thread_id: str
    checkpoints: list[ThreadCheckpoint]


class ResumeRequest(GoModel):
    """``POST /v1/threads/{thread_id}/resume``: the answer to the thread's question."""

    resume: Any = Field(description="Handed to the graph as the value of its interrupt() call.")
    agent_id: str | None = Field(
        None, description="The agent to continue with; default: the one that last ran the thread."
    )
    timeout: GoDuration | None = Field(None, description="The run's deadline (default 30s).")
