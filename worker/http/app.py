"""The aiohttp application of the HTTP door: routes, middleware, and the OpenAPI document."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from worker.asyncapi import build_asyncapi
from worker.http import agents, chat, streams, system, tasks, threads
from worker.http.auth import BearerAuth
from worker.http.middleware import build_middleware
from worker.http.openapi import Operation, build_openapi
from worker.http.state import SERVICES, Services

ROUTES: list[tuple[Operation, Handler]] = [
    *agents.ROUTES,
    *tasks.ROUTES,
    *streams.ROUTES,
    *chat.ROUTES,
    *threads.ROUTES,
    *system.ROUTES,
]
DOCUMENTS = [
    Operation(
        method="GET",
        path="/openapi.json",
        operation_id="openapi",
        summary="This document",
        tag="system",
        responses={200: None},
    ),
    Operation(
        method="GET",
        path="/asyncapi.json",
        operation_id="asyncapi",
        summary="The NATS and WebSocket side of the contract (AsyncAPI 3.0)",
        tag="system",
        responses={200: None},
    ),
]
"""The two documents: any valid token may read them (they need no scope)."""
OPERATIONS = [*(op for op, _ in ROUTES), *DOCUMENTS]
"""Every operation the app serves: the route table."""
OPEN_ROUTES = frozenset(op.path for op in OPERATIONS if op.public)
"""Routes served without a token: the operations the OpenAPI document marks public."""
SCOPES = {(op.method, op.path): op.scope for op in OPERATIONS if not op.public}
"""The scope each other route needs, by method and route template."""


def openapi_document() -> dict[str, object]:
    """The OpenAPI document of every route, including ``/openapi.json`` itself."""
    return build_openapi(OPERATIONS, title="AgentOS worker")


def build_app(services: Services, *, auth: BearerAuth | None = None) -> web.Application:
    """The HTTP application for ``services``; its one middleware also opens each request's
    span (``worker.http.spans``) and checks ``auth`` (by default, the settings')."""
    settings = services.settings
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            build_middleware(
                service=settings.service_name,
                auth=auth or BearerAuth.from_settings(settings),
                open_routes=OPEN_ROUTES,
                scopes=SCOPES,
                max_body_bytes=settings.max_body_bytes,
                access_log=settings.access_log,
            ),
        ],
    )
    app[SERVICES] = services
    app.on_shutdown.append(streams.on_shutdown)
    for op, handler in ROUTES:
        app.router.add_route(op.method, op.path, handler)
    spec = orjson.dumps(openapi_document())

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)
    asyncapi_doc = orjson.dumps(build_asyncapi(settings))

    async def asyncapi(_: web.Request) -> web.Response:
        return web.Response(body=asyncapi_doc, content_type="application/json")

    app.router.add_get("/asyncapi.json", asyncapi)
    return app
