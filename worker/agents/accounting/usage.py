"""Token counts: one model call's, as LangChain reports them, a run's sum, and the ``usage``
object runs report (CONTRACT section 7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, Field


@dataclass(slots=True)
class Usage:
    """Tokens spent. ``input_tokens`` include the cached ones and ``output_tokens`` the
    reasoning ones, as providers count them (OpenAI's ``prompt_tokens`` and
    ``completion_tokens``)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input and output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        """Add ``other``'s counts to these."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.reasoning_tokens += other.reasoning_tokens


def reported_usage(response: Any) -> Mapping[str, Any] | None:
    """The usage a model call reported: the ``usage_metadata`` of the first message of its
    ``LLMResult`` (or partial result) that has one; None when the provider reported none.

    Chat models put it on the ``AIMessage``; a streamed answer's message is its chunks merged,
    whose ``usage_metadata`` is the sum of the chunks' (OpenAI sends it in a last chunk).
    """
    for candidates in getattr(response, "generations", None) or ():
        for generation in candidates:
            metadata = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if metadata:
                return cast(Mapping[str, Any], metadata)
    return None


def usage_of(metadata: Mapping[str, Any]) -> Usage:
    """LangChain's ``usage_metadata`` of one message as a ``Usage``."""
    cached = (metadata.get("input_token_details") or {}).get("cache_read") or 0
    reasoning = (metadata.get("output_token_details") or {}).get("reasoning") or 0
    return Usage(
        input_tokens=int(metadata.get("input_tokens") or 0),
        output_tokens=int(metadata.get("output_tokens") or 0),
        cached_input_tokens=int(cached),
        reasoning_tokens=int(reasoning),
    )


class RunUsage(BaseModel):
    """What a run spent on model calls, summed over every call (CONTRACT section 7): in the
    invoke answer's ``metadata``, the final frame, the job callback's ``metadata``, the task
    and each thread turn's checkpoint."""

    input_tokens: int = Field(description="Prompt tokens, cached ones included.")
    output_tokens: int = Field(description="Completion tokens, reasoning ones included.")
    total_tokens: int = Field(description="Input and output tokens.")
    cost_usd: float | None = Field(
        description="US dollars, by the worker's price table (WORKER_PRICES_FILE); null when "
        "a model the run called has no price."
    )
    cached_input_tokens: int = Field(0, description="Of the input tokens, read from a cache.")
    reasoning_tokens: int = Field(0, description="Of the output tokens, spent reasoning.")
    estimated: bool = Field(
        False,
        description="True when a call's count is the worker's, not the provider's: a stream "
        "cut before its usage arrived (cancelled, timed out, stopped by a budget) counts each "
        "streamed chunk as one output token.",
    )
