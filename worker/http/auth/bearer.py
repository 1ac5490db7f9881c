"""The bearer token of a request, and the caller it names: a static token
(``WORKER_AUTH_TOKENS``, every scope, as before JWTs) or a JWT (``verifier``)."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from worker.config import ConfigError, Settings
from worker.errors import Unauthorized
from worker.http.auth.keys import load_keys
from worker.http.auth.principal import OPEN, STATIC, InsufficientScope, InvalidToken, Principal
from worker.http.auth.verifier import JwtVerifier

BEARER_SUBPROTOCOL = "base64url.bearer.agentos."


class BearerAuth:
    """Who a request's ``Authorization: Bearer`` token (or, on a WebSocket upgrade, its
    ``base64url.bearer.agentos.<token>`` subprotocol) names, and whether it may use a route."""

    def __init__(self, *, tokens: frozenset[bytes], jwt: JwtVerifier | None = None) -> None:
        self._tokens = tokens
        self._jwt = jwt

    @classmethod
    def from_settings(cls, settings: Settings) -> BearerAuth:
        """The auth the settings configure; ``ConfigError`` for a key that cannot be used."""
        keys = load_keys(
            secret=settings.jwt_secret,
            public_key_file=settings.jwt_public_key_file,
            jwks_file=settings.jwt_jwks_file,
        )
        verifier = None
        if keys is not None:
            if settings.jwt_issuer is None or settings.jwt_audience is None:
                raise ConfigError(
                    "WORKER_JWT_ISSUER and WORKER_JWT_AUDIENCE are required with JWT keys"
                )
            verifier = JwtVerifier(
                keys,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                tenant_claim=settings.tenant_claim,
                tenant_required=settings.tenant_required,
            )
        return cls(tokens=settings.token_values(), jwt=verifier)

    @property
    def enabled(self) -> bool:
        """False when the worker runs without auth (loopback, or told to): all is open."""
        return bool(self._tokens) or self._jwt is not None

    def authenticate(self, request: web.Request) -> Principal:
        """The caller, or 401: ``unauthorized`` without a token or with an unknown one,
        ``invalid_token`` (saying why) for a JWT that does not verify."""
        if not self.enabled:
            return OPEN
        given = _bearer_token(request)
        if not given:
            raise Unauthorized("missing or invalid bearer token")
        # Compare against every token so timing says nothing about which one nearly matched.
        if sum(hmac.compare_digest(given, t) for t in self._tokens) > 0:
            return STATIC
        if self._jwt is None:
            raise Unauthorized("missing or invalid bearer token")
        try:
            token = given.decode("ascii")
        except UnicodeDecodeError:
            token = ""
        if token.count(".") != 2:
            raise InvalidToken("unknown_token", "neither a configured token nor a JWT")
        return self._jwt.verify(token)

    @staticmethod
    def require(principal: Principal, scope: str | None) -> None:
        """403 ``insufficient_scope`` unless ``principal`` holds ``scope`` (None: any token)."""
        if scope is not None and scope not in principal.scopes:
            raise InsufficientScope(scope)


def _bearer_token(request: web.Request) -> bytes:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    return given or _subprotocol_token(request)


def _subprotocol_token(request: web.Request) -> bytes:
    """A WebSocket upgrade's bearer token offered as a subprotocol (browsers cannot set
    ``Authorization``): ``base64url.bearer.agentos.<base64url token>``, as Kubernetes does."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return b""
    for offered in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        name = offered.strip()
        if name.startswith(BEARER_SUBPROTOCOL):
            encoded = name[len(BEARER_SUBPROTOCOL) :]
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (ValueError, binascii.Error):
                return b""
    return b""
