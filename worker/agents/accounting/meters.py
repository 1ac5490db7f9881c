"""The metrics of one agent type's calls to one model, looked up once per label set.

A model call moves up to seven series (four token kinds, cost or unpriced tokens, duration),
and a streamed one two more per token; ``labelled`` would look each up per call, where this
finds them all with one lookup. Label sets are few: agent types times the models they use.
"""

from __future__ import annotations

import functools
from decimal import Decimal

from prometheus_client import Counter

from worker.agents.accounting.usage import Usage
from worker.telemetry.metrics import (
    LLM_CALL_DURATION,
    LLM_COST,
    LLM_INTER_TOKEN,
    LLM_TIME_TO_FIRST_TOKEN,
    LLM_TOKENS,
    LLM_UNPRICED_TOKENS,
)


class ModelMeters:
    """The series of one agent type's calls to one provider's model."""

    __slots__ = (
        "cached_input",
        "call_duration",
        "cost",
        "first_token",
        "input",
        "inter_token",
        "output",
        "reasoning",
        "unpriced",
    )

    def __init__(self, agent_type: str, provider: str, model: str) -> None:
        def tokens(kind: str) -> Counter:
            return LLM_TOKENS.labels(agent_type, provider, model, kind)

        self.input = tokens("input")
        self.output = tokens("output")
        self.cached_input = tokens("cached_input")
        self.reasoning = tokens("reasoning")
        self.cost = LLM_COST.labels(agent_type, provider, model)
        self.unpriced = LLM_UNPRICED_TOKENS.labels(agent_type, provider, model)
        self.call_duration = LLM_CALL_DURATION.labels(provider, model)
        self.first_token = LLM_TIME_TO_FIRST_TOKEN.labels(provider, model)
        self.inter_token = LLM_INTER_TOKEN.labels(provider, model)

    def call(self, usage: Usage, cost: Decimal | None, seconds: float) -> None:
        """One call that spent ``usage``, costing ``cost`` (None: its model has no price) and
        taking ``seconds``."""
        if usage.input_tokens:
            self.input.inc(usage.input_tokens)
        if usage.output_tokens:
            self.output.inc(usage.output_tokens)
        if usage.cached_input_tokens:
            self.cached_input.inc(usage.cached_input_tokens)
        if usage.reasoning_tokens:
            self.reasoning.inc(usage.reasoning_tokens)
        if cost is None:
            if usage.total_tokens:
                self.unpriced.inc(usage.total_tokens)
        elif cost:
            self.cost.inc(float(cost))
        self.call_duration.observe(seconds)


@functools.cache
def model_meters(agent_type: str, provider: str, model: str) -> ModelMeters:
    """The series of ``agent_type``'s calls to ``provider``'s ``model``."""
    return ModelMeters(agent_type, provider, model)
