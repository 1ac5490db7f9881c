"""What a run's model calls report about themselves: the interfaces a run's usage tracker
offers its scope, and the guarded model's side of them.

The caller of a run may put a ``Meter`` in the run's scope (``run_scope(meter=...)``; the
worker's is ``worker.agents.accounting.UsageTracker``). Each call of one of the worker's
providers (``GuardedChatModel``) then opens a ``CallMeter`` and tells it, as the call goes,
each streamed chunk of output, the usage the provider reported, and how the call ended. The
model sees every chunk and the whole answer anyway, so this costs a few attribute reads per
chunk, where a LangChain callback handler would cost the run its dispatch of every event of
every step (``python -m bench.accounting``).

Defined here, below the agents that implement them, as protocols: the resilience layer only
reports, and knows nothing of prices or budgets. A meter may raise out of ``token`` or ``end``
(a budget passed, ``BudgetExceeded``), which ends the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from langchain_core.outputs import ChatGenerationChunk, ChatResult


class CallMeter(Protocol):
    """One model call, as it reports itself."""

    def token(self) -> None:
        """A streamed chunk of output: text, or a piece of a tool call."""

    def report(self, usage: Mapping[str, Any]) -> None:
        """Usage the provider reported (LangChain's ``usage_metadata``), for the whole answer
        or for one of a stream's chunks (they add up)."""

    def end(self) -> None:
        """The call answered."""

    def stop(self) -> None:
        """The call failed or was cancelled (after what it reported so far)."""


class Meter(Protocol):
    """What one run's model calls report to (see the module docstring)."""

    def model_call(self, provider: str, model: str) -> CallMeter:
        """A call of ``provider``'s (LangChain's ``ls_provider``) ``model`` starts."""
        ...


def meter_answer(call: CallMeter, result: ChatResult) -> None:
    """A whole answer: the usage each of its messages reports, then the call's end."""
    for generation in result.generations:
        usage = getattr(generation.message, "usage_metadata", None)
        if usage:
            call.report(usage)
    call.end()


def meter_chunk(call: CallMeter, chunk: ChatGenerationChunk) -> None:
    """One chunk of a streamed answer: a token when it carries output, and its usage if any
    (OpenAI's comes in a last chunk of its own)."""
    message = chunk.message
    if chunk.text or getattr(message, "tool_call_chunks", None):
        call.token()
    usage = getattr(message, "usage_metadata", None)
    if usage:
        call.report(usage)
