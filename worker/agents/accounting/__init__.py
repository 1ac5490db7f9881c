"""What a run spends and how its model calls felt: tokens, cost, latency, and budgets.

One ``UsageTracker`` per run sums the usage every model call of the run reports, prices it with
the operator's ``PriceTable``, stops the run when it would pass the agent's ``RunLimits``, and
moves the ``agentos_llm_*``, ``agentos_tool_*`` and ``agentos_budget_exceeded_total`` metrics.
The worker's own providers report to it through the run's scope; ``UsageCallbacks`` reports
what does not report itself (other models, tools). ``RunAccounting`` says, per agent, how its
runs are accounted. The tracker outlives the run, so a cancelled, timed-out or failed run still
reports what it spent.
"""

from worker.agents.accounting.budget import Budget, RunLimits, limits_of
from worker.agents.accounting.callbacks import UsageCallbacks
from worker.agents.accounting.prices import ModelPrice, PriceTable, load_prices
from worker.agents.accounting.runs import RunAccounting
from worker.agents.accounting.tracker import ModelCall, UsageTracker
from worker.agents.accounting.usage import RunUsage, Usage

__all__ = [
    "Budget",
    "ModelCall",
    "ModelPrice",
    "PriceTable",
    "RunAccounting",
    "RunLimits",
    "RunUsage",
    "Usage",
    "UsageCallbacks",
    "UsageTracker",
    "limits_of",
    "load_prices",
]
