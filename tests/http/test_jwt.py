"""JWT bearer tokens on a real worker: forged tokens refused with the reason, the right ones
accepted, each route gated by its scope, WebSocket upgrades, and the OpenAPI document's
security. Keys are made by the tests (``tests.fakes.issuer``)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_spec_validator import validate

from tests.conftest import SpawnWorker
from tests.fakes.issuer import Issuer, b64url, forge
from tests.http.helpers import assert_error, call, metric
from worker.http.app import DOCUMENTS, OPERATIONS
from worker.http.auth import ALL_SCOPES, DESCRIPTIONS
from worker.testing import NatsServer, WorkerProcess, wait_for

STATIC = "static-token-for-the-jwt-tests"
NOW = int(time.time())


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="module")
def jwt_worker(
    nats: NatsServer, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker trusting the issuer's JWK set and secret, and one static token; tenants
    required; every request logged (the tenant is in the line)."""
    proc = WorkerProcess(
        {
            "WORKER_NATS_URL": nats.url,
            "WORKER_HTTP_HOST": "127.0.0.1",
            "WORKER_HTTP_PORT": "0",
            "WORKER_STATE_DIR": str(tmp_path_factory.mktemp("state")),
            "WORKER_AGENTS_BUCKET": f"agents_{uuid.uuid4().hex[:10]}",
            "WORKER_AUTH_TOKENS": STATIC,
            "WORKER_TENANT_REQUIRED": "true",
            "WORKER_ACCESS_LOG": "true",
            **issuer.env(),
        }
    ).start()
    yield proc
    proc.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _forged(issuer: Issuer, other: Issuer, twin: Issuer) -> list[tuple[str, str, str]]:
    """(case, token, reason) for every way a token is refused."""
    head, body, sig = issuer.token(scopes="agents:write").split(".")
    _, _, twin_sig = twin.token(scopes="agents:write").split(".")
    claims = issuer.claims(scopes="agents:write")
    more = b64url(orjson.dumps(issuer.claims(scopes="admin agents:write")))
    return [
        ("expired", issuer.token(exp=NOW - 3600), "expired"),
        ("not yet valid", issuer.token(nbf=NOW + 3600), "not_yet_valid"),
        ("issued in the future", issuer.token(iat=NOW + 3600), "not_yet_valid"),
        ("wrong audience", issuer.token(aud="another-service"), "wrong_audience"),
        ("wrong issuer", issuer.token(iss="https://elsewhere.test"), "wrong_issuer"),
        ("no exp", issuer.token(exp=None), "missing_claim"),
        ("no audience", issuer.token(aud=None), "missing_claim"),
        ("no tenant", issuer.token(tenant=None), "no_tenant"),
        ("bad tenant", issuer.token(tenant="acme corp"), "bad_claim"),
        ("tampered claims", f"{head}.{more}.{sig}", "bad_signature"),
        ("another issuer's key, same kid", f"{head}.{body}.{twin_sig}", "bad_signature"),
        ("another issuer's key, its own kid", other.token(), "unknown_key"),
        (
            "alg none",
            forge({"alg": "none", "typ": "JWT"}, claims, hmac_key=None),
            "alg_none",
        ),
        ("no alg", forge({"typ": "JWT"}, claims, hmac_key=None), "alg_none"),
        (
            "public key as the HMAC secret",
            forge(
                {"alg": "HS256", "typ": "JWT", "kid": issuer.kid("rsa")},
                claims,
                hmac_key=issuer.public_pem("rsa"),
            ),
            "bad_signature",
        ),
        ("another secret", forge({"alg": "HS256"}, claims, hmac_key=b"y" * 32), "bad_signature"),
        (
            "an EC signature under the RSA key's kid",
            issuer.token(key="ec", headers={"kid": issuer.kid("rsa")}),
            "wrong_algorithm",
        ),
        ("HS512", forge({"alg": "HS512"}, claims, hmac_key=b"y" * 64), "wrong_algorithm"),
        ("malformed", "not.a.jwt", "malformed"),
        ("not a jwt at all", "neither-static-nor-jwt", "unknown_token"),
    ]


