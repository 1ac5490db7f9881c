"""The fake OpenAI provider in processes of its own, at a real provider's pace.

``python -m bench.agents.provider --port N`` serves ``tests.fakes.openai_server`` on uvloop
(cheaper per streamed token than asyncio's loop, so the provider is not what limits a run) and
forgets the requests it saw (the test server keeps each one for assertions; a benchmark's
hundreds of thousands would only grow its memory).

``Providers`` starts several such processes and steers them all: every turn of the ``agent``
type calls the calculator once (``reply_after_tools``) and then streams ``tokens`` stamped
tokens (``stamped_tokens``), one each ``1/rate`` seconds after a first-token delay.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.streaming.procs import cpu_seconds, placed, run
from tests.fakes.openai_server import FakeOpenAI
from worker.testing import free_port, wait_for_port

TOOL_CALL = {"name": "calculator", "args": {"expression": "6*7"}}


@dataclass(frozen=True)
class Pace:
    """How the provider answers each turn."""

    rate: float
    """Tokens per second of an answer (0: as fast as it can)."""
    tokens: int
    """Tokens per answer."""
    first_token: float
    """Seconds before each answer starts (the tool call's and the reply's)."""

    def behaviour(self) -> dict[str, Any]:
        return {
            "tool_calls": [TOOL_CALL],
            "reply_after_tools": True,
            "stamped_tokens": self.tokens,
            "token_delay": 1 / self.rate if self.rate > 0 else 0.0,
            "delay": self.first_token,
        }

    def turn_seconds(self) -> float:
        """A turn's length at this pace (two model calls)."""
        per_token = 1 / self.rate if self.rate > 0 else 0.0
        return 2 * self.first_token + self.tokens * per_token


QUICK = Pace(rate=0, tokens=20, first_token=0)
"""The warm-up's pace: short answers at once."""


class _Forgetful(list[Any]):
    """Stands for the server's list of requests seen: keeps none of them."""

    def append(self, _: Any) -> None:
        pass


class Providers:
    """``count`` provider processes on loopback, started on ``cpus``."""

    def __init__(self, count: int, cpus: set[int] | None) -> None:
        self.ports = [free_port() for _ in range(count)]
        with placed(cpus):
            self.procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "bench.agents.provider", "--port", str(port)],
                    stdout=subprocess.DEVNULL,
                )
                for port in self.ports
            ]
        for port in self.ports:
            wait_for_port(port)

    @property
    def base_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/v1" for port in self.ports]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu_seconds(self) -> float:
        """CPU time all provider processes used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)

    async def pace(self, pace: Pace) -> None:
        """Answer every turn at ``pace`` from now on."""
        await self.pace_raw(pace.behaviour())

    async def pace_raw(self, behaviour: dict[str, Any]) -> None:
        """Answer every request as ``behaviour`` (the fake server's) says from now on."""
        async with aiohttp.ClientSession() as http:
            for url in self.base_urls:
                fake = url.removesuffix("/v1") + "/_fake/behaviour"
                async with http.post(fake, json=behaviour) as resp:
                    resp.raise_for_status()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()


async def _serve(port: int) -> None:
    # A conversation cut at the window's end leaves its stream writing to a closed socket;
    # aiohttp would log each one as an error.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    server = FakeOpenAI(port=port)
    server.requests = _Forgetful()
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    with contextlib.suppress(KeyboardInterrupt):
        run(_serve(parser.parse_args().port))
