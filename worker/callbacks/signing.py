"""Standard Webhooks headers for a callback (signed with the ``standardwebhooks`` library)."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


class CallbackSigner:
    """Builds ``webhook-id``, ``webhook-timestamp`` and (with a secret) ``webhook-signature``."""

    def __init__(self, secret: str | None) -> None:
        self._webhook = Webhook(secret) if secret else None

    def headers(
        self, webhook_id: str, body: bytes, *, now: datetime | None = None
    ) -> dict[str, str]:
        """The headers for one delivery attempt (a fresh timestamp, the same id every time)."""
        at = now or datetime.now(UTC)
        out = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "Content-Type": "application/json",
        }
        if self._webhook is not None:
            out["webhook-signature"] = self._webhook.sign(webhook_id, at, body.decode())
        return out
