"""``python -m bench.accounting``: the CPU a ``chat`` run spends on accounting.

The ``chat`` agent on the fake model is run in process through ``runtime.execute`` (its
deadline, run scope and metrics, as the worker's doors run it), in batches, alternately without
and with a ``UsageTracker`` attached (a price and both limits set, so every check runs), plainly
(``ainvoke``: the invoke door and jobs) and streamed token by token (with the streaming doors'
``FrameCallbacks`` attached). What is compared is the process CPU time per run
(``time.process_time``); alternating the batches lets both sides see the same drift of a shared
machine, and each round gives one ratio, with the tracker over without. The rounds' median is
the figure; the goal is below 1.03 (3%).

A third line attaches a handler that does nothing (it hears the same events and ignores them):
what LangChain itself costs a run for having any handler attached (it dispatches every
runnable's start and end to it, and checks it against its streaming-handler protocol before
each model call), which no handler can avoid; the rest is the tracker's own work.

The fake model answers in microseconds, so this is the tracker against the cheapest run there
is; a run through the HTTP door costs the HTTP handling on top, and a real model's run the
network, both of which make the tracker's share smaller still.
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
from worker.agents.accounting import PriceTable, RunLimits, UsageTracker
from worker.agents.agent_type import BuildContext
from worker.agents.registry import AgentTypeRegistry
from worker.agents.store import AgentRecord, ResolvedAgent
from worker.streaming.agent_events import FrameCallbacks

PRICES = PriceTable.model_validate({"models": {"fake": {"input": "0.15", "output": "0.60"}}})
LIMITS = RunLimits(max_tokens_per_run=1_000_000, max_cost_per_run=100.0)
QUESTION = "Hello there, how are you?"
Mode = Callable[[ResolvedAgent, list[BaseCallbackHandler]], Awaitable[Any]]


def chat_agent() -> ResolvedAgent:
    """The ``chat`` agent with its default config (the fake model), as the store builds it."""
    chat = AgentTypeRegistry.discover().get("chat")
    now = datetime.now(UTC)
    record = AgentRecord(
        id="bench-chat", type="chat", name="", config={}, created_at=now, updated_at=now
    )
    runnable = chat.build(chat.parse_config({}), BuildContext())
    return ResolvedAgent(record=record, agent_type=chat, runnable=runnable)


async def plain(agent: ResolvedAgent, callbacks: list[BaseCallbackHandler]) -> Any:
    """One run as the invoke door and jobs run it."""

    async def work(config: RunnableConfig) -> Any:
        return await agent.runnable.ainvoke(QUESTION, {**config, "callbacks": callbacks})

    return await runtime.execute(agent, work, time_limit=30)


async def streamed(agent: ResolvedAgent, callbacks: list[BaseCallbackHandler]) -> Any:
    """One run as the streaming doors run it: every token a draft frame."""
    frames = FrameCallbacks(lambda _: None)
    return await plain(agent, [*callbacks, frames])


class NoOp(BaseCallbackHandler):
    """Hears what the tracker hears, and does nothing."""

    run_inline = True
    ignore_chain = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""

    def to_json(self) -> dict[str, Any]:
        """Nothing."""
        return {}


def tracker() -> UsageTracker:
    """The tracker as a door would attach it."""
    return UsageTracker(agent_type="chat", prices=PRICES, limits=LIMITS)


Handler = Callable[[], UsageTracker | NoOp]


async def batch(agent: ResolvedAgent, mode: Mode, runs: int, handler: Handler | None) -> float:
    """CPU seconds per run, over ``runs`` runs, with a new ``handler()`` each (or none)."""
    start = time.process_time()
    for _ in range(runs):
        if handler is None:
            await mode(agent, [])
            continue
        attached = handler()
        await mode(agent, [attached])
        attached.close()
        attached.to_json()
    return (time.process_time() - start) / runs


async def measure(
    mode: Mode, handler: Handler, *, runs: int, rounds: int
) -> tuple[float, float, float]:
    """The median ratio (with ``handler`` over without) and the median µs per run without
    and with."""
    agent = chat_agent()
    await batch(agent, mode, runs, None)  # warm up both paths
    await batch(agent, mode, runs, handler)
    ratios, off, on = [], [], []
    for i in range(rounds):
        order = (None, handler) if i % 2 == 0 else (handler, None)
        seconds = {h is None: await batch(agent, mode, runs, h) for h in order}
        off.append(seconds[True])
        on.append(seconds[False])
        ratios.append(seconds[False] / seconds[True])
    return statistics.median(ratios), statistics.median(off) * 1e6, statistics.median(on) * 1e6


def main(argv: list[str] | None = None) -> int:
    """Print, per way of running, the µs of CPU per run without and with the tracker, and
    their ratio."""
    p = argparse.ArgumentParser(prog="python -m bench.accounting", description=__doc__)
    p.add_argument("--runs", type=int, default=200, help="runs per batch (default 200)")
    p.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    args = p.parse_args(argv)
    cases: list[tuple[str, Mode, Handler]] = [
        ("plain, tracker", plain, tracker),
        ("plain, no-op handler", plain, NoOp),
        ("streamed, tracker", streamed, tracker),
        ("streamed, no-op handler", streamed, NoOp),
    ]
    for name, mode, handler in cases:
        ratio, off, on = asyncio.run(measure(mode, handler, runs=args.runs, rounds=args.rounds))
        print(
            f"chat {name:24}: {off:7.1f} µs CPU/run without, {on:7.1f} µs with: "
            f"{ratio:.3f}x ({(ratio - 1) * 100:+.1f}%)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
