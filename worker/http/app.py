"""The aiohttp application of the HTTP door: routes, middleware, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from worker.http import agents, system
from worker.http.middleware import build_middleware
from worker.http.openapi import Operation, build_openapi
from worker.http.schemas import (
    Agent,
    AgentConfig,
    AgentList,
    AgentPatch,
    AgentTypeList,
    Health,
    InvokeRequest,
    InvokeResponse,
    Readiness,
)
from worker.http.state import SERVICES, Services

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROUTES: list[tuple[Operation, Handler]] = [
    (
        Operation(
            method="POST",
            path="/create-agent",
            operation_id="createAgentSeed",
            summary="Create an agent (the seed's call; an untagged Go struct works)",
            tag="agents",
            request=AgentConfig,
            responses={201: Agent},
        ),
        agents.create_agent,
    ),
    (
        Operation(
            method="POST",
            path="/v1/agents",
            operation_id="createAgent",
            summary="Create an agent",
            tag="agents",
            request=AgentConfig,
            responses={201: Agent},
        ),
        agents.create_agent,
    ),
    (
        Operation(
            method="GET",
            path="/v1/agents",
            operation_id="listAgents",
            summary="List the pool's agents",
            tag="agents",
            responses={200: AgentList},
        ),
        agents.list_agents,
    ),
    (
        Operation(
            method="GET",
            path="/v1/agents/{agent_id}",
            operation_id="getAgent",
            summary="Get an agent",
            tag="agents",
            responses={200: Agent},
        ),
        agents.get_agent,
    ),
    (
        Operation(
            method="PATCH",
            path="/v1/agents/{agent_id}",
            operation_id="patchAgent",
            summary="Rename an agent or merge-patch its config (RFC 7386)",
            tag="agents",
            request=AgentPatch,
            responses={200: Agent},
        ),
        agents.patch_agent,
    ),
    (
        Operation(
            method="DELETE",
            path="/v1/agents/{agent_id}",
            operation_id="deleteAgent",
            summary="Delete an agent",
            tag="agents",
            responses={204: None},
        ),
        agents.delete_agent,
    ),
    (
        Operation(
            method="POST",
            path="/v1/agents/{agent_id}/invoke",
            operation_id="invokeAgent",
            summary="Run an agent and wait for its output (504 past the deadline)",
            tag="agents",
            request=InvokeRequest,
            responses={200: InvokeResponse},
        ),
        agents.invoke_agent,
    ),
    (
        Operation(
            method="GET",
            path="/v1/agent-types",
            operation_id="listAgentTypes",
            summary="Agent types with the JSON Schemas of their config, input and output",
            tag="agents",
            responses={200: AgentTypeList},
        ),
        agents.list_agent_types,
    ),
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
        system.healthz,
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
        system.readyz,
    ),
    (
        Operation(
            method="GET",
            path="/metrics",
            operation_id="metrics",
            summary="Prometheus metrics",
            tag="system",
            responses={200: None},
            content_types={200: "text/plain"},
        ),
        system.metrics,
    ),
]


def openapi_document() -> dict[str, object]:
    """The OpenAPI document of every route, including ``/openapi.json`` itself."""
    ops = [op for op, _ in ROUTES]
    ops.append(
        Operation(
            method="GET",
            path="/openapi.json",
            operation_id="openapi",
            summary="This document",
            tag="system",
            responses={200: None},
        )
    )
    return build_openapi(ops, title="AgentOS worker")


def build_app(services: Services) -> web.Application:
    """The HTTP application for ``services``.

    Request spans come from OpenTelemetry's aiohttp server instrumentation, which
    ``worker.telemetry.tracing.install`` turns on; it wraps ``web.Application`` and puts its
    middleware first, outside ours.
    """
    settings = services.settings
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            build_middleware(
                service=settings.service_name,
                tokens=settings.token_values(),
                max_body_bytes=settings.max_body_bytes,
                access_log=settings.access_log,
            ),
        ],
    )
    app[SERVICES] = services
    for op, handler in ROUTES:
        app.router.add_route(op.method, op.path, handler)
    spec = orjson.dumps(openapi_document())

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)
    return app
