"""Wire models of the streaming door, for validation and for the generated documents."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from worker.agents.accounting import RunUsage
from worker.durations import GoDuration
from worker.gojson import GoModel
from worker.streaming.frames import FrameEvent
from worker.threads.keys import THREAD_ID_PATTERN


class FrameError(BaseModel):
    code: str = Field(description="timeout, agent_error, cancelled, ...")
    message: str


class ToolStartData(BaseModel):
    """``data`` of a ``tool_start`` frame."""

    tool: str = Field(description="The tool's name.")
    input: Any = Field(description="Its arguments, as the model gave them.")
    tool_call_id: str | None = Field(None, description="The model's id of this call.")


class ToolEndData(BaseModel):
    """``data`` of a ``tool_end`` frame."""

    tool: str
    output: str = Field(description="What the tool returned, as text (JSON if not text).")
    tool_call_id: str | None = None
    truncated: bool | None = Field(
        None, description="Present (true) when the output was cut to the worker's limit."
    )


class ToolErrorData(BaseModel):
    """``data`` of a ``tool_error`` frame."""

    tool: str
    error: str = Field(description="The error the tool raised: `Type: message`.")
    tool_call_id: str | None = None
    truncated: bool | None = Field(None, description="Present (true) when the text was cut.")


class NodeData(BaseModel):
    """``data`` of a ``node`` frame."""

    node: str = Field(description="The LangGraph node that finished.")


class InterruptData(BaseModel):
    """``data`` of an ``interrupt`` frame."""

    value: Any = Field(description="What the graph asks (the argument of `interrupt()`).")
    id: str | None = Field(None, description="The interrupt's id, to resume it by.")


class Frame(BaseModel):
    """One progress frame of a run (CONTRACT sections 3 and 6). SSE: ``id`` is ``seq``, the SSE
    ``event`` is ``status``, ``data`` is this JSON."""

    task_id: str
    seq: int = Field(ge=1, description="1, 2, 3... with no gaps for a task, across attempts.")
    status: Literal["started", "processing", "completed", "failed", "cancelled", "interrupted"] = (
        Field(
            description="started, processing..., then one final status: completed, failed, "
            "cancelled, or interrupted (the run asks a person; its thread is resumed with "
            "POST /v1/threads/{thread_id}/resume)."
        )
    )
    progress: int = Field(ge=0, le=100)
    message: str
    partial_result: Any = Field(None, description="A streamed token or a step's result.")
    ts: str = Field(description="RFC 3339 UTC time the frame was made, in milliseconds.")
    attempt: int = Field(1, ge=1, description="Which run of the task made the frame.")
    result: Any = Field(None, description="On the `completed` frame: the run's output.")
    error: FrameError | None = Field(None, description="On `failed` and `cancelled` frames.")
    event: FrameEvent | None = Field(
        None,
        description="On `processing` frames of an agent step: which step (absent: a plain "
        "progress frame). `token` frames carry the text in `partial_result`.",
    )
    data: ToolStartData | ToolEndData | ToolErrorData | NodeData | InterruptData | None = Field(
        None, description="The step's details, by `event`."
    )
    interrupt: Any = Field(
        None,
        description="On the `interrupted` frame: what the run asks (the value given to "
        "LangGraph's `interrupt()`; a list when several are pending).",
    )
    coalesced: int | None = Field(
        None,
        ge=2,
        description="Present when a reader fell behind: this frame stands for the frames "
        "seq-coalesced+1 ... seq (text partial results joined).",
    )
    usage: RunUsage | None = Field(
        None,
        description="On the final frame: what the run spent on model calls, up to its end "
        "(a failed or cancelled run's too).",
    )
    time_to_first_token: str | None = Field(
        None,
        description="On the final frame of a run that streamed tokens: from its start to its "
        "first token, a Go duration ('412.5ms').",
        examples=["412.5ms"],
    )


class ChatMessage(GoModel):
    """What a client sends on ``GET /v1/agents/{agent_id}/ws``: a run's input, or a cancel."""

    input: Any = Field(None, description="The agent's input; starts a run.")
    thread_id: str | None = Field(
        None,
        description="Run on this conversation thread (created when new): "
        "1 to 128 characters of A-Z a-z 0-9 _ . -",
        json_schema_extra={"pattern": THREAD_ID_PATTERN},
    )
    timeout: GoDuration | None = Field(None, description="The run's deadline (default 30s).")
    cancel: bool = Field(False, description="Cancel the run in progress.")


class SocketErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str
    details: Any = None
    resume_from_seq: int | None = None


class SocketError(BaseModel):
    """An error sent on a socket (WebSocket message, or SSE ``event: error``)."""

    error: SocketErrorDetail
