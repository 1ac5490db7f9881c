"""A short mixed load through real workers, for the live Prometheus test: in a few seconds,
everything a dashboard panel counts after minutes of real traffic.

A round drives every door and every condition a panel shows, healthy or not:

- synchronous invokes of ``chat`` (the fake model) on each worker;
- the ``agent`` type on the ``openai`` provider (the fake OpenAI server, which reports usage,
  its model priced by the workers' ``WORKER_PRICES_FILE``): one invoke that calls a tool, one
  run streamed over SSE (time to first token, the gaps between tokens), and one run of an agent
  whose ``limits`` it passes at once (a budget stop, 422);
- a ``chat`` run over the WebSocket;
- jobs over NATS with signed callbacks, one of them pushing its frames to a ``stream_url``
  where nothing listens (its frames are dropped, ``receiver_gone``), and one malformed message
  (a dead letter);
- a provider outage: a ``chat`` agent whose ``openai`` provider answers 500, so its breaker
  opens and its fallback answers;
- a request body over the limit (a rejection).
"""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from nats.aio.client import Client

from tests.fakes.openai_server import FakeOpenAI
from tests.http.helpers import call
from tests.jobs.conftest import JOB_ENV, go_task
from tests.jobs.receiver import Receiver
from tests.resilience.conftest import openai_spec, provider_name
from tests.streaming.helpers import sse_frames
from worker.testing import WorkerProcess, free_port

TOOL_CALL = {"tool_calls": [{"name": "calculator", "args": {"expression": "6 * 7"}}]}
MALFORMED_JOB = b'{"id": "x", "type": '
# Over WORKER_MAX_BODY_BYTES (1 MiB by default): answered 413 before the body is read.
OVERSIZED = b'{"input": "' + b"x" * (1 << 20) + b'"}'
# The fake OpenAI server's model (tests.resilience.conftest.openai_spec), priced high enough that
# a run of a few tokens costs cents, inside agentos_run_cost_usd's buckets.
PRICES = """
[models."gpt-test"]
input = 1000
output = 2000
"""


def pool_env(workdir: Path) -> dict[str, str]:
    """Worker settings for the load: job streams of this test's own on the shared nats-server,
    callbacks and pushes allowed to loopback, a push client that gives up within a second
    (so the push to nowhere drops its frames during the test), and a price table (written in
    ``workdir``) for the fake OpenAI server's model."""
    tag = uuid.uuid4().hex[:8]
    prices = workdir / "prices.toml"
    prices.write_text(PRICES, encoding="utf-8")
    return {
        "WORKER_PRICES_FILE": str(prices),
        **JOB_ENV,
        "WORKER_TASKS_STREAM": f"TASKS_{tag.upper()}",
        "WORKER_TASKS_SUBJECT": f"agent.execute.p{tag}",
        "WORKER_TASKS_CONSUMER": f"workers-{tag}",
        "WORKER_TASKS_BUCKET": f"tasks_{tag}",
        "WORKER_CALLBACK_STREAM": f"CALLBACKS_{tag.upper()}",
        "WORKER_CALLBACK_SUBJECT": f"agentos.callbacks.p{tag}",
        "WORKER_DLQ_STREAM": f"DLQ_{tag.upper()}",
        "WORKER_DLQ_SUBJECT": f"test.dlq.p{tag}",
        "WORKER_PUSH_GIVE_UP": "1s",
        "WORKER_PUSH_MAX_BACKOFF": "200ms",
    }


