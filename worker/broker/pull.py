"""A durable JetStream pull consumer worked by a loop that holds at most ``limit`` messages.

The jobs door and the callback outbox take their work this way: fetch what there is room for,
hand each message to a task of its own, fetch again. nats-py offers the single pull (``fetch``)
but no bounded consume loop around it, so the loop is ours, once, for both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError
from prometheus_client import Gauge
from tenacity import wait_incrementing

from worker.broker.backoff import delay_after
from worker.telemetry.logs import get_logger

log = get_logger(__name__)

FETCH_WAIT = 1.0
"""How long one pull waits on the server for messages before it is asked again."""
STALLED_AFTER = 5
"""Failed fetches in a row after which the subscription is bound anew."""
_FAILED_FETCH_WAIT = wait_incrementing(start=0.2, increment=0.2, max=2.0)


class PullConsumer:
    """Fetches from a durable pull consumer and runs ``handle`` on each message in a task of
    its own, never more than ``limit`` at once.

    ``handle`` acks or naks its message itself. ``on_stall`` runs before the subscription is
    bound anew after ``STALLED_AFTER`` failed fetches in a row (after a server restart a pull
    subscription can stall for good); the jobs door re-creates its streams and consumers there.
    """

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str,
        durable: str,
        handle: Callable[[Msg], Coroutine[Any, Any, None]],
        limit: int,
        batch: int,
        gauge: Gauge | None = None,
        on_stall: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._js = js
        self._stream = stream
        self._durable = durable
        self._handle = handle
        self._limit = limit
        self._batch = batch
        self._gauge = gauge
        self._on_stall = on_stall
        self._handling: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """Messages being handled now."""
        return len(self._handling)

    async def start(self) -> None:
        """Bind to the consumer and start fetching."""
        sub = await self._bind()
        self._loop = asyncio.create_task(self._fetch_loop(sub), name=f"fetch:{self._durable}")

    async def stop(self) -> None:
        """Stop fetching; handlers under way go on (see ``wait``)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def wait(self, within: float) -> set[asyncio.Task[None]]:
        """Wait up to ``within`` seconds for the handlers under way; those still running."""
        if not self._handling:
            return set()
        _, pending = await asyncio.wait(set(self._handling), timeout=within)
        return pending

    async def _bind(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe_bind(durable=self._durable, stream=self._stream)

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription) -> None:
        failures = 0
        waiting = self._batch  # messages the consumer holds, as last reported
        while True:
            free = self._limit - len(self._handling)
            if free <= 0:
                await asyncio.wait(set(self._handling), return_when=asyncio.FIRST_COMPLETED)
                continue
            # Ask for no more than are waiting. When none are, nats-py's fetch turns into a
            # lingering pull that, once the first message comes, holds it until the whole batch
            # has arrived or the fetch times out: at a trickle that is up to FETCH_WAIT of
            # latency per message. A batch of one returns with its message.
            want = min(free, self._batch, max(1, waiting))
            try:
                msgs = await sub.fetch(want, timeout=FETCH_WAIT)
            except (FetchTimeoutError, TimeoutError):
                waiting = 0
                continue
            except Exception as exc:  # a reconnecting client, a restarted server
                failures += 1
                log.warning(
                    "fetch failed", consumer=self._durable, error=repr(exc), failures=failures
                )
                await asyncio.sleep(delay_after(_FAILED_FETCH_WAIT, failures))
                if failures % STALLED_AFTER == 0:
                    sub = await self._bind_anew(sub)
                continue
            failures = 0
            waiting = (msgs[-1].metadata.num_pending or 0) if msgs else 0
            for msg in msgs:
                task = asyncio.create_task(self._handle(msg))
                self._handling.add(task)
                task.add_done_callback(self._handled)
            self._count()

    async def _bind_anew(
        self, sub: JetStreamContext.PullSubscription
    ) -> JetStreamContext.PullSubscription:
        # Best effort at every step: the server may still be away; the loop tries again later.
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if self._on_stall is not None:
            with contextlib.suppress(Exception):
                await self._on_stall()
        with contextlib.suppress(Exception):
            return await self._bind()
        return sub

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._handling.discard(task)
        self._count()
        if not task.cancelled() and task.exception() is not None:
            log.error("handler crashed", consumer=self._durable, error=repr(task.exception()))

    def _count(self) -> None:
        if self._gauge is not None:
            self._gauge.set(len(self._handling))
