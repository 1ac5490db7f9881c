"""Dead-lettering a delivered message: its bytes, its subject and headers, and why it died."""

from __future__ import annotations

import uuid

from nats.aio.client import Client
from prometheus_client import REGISTRY

from tests.broker.conftest import MakeQueue
from worker.broker.dead_letters import (
    H_AT,
    H_ATTEMPTS,
    H_DETAIL,
    H_REASON,
    H_SUBJECT,
    H_TASK,
    DeadLetterWriter,
)


def _buried(reason: str) -> float:
    return REGISTRY.get_sample_value("agentos_dead_letters_total", {"reason": reason}) or 0.0


async def test_bury_keeps_the_message_as_delivered_with_why(
    nc: Client, make_queue: MakeQueue
) -> None:
    js = nc.jetstream()
    queue = await make_queue()
    dlq = f"dlq.{uuid.uuid4().hex[:8]}"
    dlq_stream = f"DLQ_{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=dlq_stream, subjects=[f"{dlq}.>"])
    try:
        data = b'\xff{"not": "utf-8 at all"'
        await js.publish(
            queue.subject,
            data,
            headers={"Nats-Msg-Id": "first", "traceparent": "00-abc-def-01", H_REASON: "forged"},
        )
        sub = await js.pull_subscribe_bind(durable=queue.durable, stream=queue.stream)
        (msg,) = await sub.fetch(1, timeout=5)
        before = _buried("invalid_message")

        writer = DeadLetterWriter(js, subject=dlq)
        await writer.bury(
            msg, reason="invalid_message", detail="line one\nline  two", attempts=3, task_id="t-1"
        )

        dead = await js.get_msg(dlq_stream, 1)
        assert dead.subject == f"{dlq}.invalid_message"
        assert dead.data == data  # byte for byte
        headers = dead.headers or {}
        assert headers[H_REASON] == "invalid_message"  # its own, not the forged one
        assert headers[H_DETAIL] == "line one line two"  # header values are single lines
        assert headers[H_SUBJECT] == queue.subject
        assert headers[H_ATTEMPTS] == "3"
        assert headers[H_TASK] == "t-1"
        assert headers[H_AT]
        assert headers["traceparent"] == "00-abc-def-01"  # the message's own headers go along
        assert "Nats-Msg-Id" not in headers  # else the stream could drop a second dead letter
        assert _buried("invalid_message") == before + 1
    finally:
        await js.delete_stream(dlq_stream)
