"""NATS decentralized authentication made in the test: an operator, a system account, an
account with JetStream and a user, as ``nsc`` would make them, so a real nats-server in operator
mode can check a real credentials file.

Hand-written because the tests need nothing more than signed claims: a NATS JWT is a JSON
header and claims, base64url-encoded, signed with the issuer's nkey (Ed25519, the ``nkeys``
package that nats-py's credentials support already installs). ``nsc`` is a Go binary that no
Python package ships.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nkeys

_UNLIMITED = -1
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Identity:
    """An nkey: its seed and public key."""

    prefix: int
    seed: bytes = field(init=False)
    public: str = field(init=False)

    def __post_init__(self) -> None:
        self.seed = nkeys.encode_seed(os.urandom(32), self.prefix)
        self.public = nkeys.from_seed(bytearray(self.seed)).public_key.decode()

    def sign(self, subject: str, name: str, nats: dict[str, Any]) -> str:
        """A JWT issued by this identity about ``subject``."""
        claims: dict[str, Any] = {
            "jti": "",
            "iat": int(time.time()),
            "iss": self.public,
            "name": name,
            "sub": subject,
            "nats": {**nats, "version": 2},
        }
        # The id is the hash of the claims without it, as the Go library computes it.
        digest = hashlib.new("sha512_256", json.dumps(claims).encode()).digest()
        claims["jti"] = base64.b32encode(digest).rstrip(b"=").decode()
        signed = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = nkeys.from_seed(bytearray(self.seed)).sign(signed.encode())
        return f"{signed}.{_b64(signature)}"


class Operator:
    """An operator with a system account and one account (``app``) that may use JetStream."""

    def __init__(self) -> None:
        self.key = Identity(nkeys.PREFIX_BYTE_OPERATOR)
        self.system = Identity(nkeys.PREFIX_BYTE_ACCOUNT)
        self.app = Identity(nkeys.PREFIX_BYTE_ACCOUNT)
        self.jwt = self.key.sign(
            self.key.public, "agentos", {"type": "operator", "system_account": self.system.public}
        )
        limits = {"subs": _UNLIMITED, "data": _UNLIMITED, "payload": _UNLIMITED}
        limits |= {"imports": _UNLIMITED, "exports": _UNLIMITED, "wildcards": True}
        limits |= {"conn": _UNLIMITED, "leaf": _UNLIMITED}
        self.accounts = {
            self.system.public: self.key.sign(
                self.system.public, "SYS", {"type": "account", "limits": limits}
            ),
            self.app.public: self.key.sign(
                self.app.public,
                "agentos",
                {
                    "type": "account",
                    "limits": limits
                    | {
                        "mem_storage": _UNLIMITED,
                        "disk_storage": _UNLIMITED,
                        "streams": _UNLIMITED,
                        "consumer": _UNLIMITED,
                    },
                },
            ),
        }

    def resolver_config(self) -> str:
        """What ``nsc generate config --mem-resolver`` writes: the server's side."""
        preload = "\n".join(f"  {account}: {jwt}" for account, jwt in self.accounts.items())
        return (
            f"operator: {self.jwt}\n"
            f"system_account: {self.system.public}\n"
            "resolver: MEMORY\n"
            f"resolver_preload: {{\n{preload}\n}}\n"
        )

    def user_creds(self, path: Path, name: str = "worker") -> Path:
        """A credentials file of a new user of ``app``, as ``nsc generate creds`` writes it."""
        user = Identity(nkeys.PREFIX_BYTE_USER)
        nats = {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}
        jwt = self.app.sign(user.public, name, nats)
        path.write_text(
            "-----BEGIN NATS USER JWT-----\n"
            f"{jwt}\n"
            "------END NATS USER JWT------\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{user.seed.decode()}\n"
            "------END USER NKEY SEED------\n",
            encoding="utf-8",
        )
        path.chmod(0o600)
        return path
