"""``RunAccounting``: how the runs of one agent are accounted, fixed when the agent is built.

One per built agent (``ResolvedAgent.accounting``): its type, the operator's price table, the
agent's limits and whether its runs need the callback handler. Each run takes a fresh
``UsageTracker`` from it; ``worker.agents.runtime.execute`` puts the tracker in the run's
scope, where the worker's providers report to it, and attaches ``UsageCallbacks`` only to runs
of types whose model or tool calls do not report themselves (``AgentType.usage_from``).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.agents.accounting.budget import RunLimits
from worker.agents.accounting.prices import PriceTable
from worker.agents.accounting.tracker import UsageTracker


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAccounting:
    """How one agent's runs are accounted."""

    agent_type: str
    prices: PriceTable
    limits: RunLimits | None
    callbacks: bool
    """Attach ``UsageCallbacks`` to its runs (its type's model or tool calls do not all report
    to the run's scope themselves)."""

    def tracker(self) -> UsageTracker:
        """A tracker for one run, starting now."""
        return UsageTracker(agent_type=self.agent_type, prices=self.prices, limits=self.limits)
