"""Which provider errors are transient, and what a provider asked us to wait."""

from __future__ import annotations

import email.utils

import openai
import pytest

try:  # the HTTP client of the openai SDK: httpx2 in recent versions, httpx before
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs
    import httpx  # type: ignore[no-redef]

from worker.agents.registry import AgentTypeRegistry
from worker.errors import BadRequest
from worker.resilience.breaker import BreakerOpen
from worker.resilience.classify import (
    classify,
    is_transient,
    parse_retry_after,
    retry_after_hint,
)

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def _status(code: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx.Response(code, headers=headers, request=REQUEST)
    return openai.APIStatusError("failed", response=response, body=None)


@pytest.mark.parametrize(
    ("exc", "kind", "transient"),
    [
        (_status(429), "rate_limit", True),
        (_status(500), "server_error", True),
        (_status(503), "server_error", True),
        (_status(408), "timeout", True),
        (_status(400), "client_error", False),
        (_status(401), "client_error", False),
        (_status(404), "client_error", False),
        (openai.APITimeoutError(request=REQUEST), "timeout", True),
        (openai.APIConnectionError(request=REQUEST), "connection", True),
        (TimeoutError(), "timeout", True),
        (ConnectionResetError(), "connection", True),
        (ValueError("a bug"), "other", False),
        (BreakerOpen("x", retry_after=1), "other", False),
    ],
)
def test_classify(exc: BaseException, kind: str, transient: bool) -> None:
    assert classify(exc) == kind
    assert is_transient(exc) is transient


def test_retry_after_forms() -> None:
    assert retry_after_hint(_status(429, {"Retry-After": "7"})) == 7
    assert retry_after_hint(_status(429, {"Retry-After": "0.5"})) == 0.5
    assert retry_after_hint(_status(429, {"retry-after-ms": "250"})) == 0.25
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_hint(_status(503, {"Retry-After": date}), now=1_000_000) == 30
    assert retry_after_hint(_status(429, {"Retry-After": "soon"})) is None
    assert retry_after_hint(_status(429)) is None
    assert retry_after_hint(ValueError()) is None


def test_parse_retry_after() -> None:
    """The one Retry-After parser, which callbacks use too."""
    assert parse_retry_after("120") == 120
    assert parse_retry_after("-5") == 0
    assert parse_retry_after("inf") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("") is None
    # "-0000" makes a naive datetime: an HTTP date is UTC all the same.
    assert parse_retry_after("Mon, 12 Jan 1970 13:46:40 -0000", now=1_000_000 - 30) == 30
    assert parse_retry_after(email.utils.formatdate(1_000_000, usegmt=True), now=2e6) == 0


def test_bad_resilience_config_is_a_400() -> None:
    registry = AgentTypeRegistry.discover()
    for bad in (
        {"breaker": {"fail_max": 0}},
        {"breaker": {"count": ["gremlins"]}},
        {"retry": {"max_attempts": 0}},
        {"retry": {"backoff": "1s"}},
    ):
        with pytest.raises(BadRequest):
            registry.build("chat", {"model": {"provider": "openai", **bad}})
    with pytest.raises(BadRequest):
        registry.build("chat", {"fallbacks": [{"provider": "basic", "answer": ""}]})
