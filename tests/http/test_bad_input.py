"""Bad input gets a clear 4xx JSON error and loses nothing: never a 500."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import pytest

from tests.conftest import SpawnWorker
from tests.http.helpers import assert_error, call, metric
from worker.testing import WorkerProcess, wait_for


@pytest.fixture(scope="module")
async def echo_id(worker: WorkerProcess, http: aiohttp.ClientSession) -> str:
    _, body, _ = await call(http, "POST", worker.url + "/v1/agents", json={"type": "echo"})
    return str(body["id"])


@pytest.fixture(scope="module")
async def chat_id(worker: WorkerProcess, http: aiohttp.ClientSession) -> str:
    _, body, _ = await call(http, "POST", worker.url + "/v1/agents", json={"type": "chat"})
    return str(body["id"])


CREATE_CASES: list[tuple[str, Any, int, str, str | None]] = [
    # (case, raw body, status, code, a field named in details)
    ("malformed json", b'{"type": "echo",', 400, "malformed_json", None),
    ("empty body", b"", 400, "malformed_json", None),
    ("not an object", b"[1, 2]", 400, "validation_error", None),
    ("wrong type of type", b'{"type": 5}', 400, "validation_error", "type"),
    ("missing type", b'{"name": "x"}', 400, "validation_error", "type"),
    ("name not a string", b'{"type": "echo", "name": ["x"]}', 400, "validation_error", "name"),
    ("config not an object", b'{"type": "echo", "config": "x"}', 400, "validation_error", "config"),
    (
        "unknown top-level field",
        b'{"type": "echo", "colour": 1}',
        400,
        "validation_error",
        "colour",
    ),
    (
        "unknown config field",
        b'{"type": "chat", "config": {"temprature": 1}}',
        400,
        "validation_error",
        "config.temprature",
    ),
    (
        "bad provider",
        b'{"type": "chat", "config": {"model": {"provider": "nope"}}}',
        400,
        "validation_error",
        "config.model",
    ),
    (
        "bad duration",
        b'{"type": "steps", "config": {"step_delay": "soon"}}',
        400,
        "validation_error",
        "config.step_delay",
    ),
    (
        "out of range",
        b'{"type": "steps", "config": {"steps": 0}}',
        400,
        "validation_error",
        "config.steps",
    ),
    ("unknown agent type", b'{"type": "wizard"}', 400, "unknown_agent_type", None),
    ("invalid utf-8", b'{"type": "\xff"}', 400, "malformed_json", None),
]


@pytest.mark.parametrize(
    ("case", "raw", "status", "code", "field"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES]
)
async def test_create_battery(
    worker: WorkerProcess,
    http: aiohttp.ClientSession,
    case: str,
    raw: bytes,
    status: int,
    code: str,
    field: str | None,
) -> None:
    got, body, headers = await call(
        http,
        "POST",
        worker.url + "/v1/agents",
        data=raw,
        headers={
            "Content-Type": "application/json",
            "X-Request-ID": f"bad-{case.replace(' ', '-')}",
        },
    )
    assert_error(got, body, headers, expect=status, code=code)
    assert headers["X-Request-ID"] == f"bad-{case.replace(' ', '-')}"
    if field is not None:
        assert field in [d["field"] for d in body["error"]["details"]], body


async def test_invoke_battery(
    worker: WorkerProcess, http: aiohttp.ClientSession, echo_id: str, chat_id: str
) -> None:
    base = worker.url + "/v1/agents"
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", f"{base}/{chat_id}/invoke", {"input": 5}, 400, "validation_error"),
        ("POST", f"{base}/{chat_id}/invoke", {"input": ""}, 400, "validation_error"),
        ("POST", f"{base}/{echo_id}/invoke", {}, 400, "validation_error"),
        (
            "POST",
            f"{base}/{echo_id}/invoke",
            {"input": 1, "timeout": "soon"},
            400,
            "validation_error",
        ),
        ("POST", f"{base}/{echo_id}/invoke", {"input": 1, "timeout": -5}, 400, "validation_error"),
        ("POST", f"{base}/{echo_id}/invoke", {"input": 1, "extra": 1}, 400, "validation_error"),
        (
            "POST",
            f"{base}/0123456789abcdef0123456789abcdef/invoke",
            {"input": 1},
            404,
            "agent_not_found",
        ),
        ("POST", f"{base}/..%2F..%2Fetc/invoke", {"input": 1}, 404, "agent_not_found"),
        ("GET", f"{base}/nope", None, 404, "agent_not_found"),
        ("PATCH", f"{base}/nope", {"name": "x"}, 404, "agent_not_found"),
        (
            "PATCH",
            f"{base}/{chat_id}",
            {"config": {"model": {"provider": "x"}}},
            400,
            "validation_error",
        ),
        ("DELETE", f"{base}/nope", None, 404, "agent_not_found"),
        ("GET", worker.url + "/v2/nothing", None, 404, "not_found"),
        ("PUT", f"{base}/{echo_id}", {"name": "x"}, 405, "method_not_allowed"),
    ]
    for method, url, body, status, code in cases:
        got, out, headers = await call(http, method, url, json=body)
        assert_error(got, out, headers, expect=status, code=code)


async def test_oversized_body(
    worker: WorkerProcess, http: aiohttp.ClientSession, echo_id: str
) -> None:
    big = b'{"input": "' + b"x" * (2 << 20) + b'"}'
    status, body, headers = await call(
        http,
        "POST",
        f"{worker.url}/v1/agents/{echo_id}/invoke",
        data=io.BytesIO(big),
        headers={"Content-Type": "application/json"},
    )
    assert_error(status, body, headers, expect=413, code="payload_too_large")

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(40):
            yield b"x" * 65536

    async with http.post(f"{worker.url}/v1/agents/{echo_id}/invoke", data=chunks()) as resp:
        assert resp.status == 413
        out = await resp.json()
        assert out["error"]["code"] == "payload_too_large"


async def test_invoke_past_its_deadline(worker: WorkerProcess, http: aiohttp.ClientSession) -> None:
    _, agent, _ = await call(
        http,
        "POST",
        worker.url + "/v1/agents",
        json={"type": "steps", "config": {"steps": 20, "step_delay": "100ms"}},
    )
    status, body, headers = await call(
        http,
        "POST",
        f"{worker.url}/v1/agents/{agent['id']}/invoke",
        json={"input": "x", "timeout": 200_000_000},  # Go's 200*time.Millisecond
    )
    assert_error(status, body, headers, expect=504, code="deadline_exceeded")


async def test_missing_or_wrong_token(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker({"WORKER_AUTH_TOKENS": "s3cret,other"})
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic s3cret"},
        {"Authorization": "Bearer"},
    ):
        for method, path in (
            ("GET", "/v1/agents"),
            ("GET", "/metrics"),
            ("POST", "/create-agent"),
            ("GET", "/openapi.json"),
        ):
            status, body, got = await call(http, method, w.url + path, headers=headers)
            assert_error(status, body, got, expect=401, code="unauthorized")
            assert got["WWW-Authenticate"] == "Bearer"
    for path in ("/healthz", "/readyz"):
        status, _, _ = await call(http, "GET", w.url + path)
        assert status == 200
    for token in ("s3cret", "other"):
        status, _, _ = await call(
            http, "GET", w.url + "/v1/agents", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 200


async def _slow_agent(w: WorkerProcess, http: aiohttp.ClientSession, *, steps: int) -> str:
    """The invoke URL of a `steps` agent taking ``steps`` tenths of a second."""
    _, agent, _ = await call(
        http,
        "POST",
        w.url + "/v1/agents",
        json={"type": "steps", "config": {"steps": steps, "step_delay": "100ms"}},
    )
    return f"{w.url}/v1/agents/{agent['id']}/invoke"


async def _invocations(http: aiohttp.ClientSession, w: WorkerProcess, kind: str, n: int) -> bool:
    """Whether ``n`` invocations are ``kind`` (``in_flight`` or ``queued``) on ``w`` now."""
    name = f"agentos_http_invocations_{kind}"
    return await metric(http, w.url, name, service="ai-worker") == n


async def test_overload_is_503_with_retry_after(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker(
        {"WORKER_MAX_CONCURRENT_INVOCATIONS": "2", "WORKER_MAX_QUEUED_INVOCATIONS": "0"}
    )
    url = await _slow_agent(w, http, steps=10)
    slow = [asyncio.create_task(call(http, "POST", url, json={"input": i})) for i in range(2)]
    await wait_for(lambda: _invocations(http, w, "in_flight", 2), what="both slow runs started")
    status, body, headers = await call(http, "POST", url, json={"input": "third"})
    assert_error(status, body, headers, expect=503, code="overloaded")
    assert int(headers["Retry-After"]) >= 1
    assert [s for s, _, _ in await asyncio.gather(*slow)] == [200, 200]
    status, _, _ = await call(http, "POST", url, json={"input": "later"})
    assert status == 200


async def test_a_burst_waits_in_the_queue_up_to_its_bound_and_deadline(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker(
        {"WORKER_MAX_CONCURRENT_INVOCATIONS": "1", "WORKER_MAX_QUEUED_INVOCATIONS": "1"}
    )
    url = await _slow_agent(w, http, steps=5)
    running = asyncio.create_task(call(http, "POST", url, json={"input": "first"}))
    await wait_for(lambda: _invocations(http, w, "in_flight", 1), what="the first run started")
    queued = asyncio.create_task(call(http, "POST", url, json={"input": "second"}))
    await wait_for(lambda: _invocations(http, w, "queued", 1), what="the second one queued")
    # The queue (one place) is taken: the third is turned away at once.
    status, body, headers = await call(http, "POST", url, json={"input": "third"})
    assert_error(status, body, headers, expect=503, code="overloaded")
    _, metrics, _ = await call(http, "GET", w.url + "/metrics")
    assert 'agentos_http_invocations_queued{service="ai-worker"} 1.0' in metrics
    assert 'agentos_http_invocations_in_flight{service="ai-worker"} 1.0' in metrics
    # The queued one waits for the slot and then runs.
    assert [s for s, _, _ in await asyncio.gather(running, queued)] == [200, 200]
    # A request whose deadline ends while it waits is turned away, never started.
    await wait_for(lambda: _invocations(http, w, "in_flight", 0), what="the slot free again")
    running = asyncio.create_task(call(http, "POST", url, json={"input": "again"}))
    await wait_for(lambda: _invocations(http, w, "in_flight", 1), what="the next run started")
    status, body, headers = await call(http, "POST", url, json={"input": "x", "timeout": "100ms"})
    assert_error(status, body, headers, expect=503, code="overloaded")
    assert "within 0.1s" in body["error"]["message"]
    assert (await running)[0] == 200


async def test_cpu_bound_sync_runnable_does_not_stall_the_loop(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession, plugin_path: Any
) -> None:
    w = spawn_worker({"PYTHONPATH": str(plugin_path)})
    _, agent, _ = await call(
        http, "POST", w.url + "/v1/agents", json={"type": "spin", "config": {"seconds": 2}}
    )
    spin = asyncio.create_task(
        call(http, "POST", f"{w.url}/v1/agents/{agent['id']}/invoke", json={"input": None})
    )
    await wait_for(lambda: _invocations(http, w, "in_flight", 1), what="the spin started")
    # The spin holds a thread for 2 s; the loop must keep answering meanwhile. A loop it
    # stalled would answer once or twice, after the spin. (How fast it answers, in the worst
    # case a few GIL switches: bench.http.loopstall measures it.)
    answered = 0
    while not spin.done():
        status, _, _ = await call(http, "GET", w.url + "/healthz")
        assert status == 200
        answered += 1
        await asyncio.sleep(0.02)  # paces the probes; orders nothing
    status, out, _ = await spin
    assert status == 200
    assert out["output"].startswith("spun")
    assert answered >= 10


async def test_request_id_is_echoed_or_generated(
    worker: WorkerProcess, http: aiohttp.ClientSession
) -> None:
    _, _, headers = await call(
        http, "GET", worker.url + "/healthz", headers={"X-Request-ID": "abc-1"}
    )
    assert headers["X-Request-ID"] == "abc-1"
    _, _, headers = await call(
        http, "GET", worker.url + "/healthz", headers={"X-Request-ID": "bad id with spaces"}
    )
    assert headers["X-Request-ID"] != "bad id with spaces"
    assert len(headers["X-Request-ID"]) == 32
