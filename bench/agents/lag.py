"""What a conversation driver records: each token's lag, from the provider's send to here.

The fake provider writes each token as the time it sent it (``time.time_ns()`` and a space,
``stamped_tokens``); a driver on the same host subtracts that from the time it receives the
token. A frame the worker coalesced holds several tokens, each counted with its own stamp.
Only tokens received inside the measured window count. Both drivers (the worker's clients and
the floor) print the same ``Summary`` as one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Schedule:
    """When the conversations start (spread over ``ramp`` seconds from ``start``) and the
    window whose tokens are measured; every conversation stops at ``window_end``. Times are
    ``time.time()`` seconds, shared by the processes of one host."""

    start: float
    ramp: float
    window_start: float
    window_end: float

    def start_of(self, index: int, count: int) -> float:
        """When conversation ``index`` of ``count`` starts its first turn."""
        return self.start + self.ramp * index / max(1, count)

    @classmethod
    def read(cls) -> Schedule:
        """The schedule, as one JSON line on stdin (sent once the driver said ``warm``)."""
        line = sys.stdin.readline()
        if not line:
            raise SystemExit("no schedule on stdin")
        return cls(**json.loads(line))


@dataclass
class Recorder:
    """Token lags (ms) inside the window, turns, errors."""

    window_start_ns: int = 0
    window_end_ns: int = 0
    # An array of doubles, not a list of floats: the floor records in the process it measures,
    # whose RSS should not grow by 32 bytes a token for the bench's own bookkeeping.
    lags: array[float] = field(default_factory=lambda: array("d"))
    turns: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def measure(self, schedule: Schedule) -> None:
        """Count from now on the tokens received in ``schedule``'s window."""
        self.window_start_ns = int(schedule.window_start * 1e9)
        self.window_end_ns = int(schedule.window_end * 1e9)

    def tokens(self, text: str) -> None:
        """Stamped tokens (one or several, coalesced) received now."""
        now = time.time_ns()
        if not self.window_start_ns <= now < self.window_end_ns:
            return
        for stamp in text.split():
            if stamp.isdigit():
                self.lags.append((now - int(stamp)) / 1e6)

    def turn_done(self) -> None:
        if self.window_start_ns <= time.time_ns() < self.window_end_ns:
            self.turns += 1

    def error(self, what: str) -> None:
        """A turn that failed (counted inside the window; a few kept to print)."""
        if self.window_start_ns <= time.time_ns() < self.window_end_ns:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(what[:300])

    def summary(self) -> Summary:
        ordered = sorted(self.lags)
        return Summary(
            tokens=len(ordered),
            p50_ms=_pct(ordered, 0.50),
            p99_ms=_pct(ordered, 0.99),
            max_ms=ordered[-1] if ordered else 0.0,
            turns=self.turns,
            errors=self.errors,
            error_samples=self.error_samples,
        )


@dataclass
class Summary:
    """One driver's figures over the window."""

    tokens: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    turns: int
    errors: int
    error_samples: list[str] = field(default_factory=list)

    def dump(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def load(cls, data: dict[str, Any]) -> Summary:
        return cls(**data)


def _pct(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
