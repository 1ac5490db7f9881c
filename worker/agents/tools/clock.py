"""``current_time``: the current date and time in UTC, ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict


class NoInput(BaseModel):
    """``current_time`` takes no arguments."""

    model_config = ConfigDict(extra="forbid")


def now() -> str:
    """The current UTC time, ISO 8601 to the millisecond (``2026-11-21T10:00:00.123Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _anow() -> str:
    return now()


def current_time_tool() -> BaseTool:
    """The ``current_time`` tool."""
    return StructuredTool.from_function(
        func=now,
        coroutine=_anow,
        name="current_time",
        description="The current date and time in UTC, ISO 8601 (e.g. 2026-11-21T10:00:00.123Z).",
        args_schema=NoInput,
    )
