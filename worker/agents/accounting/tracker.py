"""``UsageTracker``: the callback handler that accounts for one run.

Attached once per run (in the run's ``callbacks``, so every model and tool call inside it, at
any depth, reports to it), it hears:

- each model call's start, with the provider and model LangChain names in the call's metadata
  (``ls_provider``, ``ls_model_name``: ``openai`` and ``gpt-4o-mini``; ``fake`` and its model);
- each streamed token: time to first token, the gaps between tokens, and the running count
  that the budget is checked against (a stream's usage arrives only at its end);
- each call's end or error: the usage the provider reported (``usage_metadata``), its price,
  its duration, and the budget check;
- each tool call's start, end or error: duration and outcome by tool.

The counts live in the tracker, which outlives the run: a cancelled, timed-out or failed run
still says what it spent (``close`` accounts for the calls it left unfinished). A call that
never reported usage (a stream cut by a cancel, a provider that reports none) counts each
streamed chunk as one output token, the best figure there is, and the run's usage says
``"estimated": true``.

A run that would pass its agent's limits is stopped from the callback that finds them passed:
it raises ``BudgetExceeded``, which ends the model call, and stops the run's scope
(``worker.resilience.scope.stop_run``), so that no fallback provider and no later step of an
agent calls a model again.

Why a plain handler run inline: it is on every chat run, per token, so it does no more than a
few additions and a histogram observation per token; it asks LangChain for nothing else
(chains, retrievers, custom events are ignored), and it is not a streaming handler, so it
never makes a model stream that would not have streamed anyway. (What it costs a run:
``python -m bench.accounting``.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from worker.agents.accounting.budget import Budget, RunLimits
from worker.agents.accounting.meters import ModelMeters, model_meters
from worker.agents.accounting.prices import ModelPrice, PriceTable
from worker.agents.accounting.usage import Usage, reported_usage
from worker.durations import seconds_to_go
from worker.errors import BudgetExceeded
from worker.resilience.scope import stop_run
from worker.telemetry.metrics import TOOL_CALLS, TOOL_DURATION, labelled

UNKNOWN = "unknown"
_now = time.perf_counter
_INF = float("inf")
_NO_PRICES = PriceTable()
_ZERO = Decimal(0)


class _Call:
    """One model call in progress."""

    __slots__ = ("chunks", "last", "meters", "observe_gap", "out_price", "price", "start")

    def __init__(self, meters: ModelMeters, price: ModelPrice | None, start: float) -> None:
        self.meters = meters
        self.price = price
        self.out_price = 0.0 if price is None else price.per_output_token
        self.start = start
        self.last = start
        self.chunks = 0
        self.observe_gap: Callable[[float], None] | None = None  # set on the first token


class UsageTracker(BaseCallbackHandler):
    """Accounts for one run of an agent of type ``agent_type`` (see the module docstring).

    Make it when the run starts (time to first token counts from then). ``prices``: the
    operator's price table; ``limits``: the agent's, which make the tracker raise
    ``BudgetExceeded`` out of the callback that finds them passed (LangChain re-raises a
    handler's error only when its ``raise_error`` is set, which is done only then: without
    limits, a failure in accounting can never fail a run).

    Its counters are plain attributes: callbacks of one run come from the event loop's thread,
    but for a Runnable without an async implementation, which LangChain runs in a worker
    thread; such runs' model calls are not concurrent with each other in practice.
    """

    run_inline = True
    # Events it does not need are never dispatched to it (tool events go by ignore_agent).
    ignore_chain = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(
        self,
        *,
        agent_type: str,
        prices: PriceTable | None = None,
        limits: RunLimits | None = None,
    ) -> None:
        self.agent_type = agent_type
        self._prices = prices or _NO_PRICES
        self._budget = Budget(limits, agent_type=agent_type) if limits and limits.any else None
        self.raise_error = self._budget is not None
        self.started = _now()
        self.usage = Usage()
        self.cost = _ZERO
        """What the priced calls cost, in US dollars (see ``cost_usd`` for the run's figure)."""
        self.unpriced = False
        """True once a call of a model without a price spent tokens."""
        self.estimated = False
        """True once a call's tokens were counted from its streamed chunks."""
        self.time_to_first_token: float | None = None
        """Seconds from the tracker's start (the run's) to its first streamed token."""
        self.exceeded: BudgetExceeded | None = None
        """The limit the run passed, once it has."""
        self._calls: dict[UUID, _Call] = {}
        self._tools: dict[UUID, tuple[str, float]] = {}
        # The calls in progress: their streamed chunks and those chunks' estimated cost, and
        # how much of each the budget has room for (infinite without a limit), so that a
        # streamed token costs two comparisons.
        self._streamed = 0
        self._streamed_cost = 0.0
        self._token_room: float = _INF
        self._cost_room: float = _INF
        if self._budget is not None:
            self._set_rooms(self._budget)

    # --- model calls ---------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A model call starts: note its provider, model and price."""
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A (completion) model call starts."""
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def _start(
        self, run_id: UUID, metadata: dict[str, Any] | None, params: dict[str, Any] | None
    ) -> None:
        provider, model = _names(metadata, params)
        meters = model_meters(self.agent_type, provider, model)
        self._calls[run_id] = _Call(meters, self._prices.price(provider, model), _now())

    def on_llm_new_token(
        self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any
    ) -> None:
        """A streamed chunk: latency, and the running count for the budget."""
        call = self._calls.get(run_id)
        if call is None or not (token or _has_tool_call(chunk)):
            return  # not a call of this run; or a stream's opening, closing or usage chunk
        now = _now()
        if call.observe_gap is not None:
            call.observe_gap(now - call.last)
        else:
            self._first_token(call, now)
        call.last = now
        call.chunks += 1
        self._streamed += 1
        self._streamed_cost += call.out_price
        if self._streamed > self._token_room or self._streamed_cost > self._cost_room:
            self._over(self.usage.total_tokens + self._streamed, self._cost_float())

    def _first_token(self, call: _Call, now: float) -> None:
        call.meters.first_token.observe(now - call.start)
        call.observe_gap = call.meters.inter_token.observe
        if self.time_to_first_token is None:
            self.time_to_first_token = now - self.started

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A model call answered: its usage, cost and duration; then the budget."""
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        usage = reported_usage(response)
        if usage is None:
            self.estimated = True  # the provider gave no count: at best the streamed chunks
        self._settle(call, usage)
        if self._budget is not None:
            self._over(self.usage.total_tokens, self.cost)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A model call failed or was cancelled: what it spent before, as far as known."""
        call = self._calls.pop(run_id, None)
        if call is None or (error is self.exceeded and not call.chunks):
            return  # a call refused because the run was stopped: no model was called
        self._settle(call, reported_usage(kwargs.get("response")))

    def _settle(self, call: _Call, usage: Usage | None) -> None:
        """Add a finished call to the run's counts and to the metrics."""
        if call.chunks:
            self._streamed -= call.chunks
            self._streamed_cost = sum(c.chunks * c.out_price for c in self._calls.values())
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
        if self._budget is not None:
            self._set_rooms(self._budget)

    def _set_rooms(self, budget: Budget) -> None:
        if budget.max_tokens is not None:
            self._token_room = budget.max_tokens - self.usage.total_tokens
        if budget.max_cost is not None:
            self._cost_room = float(budget.max_cost - self.cost)

    def _cost_float(self) -> float:
        return float(self.cost) + self._streamed_cost

    def _over(self, tokens: int, cost: float | Decimal) -> None:
        """Stop the run if what it spent passes a limit: raise ``BudgetExceeded`` out of the
        callback, which ends the model call, and stop the run's scope, so that no other
        provider (a fallback) and no later step calls a model again."""
        if self.exceeded is None:
            assert self._budget is not None  # noqa: S101 - limits are checked only with one
            exceeded = self._budget.passed(tokens, cost)
            if exceeded is None:
                return
            self.exceeded = exceeded
            stop_run(exceeded)
        raise self.exceeded

    # --- tools ---------------------------------------------------------------------------

    def on_tool_start(
        self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """A tool was called."""
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        self._tools[run_id] = (str(name), _now())

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool returned (an error ``ToolMessage`` is an error)."""
        failed = getattr(output, "status", None) == "error"
        self._tool_done(run_id, "error" if failed else "ok")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool raised."""
        self._tool_done(run_id, "error")

    def _tool_done(self, run_id: UUID, outcome: str) -> None:
        tool = self._tools.pop(run_id, None)
        if tool is not None:
            name, start = tool
            labelled(TOOL_CALLS, name, outcome).inc()
            labelled(TOOL_DURATION, name).observe(_now() - start)

    # --- the run's figures ---------------------------------------------------------------

    def close(self) -> None:
        """Account for the calls the run left unfinished (it was cancelled, or its deadline
        passed): each model call's streamed chunks as output tokens, each tool as
        ``cancelled``. Call it once the run is over; calling it again does nothing."""
        for run_id in list(self._calls):
            call = self._calls.pop(run_id, None)
            if call is not None:
                self._settle(call, None)
        for run_id in list(self._tools):
            self._tool_done(run_id, "cancelled")

    @property
    def cost_usd(self) -> Decimal | None:
        """What the run cost in US dollars; None when a model it used has no price."""
        return None if self.unpriced else self.cost

    def to_json(self) -> dict[str, Any]:
        """The run's ``usage`` (CONTRACT section 7), and its ``time_to_first_token`` (a Go
        duration) when it streamed tokens: keys to merge into a run's ``metadata``. Calls still
        in progress count their streamed chunks."""
        output = self.usage.output_tokens + self._streamed
        cost = self.cost_usd
        usage: dict[str, Any] = {
            "input_tokens": self.usage.input_tokens,
            "output_tokens": output,
            "total_tokens": self.usage.input_tokens + output,
            "cost_usd": None if cost is None else float(cost),
            "cached_input_tokens": self.usage.cached_input_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "estimated": self.estimated or self._streamed > 0,
        }
        out: dict[str, Any] = {"usage": usage}
        if self.time_to_first_token is not None:
            out["time_to_first_token"] = seconds_to_go(self.time_to_first_token)
        return out


def _names(metadata: dict[str, Any] | None, params: dict[str, Any] | None) -> tuple[str, str]:
    """The provider and model of a call: LangChain's ``ls_provider`` and ``ls_model_name``
    (every chat model of langchain-core 1.x sets them), else the invocation's ``model``."""
    provider = model = None
    if metadata:
        provider = metadata.get("ls_provider")
        model = metadata.get("ls_model_name")
    if model is None and params:
        model = params.get("model") or params.get("model_name")
    return str(provider or UNKNOWN), str(model or UNKNOWN)


def _has_tool_call(chunk: Any) -> bool:
    """True for a chunk carrying (a piece of) a tool call: output with no text."""
    message = getattr(chunk, "message", None)
    return bool(getattr(message, "tool_call_chunks", None))
