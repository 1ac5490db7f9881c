"""Writing dead letters: what can never be processed, kept with its reason.

A dead letter's data is the original message, byte for byte; its reason, detail, attempts and
original subject travel in headers, so a replay republishes exactly what was first sent. Jobs
and callbacks both write here; listing and replaying are the jobs door's
(``worker.jobs.dead_letters``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import DEAD_LETTERS, NATS_MESSAGES

log = get_logger(__name__)

H_REASON = "Agentos-Dead-Reason"
H_DETAIL = "Agentos-Dead-Detail"
H_SUBJECT = "Agentos-Original-Subject"
H_ATTEMPTS = "Agentos-Attempts"
H_TASK = "Agentos-Task-Id"
H_AT = "Agentos-Dead-At"
OWN_HEADERS = frozenset({H_REASON, H_DETAIL, H_SUBJECT, H_ATTEMPTS, H_TASK, H_AT})
"""The headers a dead letter gets here; a replay does not carry them on."""
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


class DeadLetterWriter:
    """Publishes dead letters to ``{subject}.{reason}``."""

    def __init__(self, js: JetStreamContext, *, subject: str) -> None:
        self._js = js
        self._subject = subject
        # Every reason's series exists from the start, so increase() sees the first one.
        for reason in REASONS:
            DEAD_LETTERS.labels(reason)

    async def bury(
        self, msg: Msg, *, reason: str, detail: str, attempts: int, task_id: str = ""
    ) -> None:
        """Dead-letter ``msg`` as it was delivered: its data, its subject, its headers.

        The caller still acks ``msg``: only once this returns is the dead letter stored.
        """
        await self.add(
            reason=reason,
            detail=detail,
            original=msg.data,
            subject=msg.subject,
            attempts=attempts,
            task_id=task_id,
            headers=msg.headers,
        )

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
        """Keep ``original``, first sent to ``subject``, with why it died (awaits the stream's
        acknowledgement)."""
        hdrs = {
            k: v for k, v in (headers or {}).items() if k not in OWN_HEADERS and k != "Nats-Msg-Id"
        }
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
