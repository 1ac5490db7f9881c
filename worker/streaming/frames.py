"""Frames of CONTRACT section 3: what a run reports, and the form they travel in.

A run produces ``Draft``s (status, progress, message, partial result); the writer gives each a
``seq`` as it publishes it. Readers get ``WireFrame``s: the published JSON bytes, sent on as they
are, with the few fields the streaming code needs to route them parsed once.

A ``processing`` frame may name the agent step it reports in ``event`` (CONTRACT section 6):
``token``, ``tool_start``, ``tool_end``, ``tool_error``, ``node`` or ``interrupt``, with the
step's details in ``data``. Both keys are left out when unset, so a frame without them reads as
section 3 says.

A final frame carries what the run spent (``usage`` and ``time_to_first_token``, CONTRACT
section 7), when the worker counts it.

Coalescing (for a reader that fell behind) merges consecutive ``processing`` frames into one:
it keeps the newest frame's ``seq``, ``progress``, ``message`` and ``ts``, joins text
``partial_result``s in order (a non-text one keeps the newest), and says in ``coalesced`` how
many frames it stands for, so ``seq - coalesced + 1`` is the first of them. Only plain and
``token`` frames coalesce (a merged frame is a ``token`` frame only if all its parts were): a
tool, node or interrupt frame is one step a reader needs whole, so it is never merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from worker.gojson import dumps

STARTED = "started"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"
"""The run stopped to ask a person (LangGraph's ``interrupt()``); its thread waits for the
answer (CONTRACT section 6). Final like the others: the run is over."""
FINAL = frozenset({COMPLETED, FAILED, CANCELLED, INTERRUPTED})

FrameEvent = Literal["token", "tool_start", "tool_end", "tool_error", "node", "interrupt"]
"""The values of a frame's ``event`` (CONTRACT section 6)."""
TOKEN: Final = "token"  # noqa: S105 - an event name, not a secret
TOOL_START: Final = "tool_start"
TOOL_END: Final = "tool_end"
TOOL_ERROR: Final = "tool_error"
NODE: Final = "node"
INTERRUPT: Final = "interrupt"


def coalescible(status: str, event: str | None) -> bool:
    """Whether a frame may be merged with its neighbours: a plain or ``token`` ``processing``
    frame (``started``, final and step frames are always kept whole)."""
    return status == PROCESSING and (event is None or event == TOKEN)


def now_ts() -> str:
    """The current time as the frames carry it: RFC 3339, UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> float:
    """A frame's ``ts`` as POSIX seconds (0.0 if it cannot be read)."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 0.0


class _Kind:
    """What a draft and a published frame both tell from their ``status`` and ``event``."""

    __slots__ = ()
    status: str
    event: str | None

    @property
    def final(self) -> bool:
        """True for ``completed``, ``failed``, ``cancelled`` and ``interrupted``."""
        return self.status in FINAL

    @property
    def coalescible(self) -> bool:
        """True for a plain or ``token`` ``processing`` frame (see ``coalescible``)."""
        return coalescible(self.status, self.event)


@dataclass(slots=True, kw_only=True)
class Draft(_Kind):
    """A frame before publication: everything but ``task_id``, ``seq`` and ``attempt``."""

    status: str
    progress: int
    message: str
    partial_result: Any = None
    result: Any = None
    error: dict[str, str] | None = None
    event: FrameEvent | None = None
    data: dict[str, Any] | None = None
    interrupt: Any = None
    """On an ``interrupted`` frame: what the run asks."""
    spent: dict[str, Any] | None = None
    """On a final frame: what the run spent (``usage``, and ``time_to_first_token`` when it
    streamed tokens: CONTRACT section 7), keys of the frame."""
    ts: str = field(default_factory=now_ts)
    coalesced: int = 1

    def absorb(self, newer: Draft) -> None:
        """Coalesce ``newer`` (a later coalescible draft) into this coalescible one."""
        self.partial_result = merge_partial(self.partial_result, newer.partial_result)
        self.progress, self.message, self.ts = newer.progress, newer.message, newer.ts
        if self.event != newer.event:  # tokens and plain progress together: plain
            self.event = None
        self.coalesced += newer.coalesced

    def encode(self, *, task_id: str, seq: int, attempt: int) -> bytes:
        """The published JSON of this draft as frame ``seq``."""
        body: dict[str, Any] = {
            "task_id": task_id,
            "seq": seq,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "partial_result": self.partial_result,
            "ts": self.ts,
            "attempt": attempt,
        }
        if self.status == COMPLETED:
            body["result"] = self.result
        elif self.status == INTERRUPTED:
            body["interrupt"] = self.interrupt
        elif self.error is not None:
            body["error"] = self.error
        if self.event is not None:
            body["event"] = self.event
        if self.data is not None:
            body["data"] = self.data
        if self.spent is not None:
            body.update(self.spent)
        if self.coalesced > 1:
            body["coalesced"] = self.coalesced
        return dumps(body)


def merge_partial(older: Any, newer: Any) -> Any:
    """Two partial results as one: text joins in order, anything else keeps the newest."""
    if isinstance(older, str) and isinstance(newer, str):
        return older + newer
    return older if newer is None else newer


class WireFrame(_Kind):
    """A published frame as readers pass it on: its bytes, plus the routing fields."""

    __slots__ = (
        "_body",
        "_data",
        "_parts",
        "attempt",
        "coalesced",
        "event",
        "private",
        "seq",
        "size",
        "sseq",
        "status",
        "ts",
    )

    def __init__(self, data: bytes, body: dict[str, Any], *, sseq: int) -> None:
        self._data: bytes | None = data
        self._body = body
        self._parts: list[str] | None = None
        self.sseq = sseq
        self.seq = int(body.get("seq", 0))
        self.status = str(body.get("status", ""))
        self.attempt = int(body.get("attempt") or 1)
        self.coalesced = int(body.get("coalesced") or 1)
        event = body.get("event")
        self.event = event if isinstance(event, str) else None
        self.ts = parse_ts(body.get("ts", ""))
        self.size = len(data)
        # Readers of one feed share frame objects; only a private copy may be coalesced into.
        self.private = False

    def clone(self) -> WireFrame:
        """A copy of this frame that one reader may coalesce into."""
        other = WireFrame.__new__(WireFrame)
        for name in WireFrame.__slots__:
            setattr(other, name, getattr(self, name))
        if self._parts is not None:
            other._parts = list(self._parts)
        other.private = True
        return other

    @classmethod
    def parse(cls, data: bytes, *, sseq: int = 0) -> WireFrame:
        """Read a published frame (``ValueError`` if it is not one)."""
        body = orjson.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("seq"), int):
            raise ValueError("not a frame")
        return cls(data, body, sseq=sseq)

    @property
    def first_seq(self) -> int:
        """The first ``seq`` this frame stands for (itself unless coalesced)."""
        return self.seq - self.coalesced + 1

    @property
    def data(self) -> bytes:
        """The JSON to send (re-encoded once if frames were coalesced into this one)."""
        if self._data is None:
            body = dict(self._body)
            if self._parts is not None:
                body["partial_result"] = "".join(self._parts)
            body["coalesced"] = self.coalesced
            self._data = dumps(body)
        return self._data

    def absorb(self, newer: WireFrame) -> None:
        """Coalesce ``newer`` (a later coalescible frame) into this coalescible one.

        Text parts are kept in a list and joined once at send time, so merging many small
        tokens costs linear time, not quadratic.
        """
        older_partial = self._body.get("partial_result")
        newer_partial = newer._body.get("partial_result")
        if self._parts is None and isinstance(older_partial, str):
            self._parts = [older_partial]
        if self._parts is not None and isinstance(newer_partial, str):
            self._parts.append(newer_partial)
            self.size += len(newer_partial)
        elif newer_partial is not None:
            self._parts = None
            self.size = max(self.size, newer.size)
        body = dict(newer._body)
        if self._parts is None and newer_partial is None:
            body["partial_result"] = older_partial
        if self.event != newer.event:  # tokens and plain progress together: plain
            body.pop("event", None)
            self.event = None
        self._body = body
        self.seq, self.ts, self.sseq = newer.seq, newer.ts, newer.sseq
        self.coalesced += newer.coalesced
        self._data = None
