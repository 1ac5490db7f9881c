"""What a thread looks like from outside (CONTRACT section 6): its record, its state, and each
checkpoint of its history, with their JSON forms.

Values are the checkpoint's channel values minus LangGraph's own channels (``__start__``,
``branch:to:<node>``, ...), read without the graph: a caller holding the graph gets the exact
view from ``graph.aget_state(config)``. Messages take LangChain's JSON form
(``{"type": "human"|"ai"|"tool"|"system", "content", ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.types import INTERRUPT
from pydantic_core import to_jsonable_python

ThreadStatus = Literal["idle", "busy", "interrupted"]


def jsonable(value: Any) -> Any:
    """``value`` in JSON types: models and messages as their fields, anything else unknown as
    its ``str``."""
    return to_jsonable_python(value, fallback=str)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """A thread as created: its id, when, and the caller's metadata."""

    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)

    def dump(self) -> bytes:
        """The stored form."""
        return orjson.dumps(
            {
                "thread_id": self.thread_id,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "metadata": self.metadata,
            },
            option=orjson.OPT_UTC_Z,
        )

    @classmethod
    def load(cls, data: bytes) -> ThreadRecord:
        """Read the stored form."""
        raw = orjson.loads(data)
        return cls(
            thread_id=raw["thread_id"],
            created_at=datetime.fromisoformat(raw["created_at"]),
            updated_at=datetime.fromisoformat(raw["updated_at"]),
            metadata=raw.get("metadata") or {},
        )

    def to_json(self) -> dict[str, Any]:
        """The body of ``POST /v1/threads``."""
        return {
            "thread_id": self.thread_id,
            "created_at": _time(self.created_at),
            "metadata": jsonable(self.metadata),
        }


@dataclass(frozen=True, slots=True)
class ThreadCheckpoint:
    """One checkpoint of a thread's history."""

    checkpoint_id: str
    parent_checkpoint_id: str | None
    created_at: datetime
    metadata: dict[str, Any]
    values: dict[str, Any]
    interrupts: list[dict[str, Any]]
    """What the run asked when it stopped here (``[{"id", "value"}]``); empty if it did not."""

    @classmethod
    def of(cls, item: CheckpointTuple) -> ThreadCheckpoint:
        """The view of a stored checkpoint."""
        parent = item.parent_config["configurable"]["checkpoint_id"] if item.parent_config else None
        return cls(
            checkpoint_id=item.config["configurable"]["checkpoint_id"],
            parent_checkpoint_id=parent,
            created_at=datetime.fromisoformat(item.checkpoint["ts"]),
            metadata=dict(item.metadata),
            values=state_values(item.checkpoint["channel_values"]),
            interrupts=pending_interrupts(item),
        )

    def to_json(self) -> dict[str, Any]:
        """One entry of ``GET /v1/threads/{id}/history``."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "parent_checkpoint_id": self.parent_checkpoint_id,
            "created_at": _time(self.created_at),
            "metadata": jsonable(self.metadata),
            "values": jsonable(self.values),
            "interrupts": jsonable(self.interrupts),
        }


@dataclass(frozen=True, slots=True)
class ThreadState:
    """A thread now: whether a run holds it or waits for a person, and its latest values."""

    thread_id: str
    status: ThreadStatus
    values: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    checkpoint_id: str | None
    interrupts: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /v1/threads/{id}``."""
        return {
            "thread_id": self.thread_id,
            "status": self.status,
            "values": jsonable(self.values),
            "created_at": _time(self.created_at),
            "updated_at": _time(self.updated_at),
            "metadata": jsonable(self.metadata),
            "checkpoint_id": self.checkpoint_id,
            "interrupts": jsonable(self.interrupts),
        }


def state_values(channel_values: Mapping[str, Any]) -> dict[str, Any]:
    """The graph's state channels: LangGraph's own (``__x__``, ``branch:to:x``) left out."""
    return {
        name: value
        for name, value in channel_values.items()
        if not name.startswith("__") and ":" not in name
    }


def pending_interrupts(item: CheckpointTuple) -> list[dict[str, Any]]:
    """The interrupts recorded against a checkpoint that no later step has answered (the
    latest checkpoint of an interrupted thread holds them as pending writes)."""
    found: list[dict[str, Any]] = []
    for _task, channel, value in item.pending_writes or ():
        if channel == INTERRUPT:
            found.extend(
                {"id": getattr(i, "id", None), "value": getattr(i, "value", None)}
                for i in (value if isinstance(value, list | tuple) else (value,))
            )
    return found
