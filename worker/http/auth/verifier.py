"""JWT bearer tokens, verified by PyJWT and remembered until they expire.

PyJWT does the verifying: the signature with the one algorithm the key allows (``keys``),
``exp`` and ``nbf`` with a small leeway, ``iss`` and ``aud``. What is added here: the reason a
token is refused, in words safe to send back; the scopes and tenant read from the claims; and a
cache. A Go backend sends the same token with every call until it expires, so each verified
token is kept (by its raw text, at most ``cache_size`` of them, least recently used out first)
until its ``exp`` plus the leeway, exactly as long as verifying it again would accept it: one
signature check per token, not one per request.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cachetools import TLRUCache

from worker.http.auth.keys import KeyNotFound, VerificationKeys
from worker.http.auth.principal import InvalidToken, Principal
from worker.http.auth.scopes import parse_scopes

LEEWAY = 30.0
"""Seconds of clock skew allowed on ``exp`` and ``nbf`` (and ``iat``)."""
TENANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""A tenant id: safe in a NATS subject and a key-value key, where tenants will be kept apart."""

# PyJWT's errors, most specific first, as (reason, description) for the 401.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid", "the token is not valid yet"),
    (jwt.InvalidAudienceError, "wrong_audience", "the token is not meant for this audience"),
    (jwt.InvalidIssuerError, "wrong_issuer", "the token is from another issuer"),
    (jwt.InvalidSignatureError, "bad_signature", "the signature does not verify"),
    (jwt.InvalidAlgorithmError, "wrong_algorithm", "the token's algorithm is not its key's"),
    (jwt.InvalidIssuedAtError, "bad_claim", "the iat claim is not a number"),
    (jwt.DecodeError, "malformed", "the token is not a well-formed JWT"),
)


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    good_until: float


def _good_until(_token: str, verified: _Verified, _now: float) -> float:
    return verified.good_until


class JwtVerifier:
    """Turns a JWT into the ``Principal`` it names, or raises ``InvalidToken`` saying why."""

    def __init__(
        self,
        keys: VerificationKeys,
        *,
        issuer: str,
        audience: str,
        tenant_claim: str = "tenant",
        tenant_required: bool = False,
        leeway: float = LEEWAY,
        cache_size: int = 4096,
    ) -> None:
        self._keys = keys
        self._leeway = leeway
        self._issuer = issuer
        self._audience = audience
        self._tenant_claim = tenant_claim
        self._tenant_required = tenant_required
        self._cache: TLRUCache[str, _Verified] = TLRUCache(
            maxsize=cache_size, ttu=_good_until, timer=time.time
        )

    def verify(self, token: str) -> Principal:
        """The caller ``token`` names (from the cache when it was verified before)."""
        hit = self._cache.get(token)
        if hit is not None:
            return hit.principal
        claims = self._decode(token)
        principal = self._principal(claims)
        # exp is required and checked, so a number here.
        self._cache[token] = _Verified(principal, float(claims["exp"]) + self._leeway)
        return principal

    @property
    def cached_tokens(self) -> int:
        """Tokens verified and not yet expired, whose next use costs no signature check."""
        self._cache.expire()
        return len(self._cache)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            key = self._keys.for_header(jwt.get_unverified_header(token))
        except KeyNotFound as exc:
            raise InvalidToken(exc.reason, exc.description) from None
        except jwt.PyJWTError:
            raise InvalidToken("malformed", "the token is not a well-formed JWT") from None
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={
                    "require": ["exp", "iss", "aud"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken("missing_claim", f"the token has no {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            for kind, reason, description in _REASONS:
                if isinstance(exc, kind):
                    raise InvalidToken(reason, description) from None
            raise InvalidToken("invalid", "the token is not valid") from None

    def _principal(self, claims: dict[str, Any]) -> Principal:
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("bad_claim", "the scope claim is not a space-separated string")
        tenant = claims.get(self._tenant_claim)
        if tenant is None and self._tenant_required:
            raise InvalidToken("no_tenant", "the token has no tenant claim")
        if tenant is not None and not (isinstance(tenant, str) and TENANT_ID.match(tenant)):
            raise InvalidToken("bad_claim", "the tenant claim is not a tenant id")
        subject = claims.get("sub")
        return Principal(
            kind="jwt",
            scopes=parse_scopes(scope),
            tenant=tenant,
            subject=subject if isinstance(subject, str) else None,
        )
