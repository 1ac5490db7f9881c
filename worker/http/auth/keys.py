"""The keys that may sign a JWT, each bound to the one algorithm its type allows.

The algorithm that verifies a token comes from the key, never from the token's header: an RSA
key verifies RS256 (or the ``alg`` its JWK names), an EC key ES256/384/512 by its curve, an
Ed25519 or Ed448 key EdDSA, and ``WORKER_JWT_SECRET`` HS256 alone. So a token whose header says
``none``, or says HS256 over a public key used as the HMAC secret, finds no key that takes it.
Every key becomes a ``jwt.PyJWK``, which PyJWT itself holds to that algorithm.

Keys are read once at start (a new key needs a restart, as every setting does); a file that
cannot be used stops start-up with ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from pydantic import SecretStr

from worker.config import ConfigError

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""What a key of a JWKS file or the PEM file may verify."""
MIN_RSA_BITS = 2048  # NIST SP 800-131A; PyJWT warns below it
MIN_SECRET_BYTES = 32  # RFC 7518 section 3.2: an HS256 key is at least the hash's size
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class KeyNotFound(Exception):
    """No configured key verifies a token with this header. ``reason``: ``alg_none``,
    ``wrong_algorithm`` or ``unknown_key``; ``description`` says it in words safe to quote
    back (never the header's own text)."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


@dataclass(frozen=True, slots=True)
class VerificationKeys:
    """Every key a JWT may be signed with, and how a token's header picks one."""

    secret: jwt.PyJWK | None = None
    """The HS256 key from ``WORKER_JWT_SECRET``."""
    pem: jwt.PyJWK | None = None
    """The key of ``WORKER_JWT_PUBLIC_KEY_FILE``; it has no ``kid``, so takes tokens of any."""
    by_kid: Mapping[str, jwt.PyJWK] = field(default_factory=dict)
    """The keys of ``WORKER_JWT_JWKS_FILE``, by ``kid``."""

    def for_header(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        """The key for a token with this (unverified) header; ``KeyNotFound`` when none."""
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise KeyNotFound("alg_none", "unsigned tokens (alg none or no alg) are never accepted")
        if alg == "HS256":
            if self.secret is None:
                raise KeyNotFound(
                    "wrong_algorithm", "HS256 tokens are not accepted: no shared secret is set"
                )
            return self.secret
        if alg not in ASYMMETRIC:
            raise KeyNotFound("wrong_algorithm", "the token's algorithm is not one accepted here")
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self.by_kid:
            return self.by_kid[kid]
        if self.pem is not None:
            return self.pem
        if kid is None and len(self.by_kid) == 1:
            return next(iter(self.by_kid.values()))
        if kid is None:
            raise KeyNotFound("unknown_key", "the token names no key (kid) and several are set")
        raise KeyNotFound("unknown_key", "no configured key has the token's kid")


def load_keys(
    *, secret: SecretStr | None, public_key_file: Path | None, jwks_file: Path | None
) -> VerificationKeys | None:
    """The keys of the settings (None when none is set: JWTs are off)."""
    if secret is None and public_key_file is None and jwks_file is None:
        return None
    return VerificationKeys(
        secret=None if secret is None else _secret_key(secret.get_secret_value().encode()),
        pem=None if public_key_file is None else _pem_key(public_key_file),
        by_kid={} if jwks_file is None else _jwks_keys(jwks_file),
    )


def _secret_key(secret: bytes) -> jwt.PyJWK:
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"WORKER_JWT_SECRET / --jwt-secret: {len(secret)} bytes; an HS256 secret needs at "
            f"least {MIN_SECRET_BYTES} (RFC 7518 section 3.2)"
        )
    k = base64.urlsafe_b64encode(secret).rstrip(b"=").decode()
    return jwt.PyJWK({"kty": "oct", "k": k}, algorithm="HS256")


def _pem_key(path: Path) -> jwt.PyJWK:
    where = f"WORKER_JWT_PUBLIC_KEY_FILE / --jwt-public-key-file ({path})"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror or exc}") from None
    if b"PRIVATE KEY" in data:
        raise ConfigError(f"{where}: holds a private key; give the worker the public key only")
    try:
        if b"-----BEGIN CERTIFICATE" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"{where}: not a PEM public key or certificate ({exc})") from None
    algorithm = _algorithm_of(key)
    if algorithm is None:
        raise ConfigError(f"{where}: a {type(key).__name__}, not an RSA, EC or Ed25519/448 key")
    jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(key))
    return _checked(jwt.PyJWK(jwk, algorithm=algorithm), where)


def _algorithm_of(key: Any) -> str | None:
    """The one algorithm a public key of this type verifies."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_ALGORITHMS.get(key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    return None


def _jwks_keys(path: Path) -> dict[str, jwt.PyJWK]:
    where = f"WORKER_JWT_JWKS_FILE / --jwt-jwks-file ({path})"
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: not JSON ({exc})") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f'{where}: not a JWK set (no "keys" list)')
    keys: dict[str, jwt.PyJWK] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: key {i} is not an object")
        if entry.get("use", "sig") != "sig":
            continue  # an encryption key: it signs nothing
        name = f"{where}: key {i} (kid {entry.get('kid')!r})"
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            if len(entries) > 1:
                raise ConfigError(f"{name}: no kid, and the set has several keys")
            kid = ""
        if kid in keys:
            raise ConfigError(f"{name}: the kid is given twice")
        keys[kid] = _jwk(entry, name)
    if not keys:
        raise ConfigError(f"{where}: no signing key")
    return keys


def _jwk(entry: dict[str, Any], name: str) -> jwt.PyJWK:
    """One public signing key of a JWK set."""
    if entry.get("kty") == "oct":
        raise ConfigError(f"{name}: a symmetric key; give a shared secret as WORKER_JWT_SECRET")
    if "d" in entry:
        raise ConfigError(f"{name}: holds a private key; the worker needs the public part only")
    try:
        return _checked(jwt.PyJWK(entry), name)
    except jwt.PyJWTError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _checked(key: jwt.PyJWK, where: str) -> jwt.PyJWK:
    if key.algorithm_name not in ASYMMETRIC:
        raise ConfigError(f"{where}: algorithm {key.algorithm_name} is not a public-key one")
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"{where}: an RSA key of {key.key.key_size} bits; {MIN_RSA_BITS} or more")
    return key
