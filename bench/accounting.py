"""``python -m bench.accounting``: the CPU a ``chat`` run spends on accounting, in process.

The ``chat`` agent on the fake model is run through ``runtime.execute`` (its deadline, run
scope, metrics and accounting, as the worker's doors run it), in batches, alternately built with
accounting off (``WORKER_ACCOUNTING=false``) and on (a price and both limits set, so every
check runs), plainly (``ainvoke``: the invoke door and jobs) and streamed token by token (with
the streaming doors' ``FrameCallbacks`` attached). What is compared is the process CPU time per
run (``time.process_time``); alternating the batches lets both sides see the same drift of a
shared machine, and each round gives one ratio, on over off. The rounds' median is the figure;
the goal is below 1.03 (3%).

A third line attaches a callback handler that does nothing to a run with accounting off: what
LangChain itself charges a run for having any handler attached (it dispatches every runnable's
start and end to it, and checks it against its streaming-handler protocol before each model
call). That is why a ``chat`` run's accounting attaches none: its providers report into the
run's scope instead (``worker.resilience.metering``).

The fake model answers in microseconds, so this is accounting against the cheapest run there
is; a run through the HTTP door costs the HTTP handling on top (``python -m
bench.http.sidebyside --against accounting --agent chat`` measures that), and a real model's
run the network, both of which make accounting's share smaller still.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig

from worker.agents import runtime
from worker.agents.accounting import PriceTable
from worker.agents.agent_type import BuildContext
from worker.agents.registry import AgentTypeRegistry
from worker.agents.store import AgentRecord, ResolvedAgent, build_agent
from worker.streaming.agent_events import stream_agent

PRICES = PriceTable.model_validate({"models": {"fake": {"input": "0.15", "output": "0.60"}}})
LIMITS = {"max_tokens_per_run": 1_000_000, "max_cost_per_run": 100.0}
QUESTION = "Hello there, how are you?"
Mode = Callable[[ResolvedAgent, list[BaseCallbackHandler]], Awaitable[Any]]


def chat_agent(*, accounting: bool) -> ResolvedAgent:
    """The ``chat`` agent (the fake model, limits set), as the store builds it."""
    chat = AgentTypeRegistry.discover().get("chat")
    now = datetime.now(UTC)
    config = chat.parse_config({"limits": LIMITS}).model_dump(mode="json")
    record = AgentRecord(
        id="bench-chat", type="chat", name="", config=config, created_at=now, updated_at=now
    )
    return build_agent(record, chat, BuildContext(prices=PRICES, accounting=accounting))


async def plain(agent: ResolvedAgent, handlers: list[BaseCallbackHandler]) -> Any:
    """One run as the invoke door and jobs run it."""

    async def work(config: RunnableConfig) -> Any:
        if handlers:
            config = {**config, "callbacks": handlers}
        return await agent.runnable.ainvoke(QUESTION, config)

    return await runtime.execute(agent, work, time_limit=30)


async def streamed(agent: ResolvedAgent, handlers: list[BaseCallbackHandler]) -> Any:
    """One run as the streaming doors run it: every token a draft frame."""

    async def work(config: RunnableConfig) -> Any:
        if handlers:
            config = {**config, "callbacks": handlers}
        return await stream_agent(agent, QUESTION, config, lambda _: None)

    return await runtime.execute(agent, work, time_limit=30)


class NoOp(BaseCallbackHandler):
    """Hears what a usage handler would hear, and does nothing."""

    run_inline = True
    ignore_chain = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        """Nothing."""


Side = tuple[ResolvedAgent, bool]
"""An agent, and whether its runs get a ``NoOp`` handler."""


async def batch(side: Side, mode: Mode, runs: int) -> float:
    """CPU seconds per run of ``side``, over ``runs`` runs."""
    agent, noop = side
    start = time.process_time()
    for _ in range(runs):
        await mode(agent, [NoOp()] if noop else [])
    return (time.process_time() - start) / runs


async def measure(
    mode: Mode, off: Side, on: Side, *, runs: int, rounds: int
) -> tuple[float, float, float]:
    """The median ratio (``on`` over ``off``) and the median µs per run of each."""
    await batch(off, mode, runs)  # warm up both paths
    await batch(on, mode, runs)
    ratios, offs, ons = [], [], []
    for i in range(rounds):
        order = (off, on) if i % 2 == 0 else (on, off)
        seconds = {side is on: await batch(side, mode, runs) for side in order}
        offs.append(seconds[False])
        ons.append(seconds[True])
        ratios.append(seconds[True] / seconds[False])
    return statistics.median(ratios), statistics.median(offs) * 1e6, statistics.median(ons) * 1e6


def main(argv: list[str] | None = None) -> int:
    """Print, per way of running, the µs of CPU per run without and with, and their ratio."""
    p = argparse.ArgumentParser(prog="python -m bench.accounting", description=__doc__)
    p.add_argument("--runs", type=int, default=200, help="runs per batch (default 200)")
    p.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    args = p.parse_args(argv)
    off: Side = (chat_agent(accounting=False), False)
    on: Side = (chat_agent(accounting=True), False)
    noop: Side = (off[0], True)
    cases: list[tuple[str, Mode, Side]] = [
        ("plain, accounting", plain, on),
        ("plain, no-op handler", plain, noop),
        ("streamed, accounting", streamed, on),
        ("streamed, no-op handler", streamed, noop),
    ]
    for name, mode, side in cases:
        ratio, without, with_ = asyncio.run(
            measure(mode, off, side, runs=args.runs, rounds=args.rounds)
        )
        print(
            f"chat {name:24}: {without:7.1f} µs CPU/run without, {with_:7.1f} µs with: "
            f"{ratio:.3f}x ({(ratio - 1) * 100:+.1f}%)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
