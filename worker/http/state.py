"""What the handlers need, passed in through the aiohttp app (no module-level singletons)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from worker.agents.registry import AgentTypeRegistry
from worker.agents.store import AgentStore
from worker.agents.thread_runs import OnThread, Resume
from worker.broker.connection import Broker
from worker.config import Settings
from worker.errors import BadRequest, Unavailable
from worker.gojson import dumps
from worker.http.limiter import InvocationLimiter
from worker.jobs.service import Jobs
from worker.resilience import Resilience
from worker.streaming.hub import StreamHub
from worker.threads import ThreadStore, check_thread_id


@dataclass(slots=True)
class Services:
    """The worker's parts, as the HTTP door sees them."""

    settings: Settings
    registry: AgentTypeRegistry
    store: AgentStore
    broker: Broker
    limiter: InvocationLimiter
    jobs: Jobs | None = None
    streams: StreamHub | None = None
    threads: ThreadStore | None = None
    resilience: Resilience = field(default_factory=Resilience)
    draining: bool = False

    def thread_store(self) -> ThreadStore:
        """The pool's threads (503 when this worker keeps none)."""
        if self.threads is None:
            raise Unavailable("this worker keeps no conversation threads")
        return self.threads

    def on_thread(self, thread_id: str, *, resume: Resume | None = None) -> OnThread:
        """How an HTTP run goes on ``thread_id`` (400 ``invalid_thread_id`` for a bad id). HTTP
        never waits for a busy thread: 409 ``thread_busy`` at once."""
        return OnThread(
            threads=self.thread_store(), thread_id=check_thread_id(thread_id), resume=resume
        )

    def maybe_on_thread(self, thread_id: str | None) -> OnThread | None:
        """``on_thread`` when a thread is named, else None (a run on no thread)."""
        return None if thread_id is None else self.on_thread(thread_id)

    def time_limit(self, requested: float | None) -> float:
        """A run's deadline in seconds: the caller's, else ``WORKER_INVOKE_TIMEOUT``, never past
        ``WORKER_MAX_INVOKE_TIMEOUT`` (400 for a deadline that is not positive)."""
        if requested is not None and requested <= 0:
            raise BadRequest("timeout must be positive", code="validation_error")
        return min(requested or self.settings.invoke_timeout, self.settings.max_invoke_timeout)


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    """The ``Services`` of the app serving ``request``."""
    return request.app[SERVICES]


def json_response(
    model: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Serialise a pydantic model (or plain data) with orjson."""
    data = model.model_dump(mode="json") if hasattr(model, "model_dump") else model
    return web.Response(
        status=status, body=dumps(data), content_type="application/json", headers=headers
    )