async def test_forged_tokens_are_refused_with_the_reason_and_reach_no_handler(
    jwt_worker: WorkerProcess,
    issuer: Issuer,
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    other = Issuer(tmp_path / "other", issuer="https://elsewhere.test", kid_prefix="other-")
    twin = Issuer(tmp_path / "twin")  # the same kids as ours, other keys
    url = jwt_worker.url + "/v1/agents"
    before = await metric(
        http,
        jwt_worker.url,
        "agentos_http_rejected_total",
        headers=bearer(STATIC),
        service="ai-worker",
        reason="invalid_token",
    )
    cases = _forged(issuer, other, twin)
    for case, token, reason in cases:
        status, body, headers = await call(
            http, "POST", url, json={"type": "echo"}, headers=bearer(token)
        )
        assert_error(status, body, headers, expect=401, code="invalid_token")
        assert body["error"]["details"] == {"reason": reason}, case
        challenge = headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="invalid_token", error_description="'), case
        assert challenge.count('"') == 4, challenge  # nothing of the token quoted back
    # Refused before any handler: no agent was created, and each is counted as rejected.
    status, listed, _ = await call(http, "GET", url, headers=bearer(STATIC))
    assert status == 200
    assert listed["agents"] == []
    after = await metric(
        http,
        jwt_worker.url,
        "agentos_http_rejected_total",
        headers=bearer(STATIC),
        service="ai-worker",
        reason="invalid_token",
    )
    assert after - before == len(cases)


async def test_the_right_tokens_are_accepted(
    jwt_worker: WorkerProcess, issuer: Issuer, http: aiohttp.ClientSession
) -> None:
    for key in ("rsa", "ec", "ed", "secret"):
        token = issuer.token(key=key, scopes="agents:write agents:invoke")
        status, agent, _ = await call(
            http,
            "POST",
            jwt_worker.url + "/v1/agents",
            json={"type": "echo"},
            headers=bearer(token),
        )
        assert status == 201, (key, agent)
        status, out, _ = await call(
            http,
            "POST",
            f"{jwt_worker.url}/v1/agents/{agent['id']}/invoke",
            json={"input": key},
            headers=bearer(token),
        )
        assert status == 200, out
        assert out["output"] == key
    # Clock skew within the leeway is forgiven.
    token = issuer.token(scopes="agents:read", nbf=int(time.time()) + 5)
    status, _, _ = await call(http, "GET", jwt_worker.url + "/v1/agents", headers=bearer(token))
    assert status == 200


def _request_for(op: Any) -> tuple[str, str]:
    """A request to ``op`` naming things that do not exist (no dead letter has that seq)."""
    path = op.path.replace("{seq}", "999999999").replace("{", "").replace("}", "-nope")
    return op.method, path


async def test_every_route_is_gated_by_its_scope(
    jwt_worker: WorkerProcess, issuer: Issuer, http: aiohttp.ClientSession
) -> None:
    for op in OPERATIONS:
        method, path = _request_for(op)
        url = jwt_worker.url + path
        if op.public:
            assert op.scope is None
            status, _, _ = await call(http, method, url)
            assert status not in (401, 403), op.operation_id
            continue
        if op in DOCUMENTS:
            assert op.scope is None  # any valid token reads the documents
            status, _, _ = await call(http, method, url, headers=bearer(issuer.token(scopes="")))
            assert status == 200, op.operation_id
            continue
        assert op.scope is not None, f"{op.operation_id} declares no scope"
        without = " ".join(sorted(ALL_SCOPES - {op.scope}))
        status, body, headers = await call(
            http, method, url, headers=bearer(issuer.token(scopes=without))
        )
        assert_error(status, body, headers, expect=403, code="insufficient_scope")
        assert body["error"]["details"] == {"scope": op.scope}
        assert headers["WWW-Authenticate"].startswith(
            f'Bearer error="insufficient_scope", scope="{op.scope}"'
        )
        # With the scope alone the request reaches its handler (which may well answer 4xx).
        status, body, _ = await call(
            http, method, url, headers=bearer(issuer.token(scopes=str(op.scope)))
        )
        assert status not in (401, 403, 500), (op.operation_id, body)
        # A static token holds every scope.
        status, body, _ = await call(http, method, url, headers=bearer(STATIC))
        assert status not in (401, 403, 500), (op.operation_id, body)


async def test_the_tenant_is_read_from_its_claim_and_logged(
    jwt_worker: WorkerProcess, issuer: Issuer, http: aiohttp.ClientSession
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    token = issuer.token(scopes="agents:read", tenant=tenant)
    status, _, _ = await call(http, "GET", jwt_worker.url + "/v1/agents", headers=bearer(token))
    assert status == 200

    def logged() -> bool:
        for line in list(jwt_worker.lines):
            if tenant in line:
                entry = orjson.loads(line)
                return bool(entry.get("tenant") == tenant and entry["endpoint"] == "/v1/agents")
        return False

    await wait_for(logged, what=f"an access log line with tenant {tenant}")


async def test_a_websocket_upgrade_takes_a_jwt(
    jwt_worker: WorkerProcess, issuer: Issuer, http: aiohttp.ClientSession
) -> None:
    token = issuer.token(scopes="agents:write agents:invoke")
    _, agent, _ = await call(
        http, "POST", jwt_worker.url + "/v1/agents", json={"type": "echo"}, headers=bearer(token)
    )
    url = f"{jwt_worker.url}/v1/agents/{agent['id']}/ws"
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    for kwargs in (
        {"headers": bearer(token)},
        {"protocols": ("agentos.v1", f"base64url.bearer.agentos.{encoded}")},
    ):
        async with http.ws_connect(url, **kwargs) as ws:
            await ws.send_str('{"input": "hi"}')
            while True:
                frame = orjson.loads((await ws.receive()).data)
                if frame.get("status") in ("completed", "failed"):
                    break
            assert frame["result"] == "hi"
    for token, status in (
        (issuer.token(scopes="agents:read"), 403),
        (issuer.token(scopes="agents:invoke", exp=NOW - 3600), 401),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers=bearer(token))
        assert refused.value.status == status


async def test_openapi_declares_the_scopes_of_every_operation(
    jwt_worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    status, spec, _ = await call(
        http, "GET", jwt_worker.url + "/openapi.json", headers=bearer(STATIC)
    )
    assert status == 200
    validate(spec)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    declared = schemes["jwt"]["flows"]["clientCredentials"]["scopes"]
    assert declared == {str(k): v for k, v in DESCRIPTIONS.items()}
    for op in OPERATIONS:
        security = spec["paths"][op.path][op.method.lower()]["security"]
        if op.public:
            assert security == []
            continue
        scopes = [] if op.scope is None else [str(op.scope)]
        assert security == [{"bearerAuth": []}, {"jwt": scopes}], op.operation_id
        assert set(scopes) <= set(declared)


async def test_a_pem_key_worker_refuses_its_public_key_as_an_hmac_secret(
    spawn_worker: SpawnWorker, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    issuer = Issuer(tmp_path / "issuer")
    w = spawn_worker(issuer.env(jwks=False, secret=False, pem=True))
    url = w.url + "/v1/agents"
    status, _, _ = await call(http, "GET", url, headers=bearer(issuer.token(key="rsa")))
    assert status == 200
    claims = issuer.claims()
    for hmac_key in (issuer.public_pem("rsa"), issuer.pem_file.read_bytes().strip()):
        forged = forge({"alg": "HS256", "typ": "JWT"}, claims, hmac_key=hmac_key)
        status, body, headers = await call(http, "GET", url, headers=bearer(forged))
        assert_error(status, body, headers, expect=401, code="invalid_token")
        assert body["error"]["details"] == {"reason": "wrong_algorithm"}
    # Static tokens are not configured here: a token that is no JWT is simply unknown.
    status, body, headers = await call(http, "GET", url, headers=bearer("whatever"))
    assert_error(status, body, headers, expect=401, code="invalid_token")
    # A key file that cannot be used stops the worker at start, naming the setting.
    bad = spawn_worker(
        {**issuer.env(jwks=False, secret=False), "WORKER_JWT_PUBLIC_KEY_FILE": str(tmp_path)},
        start=False,
    )
    with pytest.raises(RuntimeError, match="WORKER_JWT_PUBLIC_KEY_FILE"):
        bad.start()
