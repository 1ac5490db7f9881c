"""``UsageTracker``: what one run spent, summed as its model and tool calls report it.

Model calls report to it in one of two ways, and each call in one way only:

- the worker's own providers (every model of the ``chat`` and ``agent`` types: a
  ``GuardedChatModel``) report straight into the run's scope (``worker.resilience.metering``):
  the call opens a ``ModelCall``, counts each streamed chunk, hands over the usage the provider
  reported and ends. No LangChain callback handler is attached for them, since merely having one
  costs a run more than the accounting itself (``python -m bench.accounting``);
- any other model (an import-path graph's own) reports through ``UsageCallbacks``, a callback
  handler attached to runs of types that may call one (``AgentType.usage_from``), which also times
  tool calls.

A ``ModelCall`` counts each streamed chunk (time to first token, the gaps between tokens, and
the running count the budget is checked against, as a stream's usage only arrives at its end),
then takes the usage the provider reported (``usage_metadata``), its price, its duration, and
checks the budget again.

The counts live in the tracker, which outlives the run: a cancelled, timed-out or failed run
still says what it spent (``close`` accounts for the calls it left unfinished). A call that
never reported usage (a stream cut by a cancel, a provider that reports none) counts each
streamed chunk as one output token, the best figure there is, and the run's usage says
``"estimated": true``.

A run that would pass its agent's limits is stopped by the call that finds them passed: it
raises ``BudgetExceeded``, which ends the model call, and stops the run's scope
(``worker.resilience.scope.stop_run``), so that no fallback provider and no later step of an
agent calls a model again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from worker.agents.accounting.budget import Budget, RunLimits
from worker.agents.accounting.meters import ModelMeters, model_meters
from worker.agents.accounting.prices import ModelPrice, PriceTable
from worker.agents.accounting.usage import Usage, usage_of
from worker.durations import seconds_to_go
from worker.errors import BudgetExceeded
from worker.resilience.scope import stop_run
from worker.telemetry.metrics import RUN_COST, TOOL_CALLS, TOOL_DURATION, labelled

_now = time.perf_counter
_INF = float("inf")
_NO_PRICES = PriceTable()
_ZERO = Decimal(0)


class ModelCall:
    """One model call of the run, in progress: what the model reports it (``token`` per
    streamed chunk, ``report`` with the usage it sent, then ``end``; or ``stop`` when it
    failed or was cancelled). Implements ``worker.resilience.metering.CallMeter``."""

    __slots__ = (
        "chunks",
        "last",
        "meters",
        "observe_gap",
        "out_price",
        "price",
        "reported",
        "start",
        "tracker",
    )

    def __init__(
        self, tracker: UsageTracker, meters: ModelMeters, price: ModelPrice | None
    ) -> None:
        self.tracker = tracker
        self.meters = meters
        self.price = price
        self.out_price = 0.0 if price is None else price.per_output_token
        self.start = self.last = _now()
        self.chunks = 0
        self.reported: Usage | None = None
        self.observe_gap: Callable[[float], None] | None = None  # set on the first token

    def token(self) -> None:
        """A streamed chunk of output (text or a piece of a tool call): latency, and the
        running count for the budget (``BudgetExceeded`` once it passes a limit)."""
        now = _now()
        tracker = self.tracker
        if self.observe_gap is not None:
            self.observe_gap(now - self.last)
        else:
            self.meters.first_token.observe(now - self.start)
            self.observe_gap = self.meters.inter_token.observe
            if tracker.time_to_first_token is None:
                tracker.time_to_first_token = now - tracker.started
        self.last = now
        self.chunks += 1
        tracker.streamed += 1
        tracker.streamed_cost += self.out_price
        if tracker.streamed > tracker.token_room or tracker.streamed_cost > tracker.cost_room:
            tracker.check(tracker.usage.total_tokens + tracker.streamed, tracker.cost_float())

    def report(self, usage: Mapping[str, Any]) -> None:
        """Usage the provider reported (``usage_metadata``; a stream's chunks each add theirs)."""
        counted = usage_of(usage)
        if self.reported is None:
            self.reported = counted
        else:
            self.reported.add(counted)

    def end(self) -> None:
        """The call answered: its usage, cost and duration; then the budget."""
        tracker = self.tracker
        if self.reported is None:
            tracker.estimated = True  # the provider gave no count: at best the streamed chunks
        if tracker.settle(self) and tracker.budget is not None:
            tracker.check(tracker.usage.total_tokens, tracker.cost)

    def stop(self) -> None:
        """The call failed or was cancelled: what it spent before, as far as known."""
        self.tracker.settle(self)

    def discard(self) -> None:
        """Forget the call: it never reached a model (refused because the run was stopped)."""
        self.tracker.open.discard(self)


class UsageTracker:
    """What one run of an agent of type ``agent_type`` spent (see the module docstring).

    Make it when the run starts (``begin`` restarts the clock time to first token counts
    from). ``prices``: the operator's price table; ``limits``: the agent's, past which a call
    raises ``BudgetExceeded``. Implements ``worker.resilience.metering.Meter``.

    Its counters are plain attributes: a run's calls report from the event loop's thread, but
    for a Runnable without an async implementation, which LangChain runs in a worker thread;
    such runs' model calls are not concurrent with each other in practice.
    """

    __slots__ = (
        "agent_type",
        "budget",
        "closed",
        "cost",
        "cost_room",
        "estimated",
        "exceeded",
        "open",
        "prices",
        "started",
        "streamed",
        "streamed_cost",
        "time_to_first_token",
        "token_room",
        "tools",
        "unpriced",
        "usage",
    )

    def __init__(
        self,
        *,
        agent_type: str,
        prices: PriceTable | None = None,
        limits: RunLimits | None = None,
    ) -> None:
        self.agent_type = agent_type
        self.prices = prices or _NO_PRICES
        self.budget = Budget(limits, agent_type=agent_type) if limits and limits.any else None
        self.started = _now()
        self.usage = Usage()
        self.cost = _ZERO
        """What the priced calls cost, in US dollars (see ``cost_usd`` for the run's figure)."""
        self.unpriced = False
        """True once a call of a model without a price spent tokens."""
        self.estimated = False
        """True once a call's tokens were counted from its streamed chunks."""
        self.time_to_first_token: float | None = None
        """Seconds from the run's start to its first streamed token."""
        self.exceeded: BudgetExceeded | None = None
        """The limit the run passed, once it has."""
        self.open: set[ModelCall] = set()
        self.tools: dict[Any, tuple[str, float]] = {}
        self.closed = False
        # The calls in progress: their streamed chunks and those chunks' estimated cost, and
        # how much of each the budget has room for (infinite without a limit), so that a
        # streamed token costs two comparisons.
        self.streamed = 0
        self.streamed_cost = 0.0
        self.token_room: float = _INF
        self.cost_room: float = _INF
        if self.budget is not None:
            self._set_rooms(self.budget)

    def begin(self) -> None:
        """The run starts now: time to first token counts from here."""
        self.started = _now()

    # --- model calls ---------------------------------------------------------------------

    def model_call(self, provider: str, model: str) -> ModelCall:
        """A call of ``provider``'s ``model`` starts."""
        meters = model_meters(self.agent_type, provider, model)
        call = ModelCall(self, meters, self.prices.price(provider, model))
        self.open.add(call)
        return call

    def settle(self, call: ModelCall) -> bool:
        """Add a finished call to the run's counts and to the metrics (False when it was
        settled already)."""
        if call not in self.open:
            return False
        self.open.discard(call)
        if call.chunks:
            self.streamed -= call.chunks
            self.streamed_cost = sum(c.chunks * c.out_price for c in self.open)
        usage = call.reported
        if usage is None:
            usage = Usage(output_tokens=call.chunks)
            self.estimated = self.estimated or call.chunks > 0
        self.usage.add(usage)
        cost = None
        if call.price is not None:
            cost = call.price.cost(usage)
            self.cost += cost
        elif usage.total_tokens:
            self.unpriced = True
        call.meters.call(usage, cost, _now() - call.start)
        if self.budget is not None:
            self._set_rooms(self.budget)
        return True

    def _set_rooms(self, budget: Budget) -> None:
        if budget.max_tokens is not None:
            self.token_room = budget.max_tokens - self.usage.total_tokens
        if budget.max_cost is not None:
            self.cost_room = float(budget.max_cost - self.cost)

    def cost_float(self) -> float:
        """What the run spent so far, streamed chunks estimated, as a float."""
        return float(self.cost) + self.streamed_cost

    def check(self, tokens: int, cost: float | Decimal) -> None:
        """Stop the run if what it spent passes a limit: raise ``BudgetExceeded`` (ending the
        model call that reports) and stop the run's scope, so that no other provider (a
        fallback) and no later step calls a model again."""
        if self.budget is None:
            return
        if self.exceeded is None:
            exceeded = self.budget.passed(tokens, cost)
            if exceeded is None:
                return
            self.exceeded = exceeded
            stop_run(exceeded)
        raise self.exceeded

    # --- tools ---------------------------------------------------------------------------

    def tool_started(self, key: Any, name: str) -> None:
        """The tool ``name`` was called (``key`` names this call until it is done)."""
        self.tools[key] = (name, _now())

    def tool_done(self, key: Any, outcome: str) -> None:
        """The tool call ``key`` ended: ``ok``, ``error`` or ``cancelled``."""
        tool = self.tools.pop(key, None)
        if tool is not None:
            name, start = tool
            labelled(TOOL_CALLS, name, outcome).inc()
            labelled(TOOL_DURATION, name).observe(_now() - start)

    # --- the run's figures ---------------------------------------------------------------

    def close(self) -> None:
        """Account for the calls the run left unfinished (it was cancelled, or its deadline
        passed): each model call's streamed chunks as output tokens, each tool as
        ``cancelled``; then the run's cost in ``agentos_run_cost_usd`` (a run that spent
        tokens, all priced). Call it once the run is over; calling it again does nothing."""
        if self.closed:
            return
        self.closed = True
        for call in list(self.open):
            self.settle(call)
        for key in list(self.tools):
            self.tool_done(key, "cancelled")
        if self.usage.total_tokens and not self.unpriced:
            labelled(RUN_COST, self.agent_type).observe(float(self.cost))

    @property
    def cost_usd(self) -> Decimal | None:
        """What the run cost in US dollars; None when a model it used has no price."""
        return None if self.unpriced else self.cost

    def to_json(self) -> dict[str, Any]:
        """The run's ``usage`` (CONTRACT section 7), and its ``time_to_first_token`` (a Go
        duration) when it streamed tokens: keys to merge into a run's ``metadata``. Calls still
        in progress count their streamed chunks."""
        output = self.usage.output_tokens + self.streamed
        cost = self.cost_usd
        usage: dict[str, Any] = {
            "input_tokens": self.usage.input_tokens,
            "output_tokens": output,
            "total_tokens": self.usage.input_tokens + output,
            "cost_usd": None if cost is None else float(cost),
            "cached_input_tokens": self.usage.cached_input_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "estimated": self.estimated or self.streamed > 0,
        }
        out: dict[str, Any] = {"usage": usage}
        if self.time_to_first_token is not None:
            out["time_to_first_token"] = seconds_to_go(self.time_to_first_token)
        return out
