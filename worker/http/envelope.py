"""The error envelope, ``{"error": {"code", "message", "request_id", ...}}``: the body of every
error answer (CONTRACT section 1) and every error message on a socket (``SocketError``)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def error_body(
    code: str,
    message: str,
    request_id: str,
    *,
    details: Any = None,
    resume_from_seq: int | None = None,
) -> bytes:
    """The envelope as JSON; ``details`` and ``resume_from_seq`` only when given."""
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        body["details"] = details
    if resume_from_seq is not None:
        body["resume_from_seq"] = resume_from_seq
    return orjson.dumps({"error": body})


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    details: Any = None,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error answer: the envelope with ``status`` (and ``Retry-After`` in whole seconds)."""
    out_headers = dict(headers or {})
    if retry_after is not None:
        out_headers["Retry-After"] = str(max(1, round(retry_after)))
    return web.Response(
        status=status,
        body=error_body(code, message, request_id, details=details),
        content_type="application/json",
        headers=out_headers,
    )
