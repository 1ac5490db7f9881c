"""Checks across settings that no one field's type can make: who may call the HTTP door
(protected mode, the JWT claims a token must carry) and how the worker authenticates to NATS.
Each raises ``ValueError`` naming the variables; ``Settings`` runs them once its values parse."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from worker.config.values import ENV_PREFIX

# The ways to authenticate to NATS (a worker uses one at most), by the variables of each.
_NATS_AUTH = {
    "WORKER_NATS_CREDS": ("nats_creds",),
    "WORKER_NATS_NKEY_SEED": ("nats_nkey_seed",),
    "WORKER_NATS_USER/WORKER_NATS_PASSWORD": ("nats_user", "nats_password"),
    "WORKER_NATS_TOKEN": ("nats_token",),
}
NATS_SECURITY = [f for fields in _NATS_AUTH.values() for f in fields] + [
    "nats_tls_ca",
    "nats_tls_cert",
    "nats_tls_key",
    "nats_tls_server_name",
]
"""The settings of NATS credentials and TLS, by field name."""


def check_http_access(
    *,
    host: str,
    static_tokens: bool,
    jwt: bool,
    jwt_issuer: str | None,
    jwt_audience: str | None,
    unauthenticated_allowed: bool,
) -> None:
    """Protected mode: no door open beyond loopback without a token unless asked for; and JWT
    keys only with the issuer and audience that pin a token to this worker."""
    if not static_tokens and not jwt and not unauthenticated_allowed and not _is_loopback(host):
        raise ValueError(
            f"refusing to listen on {host} without authentication: set "
            "WORKER_AUTH_TOKENS or JWT keys (WORKER_JWT_SECRET, WORKER_JWT_PUBLIC_KEY_FILE, "
            "WORKER_JWT_JWKS_FILE), or WORKER_ALLOW_UNAUTHENTICATED=true if this is intended"
        )
    if jwt and (not jwt_issuer or not jwt_audience):
        raise ValueError(
            "JWT keys are set but WORKER_JWT_ISSUER and WORKER_JWT_AUDIENCE are not both: "
            "without them a token minted for another service would be accepted"
        )


def check_nats_access(values: Mapping[str, object], *, embedded: bool) -> None:
    """One way to authenticate to NATS, complete pairs, and none of it for the embedded server
    (``values``: the ``NATS_SECURITY`` settings by field name)."""
    chosen = [n for n, fields in _NATS_AUTH.items() if any(values[f] for f in fields)]
    if len(chosen) > 1:
        named = ", ".join(chosen[:-1]) + " and " + chosen[-1]
        both = "both" if len(chosen) == 2 else "all"
        raise ValueError(f"{named} are {both} set: authenticate to NATS one way only")
    if (values["nats_user"] is None) != (values["nats_password"] is None):
        raise ValueError("WORKER_NATS_USER and WORKER_NATS_PASSWORD go together: set both")
    if (values["nats_tls_cert"] is None) != (values["nats_tls_key"] is None):
        raise ValueError("WORKER_NATS_TLS_CERT and WORKER_NATS_TLS_KEY go together: set both")
    given = [f for f in NATS_SECURITY if values[f] is not None]
    if embedded and given:
        raise ValueError(
            f"{ENV_PREFIX}{given[0].upper()} is set but WORKER_NATS_URL is not: the embedded "
            "nats-server takes no credentials or TLS; set WORKER_NATS_URL to a secured server"
        )


def _is_loopback(host: str) -> bool:
    if host in {"localhost", ""}:
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
