"""The floor: the ``agent`` type's graph driven directly, ``python -m bench.agents.floor``.

What the worker runs for each turn, and nothing else: ``worker.agents.types.agent.build_graph``
with the calculator tool and the ``openai`` provider (``langchain-openai`` against the same fake
provider processes), on the same checkpointer (``worker.threads.KVCheckpointer`` on a threads
bucket of the same nats-server), one thread per conversation. Tokens come out of the run
through a callback handler of the kind the worker attaches (``on_llm_new_token``, with the
streaming-handler methods so the model streams under ``ainvoke``), and are timed right there:
no HTTP door, no frames, no lease. The garbage collector is tuned as the worker tunes it at
start (``worker/server.py``), so the comparison is of the work, not of GC settings.

Same protocol as ``bench.agents.clients``: warm up, print ``warm``, read the schedule, run,
print the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import nats
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig

from bench.agents.lag import Recorder, Schedule
from bench.streaming.procs import run
from worker.agents.agent_type import BuildContext
from worker.agents.types.agent import AgentConfig, build_graph
from worker.threads import KVCheckpointer
from worker.threads.bucket import ThreadsBucket

BUCKET = "bench_floor_threads"
GC_YOUNG_THRESHOLD = 20_000  # the worker's (worker/server.py)


class TokenTimes(BaseCallbackHandler):
    """Times every streamed token as it comes out of the run."""

    run_inline = True
    raise_error = True

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def on_llm_new_token(
        self, token: str | list[str | dict[str, Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        if isinstance(token, str) and token:
            self.rec.tokens(token)

    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return output

    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        return output


def agent_spec(base_url: str) -> dict[str, Any]:
    """The ``agent`` config of both sides: the worker's agents are created with it."""
    return {
        "tools": ["calculator"],
        "max_iterations": 4,
        "model": {
            "provider": "openai",
            "model": "bench",
            "base_url": base_url,
            "api_key": "sk-bench",
            "timeout": "120s",
        },
    }


class Floor:
    """Conversations on the bare graphs, one graph per provider process."""

    def __init__(self, graphs: list[Runnable[Any, Any]], *, threads: bool, turn_timeout: float):
        self.graphs = graphs
        self.threads = threads
        self.turn_timeout = turn_timeout
        self.rec = Recorder()
        self.handler = TokenTimes(self.rec)

    async def turn(self, index: int, thread_id: str, number: int) -> None:
        config: RunnableConfig = {"callbacks": [self.handler]}
        if self.threads:
            config["configurable"] = {"thread_id": thread_id}
        graph = self.graphs[index % len(self.graphs)]
        message = HumanMessage(f"What is 6*7? (turn {number})")
        try:
            async with asyncio.timeout(self.turn_timeout):
                await graph.ainvoke({"messages": [message]}, config)
        except Exception as exc:  # a failed turn is counted, the conversation goes on
            self.rec.error(f"{type(exc).__name__}: {exc}")
        else:
            self.rec.turn_done()

    async def conversation(self, index: int, count: int, schedule: Schedule) -> None:
        thread_id = f"bench-{uuid.uuid4().hex}"
        await asyncio.sleep(max(0.0, schedule.start_of(index, count) - time.time()))
        number = 0
        while time.time() < schedule.window_end:
            number += 1
            await self.turn(index, thread_id, number)

    async def main(self, count: int, warmup: int) -> None:
        await asyncio.gather(
            *(self.turn(i, f"bench-warm-{uuid.uuid4().hex}", 1) for i in range(warmup))
        )
        print("warm", flush=True)
        schedule = await asyncio.to_thread(Schedule.read)
        self.rec.measure(schedule)
        tasks = [asyncio.create_task(self.conversation(i, count, schedule)) for i in range(count)]
        await asyncio.sleep(max(0.0, schedule.window_end - time.time()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(self.rec.summary().dump(), flush=True)


async def main(args: argparse.Namespace) -> None:
    nc = await nats.connect(args.nats)
    checkpointer = None
    if args.threads:
        bucket = await ThreadsBucket.open(
            nc=nc, js=nc.jetstream(), name=BUCKET, retention=3600.0, replicas=1
        )
        checkpointer = KVCheckpointer(bucket)
    ctx = BuildContext()
    graphs: list[Runnable[Any, Any]] = [
        build_graph(AgentConfig.model_validate(agent_spec(url)), ctx, checkpointer=checkpointer)
        for url in args.providers.split(",")
    ]
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    try:
        await Floor(graphs, threads=args.threads, turn_timeout=args.turn_timeout).main(
            args.conversations, args.warmup
        )
    finally:
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nats", required=True, help="the nats-server's URL")
    parser.add_argument("--providers", required=True, help="provider base URLs, comma-separated")
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--threads", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--turn-timeout", type=float, default=120.0)
    run(main(parser.parse_args()))
