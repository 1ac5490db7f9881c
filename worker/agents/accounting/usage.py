"""Token counts: one model call's, as LangChain reports them, and a run's sum."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def reported_usage(response: Any) -> Usage | None:
    """The usage a model call reported: the ``usage_metadata`` of the first message of its
    ``LLMResult`` (or partial result) that has one; None when the provider reported none.

    Chat models put it on the ``AIMessage``; a streamed answer's message is its chunks merged,
    whose ``usage_metadata`` is the sum of the chunks' (OpenAI sends it in a last chunk).
    """
    for candidates in getattr(response, "generations", None) or ():
        for generation in candidates:
            metadata = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if metadata:
                return _from_metadata(metadata)
    return None


def _from_metadata(metadata: Any) -> Usage:
    cached = (metadata.get("input_token_details") or {}).get("cache_read") or 0
    reasoning = (metadata.get("output_token_details") or {}).get("reasoning") or 0
    return Usage(
        input_tokens=int(metadata.get("input_tokens") or 0),
        output_tokens=int(metadata.get("output_tokens") or 0),
        cached_input_tokens=int(cached),
        reasoning_tokens=int(reasoning),
    )
