"""The dead-letter stream as operators see it: listed, and replayed to where each letter was
first sent (``worker.broker.dead_letters`` writes them, with the headers read here)."""

from __future__ import annotations

import base64
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import BaseModel

from worker.broker.dead_letters import (
    H_AT,
    H_ATTEMPTS,
    H_DETAIL,
    H_REASON,
    H_SUBJECT,
    H_TASK,
    OWN_HEADERS,
)
from worker.telemetry.logs import get_logger

log = get_logger(__name__)

H_REPLAYED = "Agentos-Replayed-From"


class DeadLetter(BaseModel):
    """A dead letter as operators see it (``GET /v1/dead-letters``)."""

    seq: int
    reason: str
    detail: str
    task_id: str
    subject: str
    attempts: int
    dead_at: str
    original: str
    original_base64: bool = False


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetter]
    next_seq: int | None = None


class ReplayResult(BaseModel):
    seq: int
    republished_to: str


class DeadLetters:
    """List and replay dead letters (``worker.broker.dead_letters`` writes them)."""

    def __init__(self, *, js: JetStreamContext, stream: str, subject: str) -> None:
        self._js = js
        self._stream = stream
        self._subject = subject

    async def list(self, *, after_seq: int = 0, limit: int = 100) -> DeadLetterList:
        """Dead letters with a sequence above ``after_seq``, oldest first."""
        out: list[DeadLetter] = []
        seq = after_seq + 1
        while len(out) < limit:
            try:
                raw = await self._js.get_msg(
                    self._stream, seq, subject=f"{self._subject}.>", next=True
                )
            except NotFoundError:
                return DeadLetterList(dead_letters=out, next_seq=None)
            out.append(_view(raw.seq or 0, raw.headers or {}, raw.data or b""))
            seq = (raw.seq or seq) + 1
        return DeadLetterList(dead_letters=out, next_seq=out[-1].seq if out else None)

    async def get_raw(self, seq: int) -> tuple[dict[str, str], bytes]:
        """Headers and data of dead letter ``seq`` (``NotFoundError`` if gone)."""
        raw = await self._js.get_msg(self._stream, seq)
        return dict(raw.headers or {}), raw.data or b""

    async def replay(self, seq: int) -> ReplayResult:
        """Republish dead letter ``seq`` to its original subject, then remove it."""
        headers, data = await self.get_raw(seq)
        subject = headers.get(H_SUBJECT, "")
        if not subject:
            raise ValueError(f"dead letter {seq} has no original subject")
        out_headers: dict[str, Any] = {
            k: v for k, v in headers.items() if k not in OWN_HEADERS and not k.startswith("Nats-")
        }
        out_headers[H_REPLAYED] = str(seq)
        await self._js.publish(subject, data, headers=out_headers)
        await self._js.delete_msg(self._stream, seq)
        log.info("dead letter replayed", seq=seq, subject=subject)
        return ReplayResult(seq=seq, republished_to=subject)


def _view(seq: int, headers: dict[str, str], data: bytes) -> DeadLetter:
    try:
        original, b64 = data.decode(), False
    except UnicodeDecodeError:
        original, b64 = base64.b64encode(data).decode(), True
    return DeadLetter(
        seq=seq,
        reason=headers.get(H_REASON, ""),
        detail=headers.get(H_DETAIL, ""),
        task_id=headers.get(H_TASK, ""),
        subject=headers.get(H_SUBJECT, ""),
        attempts=int(headers.get(H_ATTEMPTS, "0") or 0),
        dead_at=headers.get(H_AT, ""),
        original=original,
        original_base64=b64,
    )
