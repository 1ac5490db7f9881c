"""An agent as it runs on a conversation thread: a LangGraph graph on the pool's checkpointer.

A type that can keep a thread says how (``AgentType.on_thread``) by building a ``ThreadGraph``:
its graph compiled with ``BuildContext.checkpointer``, how the agent's input becomes the graph's
input (a turn: usually one human message, which the graph's reducer appends to the thread's
messages) and how the graph's final values become the agent's output (usually the last
message's text). Every run on a thread then goes the same way, whatever the type:
``configurable.thread_id`` names the thread, LangGraph loads and saves its checkpoints, and
``Command(resume=...)`` answers an ``interrupt()`` (``worker.agents.thread_runs``).

A graph compiled elsewhere (``WORKER_AGENT_TYPES``) gets the checkpointer on a copy
(``with_checkpointer``): the module's own graph object is never changed, so it still runs
without one when no thread is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel


def same(value: Any) -> Any:
    """The value unchanged (a graph taking the agent's input, or giving the agent's output)."""
    return value


@dataclass(frozen=True, kw_only=True)
class ThreadGraph:
    """An agent as it runs on a thread."""

    graph: Runnable[Any, Any]
    """Compiled with the pool's checkpointer: takes the graph's input (or a ``Command``) with
    ``configurable.thread_id`` and returns the graph's final values."""
    to_input: Callable[[Any], Any] = same
    """The agent's (validated) input as the graph's input."""
    to_output: Callable[[Any], Any] = same
    """The graph's final values as the agent's output."""


def with_checkpointer(
    runnable: Runnable[Any, Any], checkpointer: BaseCheckpointSaver[Any] | None
) -> Pregel[Any, Any, Any, Any] | None:
    """A copy of ``runnable`` compiled with ``checkpointer``, if it is a LangGraph graph (the
    copy keeps the graph's bound config); None for any other Runnable."""
    if not isinstance(runnable, Pregel):
        return None
    copy: Pregel[Any, Any, Any, Any] = runnable.copy(update={"checkpointer": checkpointer})
    return copy


def last_text(values: Mapping[str, Any]) -> str:
    """The text of the last message of a ``messages`` state (empty when there is none)."""
    messages: list[BaseMessage] = list(values.get("messages") or [])
    return messages[-1].text if messages else ""
