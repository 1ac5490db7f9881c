"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from worker.agents.agent_type import BuildContext
from worker.agents.providers import provider_names
from worker.http.auth.scopes import Scope
from worker.http.openapi import Operation
from worker.http.schemas import Health, Readiness
from worker.http.state import Services, json_response, services


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Nothing else is checked, so a NATS outage never gets a
    healthy worker restarted by Kubernetes."""
    return json_response(Health(status="ok", worker_id=services(request).settings.worker_id))


async def readyz(request: web.Request) -> web.Response:
    """Readiness: NATS connected, not draining, and not useless for want of model providers
    (503 otherwise). Agents with a provider whose breaker is open are listed as degraded."""
    svc = services(request)
    degraded, useful = _provider_health(svc)
    checks = {
        "nats_connected": svc.broker.connected,
        "accepting_work": not svc.draining,
        "model_providers": useful,
    }
    ready = all(checks.values())
    return json_response(
        Readiness(
            status="ready" if ready else "not_ready",
            checks=checks,
            worker_id=svc.settings.worker_id,
            degraded=degraded,
            breakers={name: b.state for name, b in svc.resilience.snapshot().items()},
        ),
        status=200 if ready else 503,
    )


def _provider_health(svc: Services) -> tuple[dict[str, list[str]], bool]:
    """Agents whose providers' breakers refuse calls, and whether any agent can still answer.

    A provider outage alone does not make a worker unready: every worker of the pool sees the
    same provider, and agents without models (or with a ``basic`` fallback) still answer. Only
    when every agent has all its providers open is this worker useless.
    """
    down = svc.resilience.unavailable()
    if not down:
        return {}, True
    ctx = BuildContext(openai_base_url=svc.settings.openai_base_url)
    degraded: dict[str, list[str]] = {}
    useful = False
    records = svc.store.list()
    for record in records:
        names = provider_names(record.config, ctx)
        hit = [name for name in names if name in down]
        if hit:
            degraded[record.id] = hit
        useful = useful or len(hit) < len(names) or not names
    return degraded, useful or not records


async def metrics(_: web.Request) -> web.Response:
    """Prometheus text exposition."""
    resp = web.Response(body=generate_latest(REGISTRY))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="GET",
            path="/healthz",
            operation_id="healthz",
            summary="Liveness",
            tag="system",
            responses={200: Health},
            public=True,
        ),
        healthz,
    ),
    (
        Operation(
            method="GET",
            path="/readyz",
            operation_id="readyz",
            summary="Readiness: NATS connected, not draining",
            tag="system",
            responses={200: Readiness, 503: Readiness},
            public=True,
        ),
        readyz,
    ),
    (
        Operation(
            method="GET",
            path="/metrics",
            operation_id="metrics",
            scope=Scope.ADMIN,
            summary="Prometheus metrics",
            tag="system",
            responses={200: None},
            content_types={200: "text/plain"},
        ),
        metrics,
    ),
]
