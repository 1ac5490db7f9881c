"""JWT keys and their verifier in process: every key bound to its algorithm, a key file that
cannot be used refused at start naming its setting, and verified tokens cached until they
expire. (The HTTP side, with a real worker, is test_jwt.py.)"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from tests.fakes.issuer import Issuer, b64url
from worker.config import ConfigError, Settings
from worker.http.auth import InvalidToken
from worker.http.auth.keys import load_keys
from worker.http.auth.verifier import JwtVerifier
from worker.testing import wait_for


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("issuer"))


def verifier(issuer: Issuer, **kwargs: Any) -> JwtVerifier:
    keys = load_keys(
        secret=SecretStr(issuer.secret), public_key_file=None, jwks_file=issuer.jwks_file
    )
    assert keys is not None
    return JwtVerifier(keys, issuer=issuer.issuer, audience=issuer.audience, **kwargs)


def test_each_key_verifies_only_its_own_algorithm(issuer: Issuer) -> None:
    keys = load_keys(
        secret=SecretStr(issuer.secret), public_key_file=issuer.pem_file, jwks_file=issuer.jwks_file
    )
    assert keys is not None
    assert keys.secret is not None
    assert keys.secret.algorithm_name == "HS256"
    assert keys.pem is not None
    assert keys.pem.algorithm_name == "RS256"
    assert {kid: k.algorithm_name for kid, k in keys.by_kid.items()} == {
        "rsa-1": "RS256",
        "ec-1": "ES256",
        "ed-1": "EdDSA",
    }
    v = verifier(issuer)
    for key in ("rsa", "ec", "ed", "secret"):
        principal = v.verify(issuer.token(key=key, scopes="agents:read tasks:read"))
        assert principal.kind == "jwt"
        assert principal.scopes == {"agents:read", "tasks:read"}
        assert principal.tenant == "acme"
        assert principal.subject == "go-backend"


def test_no_key_settings_means_no_jwts() -> None:
    assert load_keys(secret=None, public_key_file=None, jwks_file=None) is None


def test_a_certificate_gives_its_public_key(tmp_path: Path, issuer: Issuer) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keys = load_keys(secret=None, public_key_file=path, jwks_file=None)
    assert keys is not None
    assert keys.pem is not None
    assert keys.pem.algorithm_name == "ES384"
    v = JwtVerifier(keys, issuer=issuer.issuer, audience=issuer.audience)
    token = jwt.encode(issuer.claims(), key, algorithm="ES384")
    assert v.verify(token).tenant == "acme"


def _jwks(path: Path, *keys: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"keys": list(keys)}))
    return path


def _rsa_jwk(bits: int = 2048, *, private: bool = False) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    algorithm = jwt.get_algorithm_by_name("RS256")
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key if private else key.public_key()))
    return jwk


BAD_FILES: list[tuple[str, Any, str, str]] = [
    # (case, what to write, the setting it names, words of the reason)
    ("missing file", None, "WORKER_JWT_JWKS_FILE", "No such file"),
    ("not json", b"{nope", "WORKER_JWT_JWKS_FILE", "not JSON"),
    ("no keys list", {"kty": "RSA"}, "WORKER_JWT_JWKS_FILE", "not a JWK set"),
    ("empty set", {"keys": []}, "WORKER_JWT_JWKS_FILE", "no signing key"),
    (
        "symmetric key",
        {"keys": [{"kty": "oct", "k": b64url(b"x" * 32), "kid": "a"}]},
        "WORKER_JWT_JWKS_FILE",
        "symmetric key",
    ),
    ("private key", "private-jwk", "WORKER_JWT_JWKS_FILE", "private key"),
    ("weak rsa key", "weak-jwk", "WORKER_JWT_JWKS_FILE", "1024 bits"),
    (
        "hmac algorithm on an rsa key",
        "hs256-rsa-jwk",
        "WORKER_JWT_JWKS_FILE",
        "kid 'a'",
    ),
    ("private pem", "private-pem", "WORKER_JWT_PUBLIC_KEY_FILE", "private key"),
    ("not pem", b"hello", "WORKER_JWT_PUBLIC_KEY_FILE", "not a PEM public key"),
]


def _write_bad(case: Any, path: Path) -> None:
    if case is None:
        return
    if isinstance(case, bytes):
        path.write_bytes(case)
    elif case == "private-jwk":
        _jwks(path, {**_rsa_jwk(private=True), "kid": "a"})
    elif case == "weak-jwk":
        _jwks(path, {**_rsa_jwk(1024), "kid": "a"})
    elif case == "hs256-rsa-jwk":
        _jwks(path, {**_rsa_jwk(), "kid": "a", "alg": "HS256"})
    elif case == "private-pem":
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    else:
        path.write_text(json.dumps(case))


@pytest.mark.parametrize(
    ("case", "content", "setting", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
def test_a_key_file_that_cannot_be_used_stops_start_up(
    tmp_path: Path, case: str, content: Any, setting: str, words: str
) -> None:
    path = tmp_path / "keys"
    _write_bad(content, path)
    pem = setting == "WORKER_JWT_PUBLIC_KEY_FILE"
    with pytest.raises(ConfigError) as refused:
        load_keys(
            secret=None, public_key_file=path if pem else None, jwks_file=None if pem else path
        )
    assert setting in str(refused.value), case
    assert words in str(refused.value), str(refused.value)


def test_a_short_secret_stops_start_up() -> None:
    with pytest.raises(ConfigError, match=r"WORKER_JWT_SECRET.*31 bytes"):
        load_keys(secret=SecretStr("x" * 31), public_key_file=None, jwks_file=None)


def test_jwt_keys_need_an_issuer_and_an_audience(tmp_path: Path) -> None:
    base = {"_cli_parse_args": [], "jwt_secret": "s" * 32}
    with pytest.raises(ValidationError, match="WORKER_JWT_ISSUER and WORKER_JWT_AUDIENCE"):
        Settings(**base, jwt_issuer="https://issuer.test")
    settings = Settings(**base, jwt_issuer="i", jwt_audience="a")
    assert settings.jwt_enabled
    # JWT keys alone are auth enough to listen beyond loopback.
    Settings(**base, jwt_issuer="i", jwt_audience="a", http_host="0.0.0.0")


def test_a_verified_token_is_checked_once_until_it_expires(issuer: Issuer) -> None:
    v = verifier(issuer, leeway=0.0, cache_size=2)
    token = issuer.token(lifetime=2)
    for _ in range(5):
        assert v.verify(token).tenant == "acme"
    assert v.cached_tokens == 1
    # Bounded: the least recently used token makes room.
    for n in range(3):
        v.verify(issuer.token(tenant=f"t{n}"))
    assert v.cached_tokens == 2


async def test_a_cached_token_is_refused_once_it_expires(issuer: Issuer) -> None:
    v = verifier(issuer, leeway=0.0)
    token = issuer.token(lifetime=1)
    v.verify(token)

    def refused() -> bool:
        try:
            v.verify(token)
        except InvalidToken as exc:
            return exc.reason == "expired"
        return False

    await wait_for(refused, what="the cached token to expire", within=10)
    assert v.cached_tokens == 0


def test_the_scope_and_tenant_claims_must_be_well_formed(issuer: Issuer) -> None:
    v = verifier(issuer)
    cases = [
        (issuer.token(scope=["agents:read"]), "bad_claim", "scope claim"),
        (issuer.token(tenant="acme corp"), "bad_claim", "tenant claim"),
        (issuer.token(tenant=7), "bad_claim", "tenant claim"),
    ]
    for token, reason, words in cases:
        with pytest.raises(InvalidToken) as refused:
            v.verify(token)
        assert refused.value.reason == reason
        assert words in refused.value.message
    # Without WORKER_TENANT_REQUIRED a token may name no tenant; with it, it may not.
    assert v.verify(issuer.token(tenant=None)).tenant is None
    with pytest.raises(InvalidToken) as refused:
        verifier(issuer, tenant_required=True).verify(issuer.token(tenant=None))
    assert refused.value.reason == "no_tenant"
    assert verifier(issuer, tenant_claim="org").verify(issuer.token(org="o1")).tenant == "o1"


def test_an_expired_token_is_never_cached(issuer: Issuer) -> None:
    v = verifier(issuer)
    with pytest.raises(InvalidToken):
        v.verify(issuer.token(exp=int(time.time()) - 3600))
    assert v.cached_tokens == 0
