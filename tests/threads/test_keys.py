"""The key layout: every thread id and namespace maps to valid, distinct NATS KV keys."""

from __future__ import annotations

import pytest
from nats.js.kv import _is_key_valid

from worker.errors import BadRequest
from worker.threads import keys


@pytest.mark.parametrize("thread_id", ["a", "a.b", "a..b", ".a.", "-_.", "x" * 128, "0"])
def test_thread_ids_become_one_valid_token(thread_id: str) -> None:
    token = keys.thread_token(thread_id)
    assert "." not in token
    assert keys.thread_of(token) == thread_id
    for key in (keys.meta(thread_id), keys.lease(thread_id), keys.head(thread_id, "")):
        assert _is_key_valid(key)
    assert keys.thread_filter(thread_id) == f"{token}.>"


@pytest.mark.parametrize("ns", ["", "inner:1f0", "a:1|b:2", "ünï", "x" * 300])
def test_namespaces_round_trip(ns: str) -> None:
    token = keys.ns_token(ns)
    assert keys.ns_of(token) == ns
    key = keys.checkpoint("t.1", ns, "1f0a-b")
    assert _is_key_valid(key)
    assert keys.parse_checkpoint(key) == ("t.1", ns, "1f0a-b")
    assert keys.parse_checkpoint(keys.writes("t.1", ns, "1f0a-b")) is None


def test_distinct_threads_never_share_keys() -> None:
    assert len({keys.thread_token(t) for t in ["a.b", "a_b", "a-b", "ab", "a..b"]}) == 5
    with pytest.raises(BadRequest):
        keys.thread_token("a=b")  # "=" is not a thread id character: the escape is one-to-one
    assert keys.checkpoints_filter("a", None) == "a.cp.>"
    assert keys.checkpoints_filter(None, "") == "*.cp._.*"


@pytest.mark.parametrize("bad", ["", " ", "a b", "a*", "a>", "a/b", "x" * 129, "é", "a\n", None, 7])
def test_malformed_thread_ids_are_400(bad: object) -> None:
    with pytest.raises(BadRequest, match="invalid thread_id"):
        keys.check_thread_id(bad)  # type: ignore[arg-type]
