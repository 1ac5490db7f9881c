"""A real HTTP callback receiver for tests: records every delivery, fails on command, and
verifies Standard Webhooks signatures with the ``standardwebhooks`` library."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from worker.testing import free_port

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - the tests' own signing key


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Collects callbacks at ``/cb/{task_id}``; ``status`` is what it answers, once the
    statuses in ``script`` have been answered, one a request."""

    port: int = field(default_factory=free_port)
    status: int = 200
    script: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: int = 0
    attempted_at: list[float] = field(default_factory=list)
    """When each request came in (``time.monotonic()``), answered 2xx or not."""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, task_id: str) -> str:
        return f"{self.base}/cb/{task_id}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        self.attempted_at.append(time.monotonic())
        body = await request.read()
        status = self.script.pop(0) if self.script else self.status
        if status // 100 == 2:
            self.deliveries.append(Delivery(dict(request.headers), body, time.monotonic()))
            self._changed.set()
        return web.Response(status=status, headers=self.headers)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/cb/{task_id}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def by_task(self) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {}
        for d in self.deliveries:
            out.setdefault(d.json["task_id"], []).append(d)
        return out

    async def wait_for(self, task_ids: set[str], within: float = 60.0) -> dict[str, list[Delivery]]:
        """Until every task id has a delivery (or ``within`` seconds passed)."""
        deadline = time.monotonic() + within
        while True:
            got = self.by_task()
            if task_ids <= set(got) or time.monotonic() > deadline:
                return got
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.05, deadline - time.monotonic()))

    def verify(self, delivery: Delivery, secret: str = SECRET) -> Any:
        """Verify the signature as a receiver would (raises on a bad one)."""
        return Webhook(secret).verify(delivery.body, delivery.headers)
