"""The dead-letter stream: what can never be processed, kept with its reason, listable and
replayable by operators.

A dead letter's data is the original message, byte for byte; its reason, detail, attempts and
original subject travel in headers, so a replay republishes exactly what was first sent.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import BaseModel

from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import DEAD_LETTERS, NATS_MESSAGES

log = get_logger(__name__)

H_REASON = "Agentos-Dead-Reason"
H_DETAIL = "Agentos-Dead-Detail"
H_SUBJECT = "Agentos-Original-Subject"
H_ATTEMPTS = "Agentos-Attempts"
H_TASK = "Agentos-Task-Id"
H_AT = "Agentos-Dead-At"
H_REPLAYED = "Agentos-Replayed-From"
REASONS = (
    "malformed_json",
    "invalid_message",
    "unknown_type",
    "unknown_agent",
    "invalid_input",
    "callback_refused",
    "max_deliveries",
    "callback_rejected",
    "callback_expired",
    "callback_invalid",
)
"""Why messages die; each is also the subject token of its dead letters."""
_OWN = {H_REASON, H_DETAIL, H_SUBJECT, H_ATTEMPTS, H_TASK, H_AT}


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
    """Add, list and replay dead letters."""

    def __init__(self, *, js: JetStreamContext, stream: str, subject: str) -> None:
        self._js = js
        self._stream = stream
        self._subject = subject
        # Every reason's series exists from the start, so increase() sees the first one.
        for reason in REASONS:
            DEAD_LETTERS.labels(reason)

    async def add(
        self,
        *,
        reason: str,
        detail: str,
        original: bytes,
        subject: str,
        attempts: int,
        task_id: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Keep ``original`` with why it died (awaits the stream's acknowledgement)."""
        hdrs = {k: v for k, v in (headers or {}).items() if k not in _OWN and k != "Nats-Msg-Id"}
        hdrs.update(
            {
                H_REASON: reason,
                # Header values are single lines.
                H_DETAIL: " ".join(detail.split())[:1000],
                H_SUBJECT: subject,
                H_ATTEMPTS: str(attempts),
                H_TASK: task_id,
                H_AT: datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )
        await self._js.publish(f"{self._subject}.{reason}", original, headers=hdrs)
        DEAD_LETTERS.labels(reason).inc()
        NATS_MESSAGES.labels(subject, "dead_letter").inc()
        log.warning("dead letter", reason=reason, detail=detail, task_id=task_id, subject=subject)

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
            k: v for k, v in headers.items() if k not in _OWN and not k.startswith("Nats-")
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
