"""The worker's conversations: ``python -m bench.agents.clients``, the load generator process.

Each conversation is one thread (``thread_id``) and runs turns one after the other: a
``POST /v1/agents/{id}/stream`` (SSE) with ``{"input", "thread_id"}``; its ``processing``
frames carry the tokens (stamped by the provider), a ``completed`` frame ends the turn.
Conversations spread over the agents given (one per provider process).

Protocol with ``bench.agents``: warm up (``--warmup`` conversations of one turn each), print
``warm``, read the ``Schedule`` from stdin, run the conversations to the window's end, print the
``Summary`` as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
import uuid

import aiohttp
import orjson

from bench.agents.lag import Recorder, Schedule
from bench.streaming.procs import run

FAILED = {"failed", "cancelled", "error"}


class Conversations:
    """Conversations with the worker's agents over SSE."""

    def __init__(self, url: str, agents: list[str], *, threads: bool, turn_timeout: float):
        self.url = url
        self.agents = agents
        self.threads = threads
        self.turn_timeout = turn_timeout
        self.rec = Recorder()
        self.http: aiohttp.ClientSession | None = None

    async def turn(self, index: int, thread_id: str, number: int) -> None:
        """One turn: the question, then the answer's frames to the final one."""
        assert self.http is not None
        body: dict[str, object] = {"input": f"What is 6*7? (turn {number})", "timeout": "120s"}
        if self.threads:
            body["thread_id"] = thread_id
        agent = self.agents[index % len(self.agents)]
        url = f"{self.url}/v1/agents/{agent}/stream"
        try:
            async with asyncio.timeout(self.turn_timeout), self.http.post(url, json=body) as resp:
                if resp.status != 200:
                    self.rec.error(f"HTTP {resp.status}: {(await resp.text())[:200]}")
                    return
                event = ""
                async for line in resp.content:
                    if line.startswith(b"event:"):
                        event = line[6:].strip().decode()
                    elif line.startswith(b"data:"):
                        if event == "processing":
                            partial = orjson.loads(line[5:]).get("partial_result")
                            if isinstance(partial, str):
                                self.rec.tokens(partial)
                        elif event == "completed":
                            self.rec.turn_done()
                            return
                        elif event in FAILED:
                            self.rec.error(f"{event}: {line[5:300].decode(errors='replace')}")
                            return
                self.rec.error("stream ended without a final frame")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.rec.error(f"{type(exc).__name__}: {exc}")

    async def conversation(self, index: int, count: int, schedule: Schedule) -> None:
        thread_id = f"bench-{uuid.uuid4().hex}"
        await asyncio.sleep(max(0.0, schedule.start_of(index, count) - time.time()))
        number = 0
        while time.time() < schedule.window_end:
            number += 1
            await self.turn(index, thread_id, number)

    async def warm_up(self, count: int) -> None:
        """A turn of ``count`` conversations (the worker builds its agents, opens its
        connections to the provider)."""
        await asyncio.gather(
            *(self.turn(i, f"bench-warm-{uuid.uuid4().hex}", 1) for i in range(count))
        )

    async def main(self, count: int, warmup: int) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as self.http:
            await self.warm_up(warmup)
            print("warm", flush=True)
            schedule = await asyncio.to_thread(Schedule.read)
            self.rec.measure(schedule)
            tasks = [
                asyncio.create_task(self.conversation(i, count, schedule)) for i in range(count)
            ]
            await asyncio.sleep(max(0.0, schedule.window_end - time.time()))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        print(self.rec.summary().dump(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="the worker's base URL")
    parser.add_argument("--agents", required=True, help="agent ids, comma-separated")
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--threads", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--turn-timeout", type=float, default=120.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conversations = Conversations(
        args.url, args.agents.split(","), threads=args.threads, turn_timeout=args.turn_timeout
    )
    run(conversations.main(args.conversations, args.warmup))
