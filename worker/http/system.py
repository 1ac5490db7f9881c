"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from worker.http.schemas import Health, Readiness
from worker.http.state import json_response, services


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Nothing else is checked, so a NATS outage never gets a
    healthy worker restarted by Kubernetes."""
    return json_response(Health(status="ok", worker_id=services(request).settings.worker_id))


async def readyz(request: web.Request) -> web.Response:
    """Readiness: NATS connected and not draining (503 otherwise)."""
    svc = services(request)
    checks = {"nats_connected": svc.broker.connected, "accepting_work": not svc.draining}
    ready = all(checks.values())
    return json_response(
        Readiness(
            status="ready" if ready else "not_ready",
            checks=checks,
            worker_id=svc.settings.worker_id,
        ),
        status=200 if ready else 503,
    )


async def metrics(_: web.Request) -> web.Response:
    """Prometheus text exposition."""
    resp = web.Response(body=generate_latest(REGISTRY))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
