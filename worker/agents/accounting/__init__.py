"""What a run spends and how its model calls felt: tokens, cost, latency, and budgets.

One ``UsageTracker`` is attached to a run as a LangChain callback handler; it sums the usage
every model call of the run reports, prices it with the operator's ``PriceTable``, stops the
run when it would pass the agent's ``RunLimits``, and moves the ``agentos_llm_*``,
``agentos_tool_*`` and ``agentos_budget_exceeded_total`` metrics. The tracker outlives the run,
so a cancelled, timed-out or failed run still reports what it spent.
"""

from worker.agents.accounting.budget import Budget, RunLimits, limits_of
from worker.agents.accounting.prices import ModelPrice, PriceTable, load_prices
from worker.agents.accounting.tracker import UsageTracker
from worker.agents.accounting.usage import Usage

__all__ = [
    "Budget",
    "ModelPrice",
    "PriceTable",
    "RunLimits",
    "Usage",
    "UsageTracker",
    "limits_of",
    "load_prices",
]
