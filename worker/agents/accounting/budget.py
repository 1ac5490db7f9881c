"""Per-run limits an agent's config sets (``limits``), and the check that stops a run at them.

A run stops with ``budget_exceeded`` (``BudgetExceeded``, 422) as soon as what it spent passes
a limit: after each model call with the provider's counts, and while a model streams, with each
streamed chunk counted as an output token (a stream's usage only arrives at its end). Reaching a
limit exactly is allowed. Once stopped, the run calls no model again (no fallback provider, no
next step of an agent). Calls to a model without a price spend nothing against
``max_cost_per_run`` (their tokens still count against ``max_tokens_per_run``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.errors import BudgetExceeded
from worker.telemetry.metrics import BUDGET_EXCEEDED, labelled

Limit = Literal["max_tokens_per_run", "max_cost_per_run"]


class RunLimits(BaseModel):
    """What one run of the agent may spend (unset: no limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="RunLimits")
    max_tokens_per_run: int | None = Field(
        None, ge=1, description="Input and output tokens of every model call of a run."
    )
    max_cost_per_run: float | None = Field(
        None,
        gt=0,
        description="US dollars a run may spend on model calls, priced by the worker's "
        "price table (WORKER_PRICES_FILE).",
    )

    @property
    def any(self) -> bool:
        """True when at least one limit is set."""
        return self.max_tokens_per_run is not None or self.max_cost_per_run is not None


def limits_of(config: Mapping[str, Any]) -> RunLimits | None:
    """The ``limits`` of an agent's (validated) config, None when it sets none."""
    raw = config.get("limits")
    if not raw:
        return None
    try:
        limits = RunLimits.model_validate(raw)
    except ValidationError:  # a type that has no `limits` of its own uses the key otherwise
        return None
    return limits if limits.any else None


class Budget:
    """The limits of one run: ``check`` says whether what it spent passes one."""

    __slots__ = ("_agent_type", "max_cost", "max_cost_float", "max_tokens")

    def __init__(self, limits: RunLimits, *, agent_type: str) -> None:
        self._agent_type = agent_type
        self.max_tokens = limits.max_tokens_per_run
        cost = limits.max_cost_per_run
        self.max_cost = None if cost is None else Decimal(str(cost))
        self.max_cost_float = cost

    def passed(self, tokens: int, cost: float | Decimal) -> BudgetExceeded | None:
        """The error for a run that spent ``tokens`` and ``cost`` US dollars, if that passes a
        limit (counted in ``agentos_budget_exceeded_total``); else None."""
        if self.max_tokens is not None and tokens > self.max_tokens:
            return self._exceeded("max_tokens_per_run", tokens, self.max_tokens, "tokens")
        limit = self.max_cost if isinstance(cost, Decimal) else self.max_cost_float
        if limit is not None and cost > limit:
            return self._exceeded("max_cost_per_run", cost, limit, "USD")
        return None

    def _exceeded(self, limit: Limit, spent: Any, allowed: Any, unit: str) -> BudgetExceeded:
        labelled(BUDGET_EXCEEDED, self._agent_type, limit).inc()
        return BudgetExceeded(
            f"the run was stopped at its agent's {limit} ({allowed} {unit}; spent {spent})",
            details={"limit": limit, "allowed": _number(allowed), "spent": _number(spent)},
        )


def _number(value: Any) -> int | float:
    return value if isinstance(value, int) else float(value)
