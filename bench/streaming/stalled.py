"""The ``stalled`` mode of ``python -m bench.streaming``: the pace of a reader that keeps reading
while others of the same run stop reading.

One run of a fake ``chat`` agent streams ``2 * words + 1`` frames (a token a millisecond) to
``stalled`` readers that read nothing (a tiny receive buffer, one-message queue) and to one
reader that reads everything; the lag of each of its frames is its receive time minus the
frame's ``ts``. tests/streaming/test_slow_reader.py asserts what this reader gets (every frame,
in order) and that the worker's memory stays bounded; how fast it gets them is measured here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import orjson
import websockets

from tests.streaming.helpers import stalled_reader


@dataclass(frozen=True)
class StalledResult:
    """The reading reader's frames and their lags (seconds, sorted), and how the stalled
    readers ended (close codes)."""

    words: int
    stalled: int
    frames: int
    lags: list[float]
    closes: list[int | None]

    def pct(self, p: float) -> float:
        """The ``p`` quantile of the lags, in ms."""
        if not self.lags:
            return float("nan")
        return self.lags[min(len(self.lags) - 1, int(len(self.lags) * p))] * 1000

    def line(self) -> str:
        """One line for the report."""
        return (
            f"stalled: one reader beside {self.stalled} stalled ones, a run of {self.frames} "
            f"frames (a token a millisecond): its lag p50 {self.pct(0.5):.1f} ms, "
            f"p99 {self.pct(0.99):.1f} ms, max {self.pct(1.0):.1f} ms; "
            f"stalled readers' close codes {self.closes}"
        )


async def run_stalled_phase(worker_url: str, *, words: int, stalled: int) -> StalledResult:
    """Create the agent, start the run, attach the readers, read until the final frame."""
    reply = " ".join(f"{i:06d}" + "w" * 54 for i in range(words))
    model = {"provider": "fake", "responses": [reply], "token_delay": "1ms"}
    async with aiohttp.ClientSession(trust_env=False) as http:
        agent = {"type": "chat", "config": {"model": model}}
        async with http.post(f"{worker_url}/v1/agents", json=agent) as resp:
            agent_id = (await resp.json())["id"]
        lags: list[float] = []
        async with http.post(
            f"{worker_url}/v1/agents/{agent_id}/stream", json={"input": "go"}
        ) as run:
            task_id = run.headers["X-Task-ID"]
            events = f"{worker_url}/v1/tasks/{task_id}/events".replace("http", "ws", 1)
            quiet = [await stalled_reader(events) for _ in range(stalled)]

            async def read() -> None:
                async with http.ws_connect(events, max_msg_size=0) as ws:
                    async for msg in ws:
                        ts = orjson.loads(msg.data)["ts"]
                        lags.append(time.time() - datetime.fromisoformat(ts).timestamp())

            reading = asyncio.create_task(read())
            await run.read()
            await asyncio.wait_for(reading, 60)
        closes = []
        for ws in quiet:
            # Drain what each was sent (coalesced frames, or a 4008 close), bounded in time.
            with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                async with asyncio.timeout(20):
                    async for _ in ws:
                        pass
            closes.append(ws.close_code)
    return StalledResult(words, stalled, len(lags), sorted(lags), closes)