@dataclass
class MixedLoad:
    """The load's clients and fakes; ``prepare()`` creates its agents, ``round()`` drives it."""

    workers: list[WorkerProcess]
    http: aiohttp.ClientSession
    nc: Client
    subject: str
    receiver: Receiver
    healthy: FakeOpenAI
    down: FakeOpenAI
    agents: dict[str, str] = field(default_factory=dict)

    @property
    def outage_breaker(self) -> str:
        """The name of the breaker the outage opens (its ``name`` label)."""
        return provider_name(self.down)

    async def prepare(self) -> None:
        """Create the agents (on the first worker; the pool shares them) and start the
        outage."""
        self.down.set(mode="status", status=500)
        specs: dict[str, dict[str, Any]] = {
            "chat": {"type": "chat", "config": {"model": {"provider": "fake"}}},
            "agent": {
                "type": "agent",
                "config": {"model": openai_spec(self.healthy), "tools": ["calculator"]},
            },
            "budget": {
                "type": "chat",
                "config": {
                    "model": openai_spec(self.healthy),
                    "limits": {"max_tokens_per_run": 1},
                },
            },
            "outage": {
                "type": "chat",
                "config": {
                    "model": openai_spec(
                        self.down,
                        breaker={"fail_max": 1, "reset_timeout": "5m"},
                        retry={"max_attempts": 2, "initial_backoff": "10ms"},
                    ),
                    "fallbacks": [{"provider": "fake", "responses": ["From the fallback."]}],
                },
            },
        }
        for name, spec in specs.items():
            status, body, _ = await call(
                self.http, "POST", self.workers[0].url + "/v1/agents", json=spec
            )
            assert status == 201, body
            self.agents[name] = body["id"]

    async def round(self) -> None:
        """Every part of the load once, the independent ones side by side."""
        await asyncio.gather(
            self._invokes(),
            self._openai_runs(),
            self._websocket(),
            self._jobs(),
            self._outage(),
            self._rejected(),
        )

    async def _invoke(self, w: WorkerProcess, agent: str) -> dict[str, Any]:
        url = f"{w.url}/v1/agents/{self.agents[agent]}/invoke"
        status, body, _ = await call(self.http, "POST", url, json={"input": "hi"})
        assert status == 200, body
        answer: dict[str, Any] = body
        return answer

    async def _invokes(self) -> None:
        await asyncio.gather(*(self._invoke(w, "chat") for w in self.workers))

    async def _openai_runs(self) -> None:
        # One after the other: the scripted tool call is the fake server's next answer.
        self.healthy.script(TOOL_CALL)
        await self._invoke(self.workers[0], "agent")
        url = f"{self.workers[-1].url}/v1/agents/{self.agents['agent']}/stream"
        async with self.http.post(url, json={"input": "stream"}) as resp:
            assert resp.status == 200, await resp.text()
            frames = await sse_frames(resp)
        assert frames[-1]["status"] == "completed", frames[-1]
        url = f"{self.workers[0].url}/v1/agents/{self.agents['budget']}/invoke"
        status, body, _ = await call(self.http, "POST", url, json={"input": "hi"})
        assert (status, body["error"]["code"]) == (422, "budget_exceeded"), body

    async def _websocket(self) -> None:
        url = f"{self.workers[-1].url}/v1/agents/{self.agents['chat']}/ws"
        async with self.http.ws_connect(url, protocols=("agentos.v1",)) as ws:
            await ws.send_str('{"input": "over the socket"}')
            async for msg in ws:
                frame = orjson.loads(msg.data)
                if frame.get("status") in {"completed", "failed", "cancelled"}:
                    assert frame["status"] == "completed", frame
                    return
        raise AssertionError("the socket closed before the run's final frame")

    async def _jobs(self) -> None:
        nowhere = f"ws://127.0.0.1:{free_port()}/internal/stream"
        tasks = {str(uuid.uuid4()): None, str(uuid.uuid4()): None, str(uuid.uuid4()): nowhere}
        for task_id, stream_url in tasks.items():
            message = go_task(
                task_id,
                self.agents["chat"],
                "a job",
                self.receiver.url(task_id),
                stream_url=stream_url,
            )
            await self.nc.publish(self.subject, message)
        await self.nc.publish(self.subject, MALFORMED_JOB)
        await self.nc.flush()
        delivered = await self.receiver.wait_for(set(tasks), within=20)
        missing = set(tasks) - set(delivered)
        assert not missing, f"no callback for {missing}"

    async def _outage(self) -> None:
        body = await self._invoke(self.workers[0], "outage")
        assert body["metadata"]["degraded"] is True, body

    async def _rejected(self) -> None:
        url = f"{self.workers[-1].url}/v1/agents/{self.agents['chat']}/invoke"
        status, body, _ = await call(
            self.http,
            "POST",
            url,
            data=io.BytesIO(OVERSIZED),
            headers={"Content-Type": "application/json"},
        )
        assert status == 413, body
