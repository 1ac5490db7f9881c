"""The HTTP API's models. Handlers validate with them and ``/openapi.json`` is generated from
them, so the document and the behaviour cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from worker.durations import GoDuration, ReportedDuration
from worker.gojson import GoModel


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
    """``POST /v1/agents/{id}/invoke``."""

    input: Any = Field(description="The agent's input; its type's input schema applies.")
    timeout: GoDuration | None = Field(
        None, description="Deadline: integer nanoseconds or a Go duration string; default 30s."
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


class InvokeResponse(BaseModel):
    output: Any
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
