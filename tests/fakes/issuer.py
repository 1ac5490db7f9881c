"""A fake identity provider: keys made on the spot, the files a worker reads them from, and JWTs
signed with any of them, or forged the ways an attacker would (``forge``).

``Issuer(folder)`` makes an RSA, an EC P-256 and an Ed25519 key (each in ``jwks.json`` under its
own ``kid``, and the RSA one also as ``rsa.pem``) and an HS256 secret; ``env()`` is what a worker
needs to trust it, ``token(...)`` mints one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from worker.http.auth import ALL_SCOPES

KeyName = Literal["rsa", "ec", "ed", "secret"]
ALGORITHMS: dict[KeyName, str] = {"rsa": "RS256", "ec": "ES256", "ed": "EdDSA", "secret": "HS256"}


def b64url(data: bytes) -> str:
    """Base64url without padding, as in a JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], *, hmac_key: bytes | None) -> str:
    """A token put together by hand: HS256 over ``hmac_key`` (PyJWT refuses to sign with a
    public key as the secret, which is the attack), or no signature at all (``alg: none``)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


class Issuer:
    """Keys, key files and tokens of one issuer."""

    def __init__(
        self,
        folder: Path,
        *,
        issuer: str = "https://issuer.test",
        audience: str = "agentos-worker",
        kid_prefix: str = "",
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.issuer = issuer
        self.audience = audience
        self.kid_prefix = kid_prefix
        self.keys: dict[KeyName, Any] = {
            "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP256R1()),
            "ed": ed25519.Ed25519PrivateKey.generate(),
        }
        self.secret = secrets.token_urlsafe(48)
        self.jwks_file = folder / "jwks.json"
        self.pem_file = folder / "rsa.pem"
        jwks = []
        for name in ("rsa", "ec", "ed"):
            algorithm = jwt.get_algorithm_by_name(ALGORITHMS[name])
            jwk = json.loads(algorithm.to_jwk(self.keys[name].public_key()))
            jwks.append({**jwk, "kid": self.kid(name), "use": "sig"})
        self.jwks_file.write_text(json.dumps({"keys": jwks}))
        self.pem_file.write_bytes(self.public_pem("rsa"))

    def kid(self, name: KeyName) -> str:
        """The ``kid`` of a key in the JWK set."""
        return f"{self.kid_prefix}{name}-1"

    def public_pem(self, name: KeyName) -> bytes:
        """A key's public half as PEM (what an attacker can read from the JWKS or the file)."""
        return bytes(
            self.keys[name]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def env(self, *, jwks: bool = True, secret: bool = True, pem: bool = False) -> dict[str, str]:
        """The settings of a worker that trusts this issuer's keys."""
        env = {"WORKER_JWT_ISSUER": self.issuer, "WORKER_JWT_AUDIENCE": self.audience}
        if jwks:
            env["WORKER_JWT_JWKS_FILE"] = str(self.jwks_file)
        if secret:
            env["WORKER_JWT_SECRET"] = self.secret
        if pem:
            env["WORKER_JWT_PUBLIC_KEY_FILE"] = str(self.pem_file)
        return env

    def claims(
        self,
        *,
        scopes: str | None = None,
        tenant: str | None = "acme",
        lifetime: float = 300.0,
        **extra: Any,
    ) -> dict[str, Any]:
        """Claims the worker accepts (``scopes`` None: all of them), with ``extra`` over them;
        an ``extra`` of None drops that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "go-backend",
            "iat": now,
            "exp": now + int(lifetime),
            "scope": " ".join(sorted(ALL_SCOPES)) if scopes is None else scopes,
        }
        if tenant is not None:
            claims["tenant"] = tenant
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        *,
        key: KeyName = "rsa",
        headers: dict[str, Any] | None = None,
        scopes: str | None = None,
        tenant: str | None = "acme",
        **extra: Any,
    ) -> str:
        """A token signed with ``key`` (named by its ``kid`` unless ``headers`` say otherwise)."""
        claims = self.claims(scopes=scopes, tenant=tenant, **extra)
        if key == "secret":
            return jwt.encode(claims, self.secret, algorithm="HS256", headers=headers)
        head = {"kid": self.kid(key), **(headers or {})}
        return jwt.encode(claims, self.keys[key], algorithm=ALGORITHMS[key], headers=head)
