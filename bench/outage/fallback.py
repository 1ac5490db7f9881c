"""Invocations of an agent whose primary provider is down: its breaker open, each run goes to
the fallback provider without a request to the primary.

Latency of those invocations against an agent that calls the fallback provider directly (the
floor: what skipping the primary costs is the difference). tests/resilience/test_fallbacks.py
asserts that the primary gets no request meanwhile; how fast the skip is is measured here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.fakes.openai_server import FakeOpenAI


@dataclass(frozen=True)
class Fallback:
    """Latencies (seconds, sorted) through the chain and direct, and requests that reached the
    primary while they were measured."""

    chain: list[float]
    direct: list[float]
    reached_primary: int


def provider(server: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    """An ``openai`` provider spec for ``server``."""
    return {
        "provider": "openai",
        "model": "gpt-test",
        "base_url": server.base_url,
        "api_key": "sk-test",
        "timeout": "2s",
        **extra,
    }


async def _agent(http: aiohttp.ClientSession, worker_url: str, config: dict[str, Any]) -> str:
    async with http.post(
        f"{worker_url}/v1/agents", json={"type": "chat", "config": config}
    ) as resp:
        agent = await resp.json()
    return f"{worker_url}/v1/agents/{agent['id']}/invoke"


async def _answered(http: aiohttp.ClientSession, url: str, n: int, conc: int) -> list[float]:
    todo = iter(range(n))
    out: list[float] = []

    async def client() -> None:
        for _ in todo:
            start = time.perf_counter()
            async with http.post(url, json={"input": "hello"}) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"unexpected {resp.status}")
            out.append(time.perf_counter() - start)

    async with asyncio.timeout(120):
        await asyncio.gather(*(client() for _ in range(conc)))
    return sorted(out)


async def measure_fallback(
    http: aiohttp.ClientSession, worker_url: str, primary: FakeOpenAI, n: int, conc: int
) -> Fallback:
    """``primary`` answers errors; a second fake provider is the fallback."""
    async with FakeOpenAI() as secondary:
        breaker = {"fail_max": 3, "reset_timeout": "10m"}
        chain = await _agent(
            http,
            worker_url,
            {"model": provider(primary, breaker=breaker), "fallbacks": [provider(secondary)]},
        )
        direct = await _agent(http, worker_url, {"model": provider(secondary)})
        await _answered(http, chain, 3, 1)  # the primary fails three times: its breaker opens
        await _answered(http, chain, 200, conc)  # warm-up
        await _answered(http, direct, 200, conc)
        before = primary.count
        through_chain = await _answered(http, chain, n, conc)
        reached = primary.count - before
        straight = await _answered(http, direct, n, conc)
    return Fallback(through_chain, straight, reached)
