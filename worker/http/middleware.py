"""The HTTP door's one middleware: request id, auth and scopes, limits, errors as JSON, and
metrics.

One middleware rather than five keeps the per-request cost to a single extra coroutine frame;
the work inside is the same a stack of them would do.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import ValidationError

from worker.errors import BadRequest, PayloadTooLarge, WorkerError, validation_details
from worker.http.auth import PRINCIPAL, BearerAuth, Scope, challenge_of
from worker.http.auth.principal import OPEN
from worker.http.envelope import error_response
from worker.http.spans import RequestSpan
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import HTTP_REJECTED, HTTP_REQUEST_DURATION, labelled

log = get_logger("worker.http")

REQUEST_ID = web.RequestKey("request_id", str)
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def build_middleware(  # noqa: PLR0915 - one closure factory: the checks live side by side
    *,
    service: str,
    auth: BearerAuth,
    open_routes: frozenset[str],
    scopes: Mapping[tuple[str, str], str | None],
    max_body_bytes: int,
    access_log: bool,
) -> Middleware:
    """The middleware, configured once at start. ``open_routes``: the route templates served
    without a token (the operations marked ``public``); ``scopes``: by ``(method, route
    template)``, the scope every other route needs (None: any valid token)."""

    def admit(request: web.Request, endpoint: str) -> None:
        """Checks made before any handler runs: the token, its scope, the declared body size."""
        if endpoint in open_routes:
            request[PRINCIPAL] = OPEN
        else:
            try:
                principal = auth.authenticate(request)
                auth.require(principal, _scope(scopes, request.method, endpoint))
            except WorkerError as exc:
                HTTP_REJECTED.labels(service, exc.code).inc()
                raise
            request[PRINCIPAL] = principal
            if principal.tenant is not None:
                structlog.contextvars.bind_contextvars(tenant=principal.tenant)
        length = request.content_length
        if length is not None and length > max_body_bytes:
            HTTP_REJECTED.labels(service, "payload_too_large").inc()
            raise PayloadTooLarge(
                f"request body of {length} bytes is over the limit of {max_body_bytes}"
            )

    def observe(request: web.Request, endpoint: str, status: int, elapsed: float) -> None:
        labelled(HTTP_REQUEST_DURATION, service, endpoint, str(status)).observe(elapsed)
        if status >= 500 or access_log:
            log.info(
                "http request",
                method=request.method,
                endpoint=endpoint,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )

    def respond_to(request: web.Request, exc: Exception, rid: str) -> web.Response:
        """The JSON error response for an exception a handler raised."""
        if isinstance(exc, WorkerError):
            return error_response(
                exc.status,
                exc.code,
                exc.message,
                rid,
                details=exc.details,
                retry_after=exc.retry_after,
                headers=_challenge(exc),
            )
        if isinstance(exc, ValidationError):
            return error_response(
                400,
                "validation_error",
                "request is invalid",
                rid,
                details=validation_details(exc),
            )
        if isinstance(exc, web.HTTPException) and exc.status >= 400:
            if exc.status == 413:
                message = f"request body is over the limit of {max_body_bytes} bytes"
            else:
                message = exc.reason
            return error_response(
                exc.status,
                _HTTP_CODES.get(exc.status, "http_error"),
                message,
                rid,
                headers={k: v for k, v in exc.headers.items() if k == "Allow"},
            )
        log.error("unhandled error", path=request.path, method=request.method, exc_info=exc)
        return error_response(500, "internal", "internal error", rid)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        rid = request.headers.get("X-Request-ID", "")
        if not _REQUEST_ID.match(rid):
            rid = os.urandom(16).hex()  # as random as uuid4().hex, a sixth of its cost
        request[REQUEST_ID] = rid
        # Each request runs in a task of its own (a copy of the context): nothing to unbind.
        structlog.contextvars.bind_contextvars(request_id=rid)
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "unmatched"
        span = RequestSpan(request, endpoint, rid)
        failure: Exception | None = None
        response: web.StreamResponse | None = None
        try:
            admit(request, endpoint)
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                response = exc  # a redirect: aiohttp sends it as it is
                raise
            response = respond_to(request, exc, rid)
        except Exception as exc:
            failure = exc
            response = respond_to(request, exc, rid)
        finally:
            # A cancelled request (the client went away) is counted and ends its span too; the
            # access log line is written while the span is current, to carry its trace id.
            status = 499 if response is None else response.status
            observe(request, endpoint, status, time.perf_counter() - start)
            span.end(status, failure if status >= 500 else None)
        if not response.prepared:
            response.headers["X-Request-ID"] = rid
        return response

    return middleware


def _scope(scopes: Mapping[tuple[str, str], str | None], method: str, endpoint: str) -> str | None:
    """The scope a request needs: its route's; none past a token for a path no route serves
    (it answers 404 or 405); admin for a route the table forgot, so that one fails closed."""
    if endpoint == "unmatched":
        return None
    return scopes.get(("GET" if method == "HEAD" else method, endpoint), Scope.ADMIN)


def _challenge(exc: WorkerError) -> dict[str, str] | None:
    challenge = challenge_of(exc)
    return None if challenge is None else {"WWW-Authenticate": challenge}


async def read_json(request: web.Request) -> Any:
    """The request body as JSON (400 if it is not JSON, 413 if over the limit)."""
    body = await request.read()
    if not body:
        raise BadRequest("request body is empty; a JSON object is expected", code="malformed_json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="malformed_json") from None
