"""Bearer auth of the HTTP door: static tokens and JWTs, the caller they name, and the scope
each route needs (README: JWT auth and scopes)."""

from worker.http.auth.bearer import BEARER_SUBPROTOCOL, BearerAuth
from worker.http.auth.principal import (
    PRINCIPAL,
    InsufficientScope,
    InvalidToken,
    Principal,
    challenge_of,
)
from worker.http.auth.scopes import ALL_SCOPES, DESCRIPTIONS, Scope

__all__ = [
    "ALL_SCOPES",
    "BEARER_SUBPROTOCOL",
    "DESCRIPTIONS",
    "PRINCIPAL",
    "BearerAuth",
    "InsufficientScope",
    "InvalidToken",
    "Principal",
    "Scope",
    "challenge_of",
]
