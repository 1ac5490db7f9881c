"""Callbacks are signed per Standard Webhooks; receivers verify with the library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.jobs.receiver import SECRET
from worker.callbacks.signing import CallbackSigner


def test_signature_verifies_and_tampering_fails() -> None:
    body = b'{"task_id":"t1","status":"completed","result":"ok"}'
    headers = CallbackSigner(SECRET).headers("msg_t1", body)
    assert headers["webhook-id"] == "msg_t1"
    assert Webhook(SECRET).verify(body, headers)["result"] == "ok"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"ok", b"ko"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)


def test_stale_timestamps_are_rejected_by_receivers() -> None:
    body = b"{}"
    old = datetime.now(UTC) - timedelta(minutes=10)
    headers = CallbackSigner(SECRET).headers("msg_t2", body, now=old)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, headers)


def test_without_a_secret_there_is_no_signature() -> None:
    headers = CallbackSigner(None).headers("msg_t3", b"{}")
    assert "webhook-signature" not in headers
    assert headers["webhook-timestamp"].isdigit()
