"""Who is calling (``Principal``, on the request as ``request[PRINCIPAL]``), and the two ways a
bearer token is refused: 401 ``invalid_token`` and 403 ``insufficient_scope``, each with its
RFC 6750 ``WWW-Authenticate`` challenge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from worker.errors import Forbidden, Unauthorized, WorkerError
from worker.http.auth.scopes import ALL_SCOPES


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a request's token names."""

    kind: Literal["static", "jwt", "open"]
    """``static``: a ``WORKER_AUTH_TOKENS`` token; ``jwt``: a verified JWT; ``open``: no token
    was asked for (a public route, or a worker without auth)."""
    scopes: frozenset[str]
    tenant: str | None = None
    """The tenant claim's value (``WORKER_TENANT_CLAIM``); None for static tokens and for JWTs
    without it. Kept for tenant isolation, which does not use it yet."""
    subject: str | None = None
    """The JWT's ``sub``, for logs."""


STATIC = Principal(kind="static", scopes=ALL_SCOPES)
OPEN = Principal(kind="open", scopes=ALL_SCOPES)

PRINCIPAL = web.RequestKey("principal", Principal)


class InvalidToken(Unauthorized):
    """A token that is not a configured static token and not a JWT this worker accepts.

    ``reason`` is a stable word for programs (``expired``, ``wrong_audience``, ...), also in the
    error's details; ``description`` says it for people, and goes into the challenge's
    ``error_description`` (RFC 6750 section 3: no quote or backslash, so never the token's own
    text).
    """

    code = "invalid_token"

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"invalid bearer token: {description}", details={"reason": reason})
        self.reason = reason
        self.challenge = f'Bearer error="invalid_token", error_description="{description}"'


class InsufficientScope(Forbidden):
    """A valid token without the scope the route needs."""

    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"the token lacks the scope {scope}", details={"scope": scope})
        self.challenge = (
            f'Bearer error="insufficient_scope", scope="{scope}", '
            f'error_description="the token lacks the scope {scope}"'
        )


def challenge_of(exc: WorkerError) -> str | None:
    """The ``WWW-Authenticate`` value an error answer carries: the error's own challenge, a
    bare ``Bearer`` for any other 401 (no token, or an unknown static one), else none."""
    if isinstance(exc, InvalidToken | InsufficientScope):
        return exc.challenge
    return "Bearer" if exc.status == 401 else None
