"""Go ``time.Duration`` on the wire.

Go's ``encoding/json`` writes a ``time.Duration`` as an integer of nanoseconds, and Go people
write durations as ``"30s"`` or ``"1h2m3.5s"``. No maintained Python library parses and prints
exactly Go's forms, so the two small functions below follow ``time.ParseDuration`` and
``Duration.String`` from Go's standard library.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, what Go prints
    "\u03bcs": 1_000,  # Greek mu, which Go also accepts
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d*)(?:\.(\d*))?([a-z\u00b5\u03bc]+)")
MAX_NS = 2**63 - 1


def parse_go_duration(text: str) -> int:
    """Parse Go's duration syntax (``"300ms"``, ``"-1.5h"``, ``"2h45m"``) into nanoseconds."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None or (not m.group(1) and not m.group(2)):
            raise ValueError(f"invalid duration {text!r}")
        whole, frac, unit = m.groups()
        if unit not in _UNITS_NS:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        scale = _UNITS_NS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // 10 ** len(frac)
        total += value
        pos = m.end()
    if total > MAX_NS:
        raise ValueError(f"duration {text!r} overflows Go's time.Duration")
    return sign * total


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Print ``v / 10**prec`` without trailing zeros; return the text and ``v // 10**prec``."""
    whole, frac = divmod(v, 10**prec)
    digits = f"{frac:0{prec}d}".rstrip("0")
    return ("." + digits if digits else ""), whole


def format_go_duration(ns: int) -> str:
    """Print nanoseconds as Go's ``Duration.String()`` does (``"2.5s"``, ``"1m30s"``)."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u < 1_000:
            out = f"{u}ns"
        elif u < 1_000_000:
            frac, whole = _fmt_frac(u, 3)
            out = f"{whole}{frac}\u00b5s"
        else:
            frac, whole = _fmt_frac(u, 6)
            out = f"{whole}{frac}ms"
    else:
        frac, secs = _fmt_frac(u, 9)
        out = f"{secs % 60}{frac}s"
        mins = secs // 60
        if mins:
            out = f"{mins % 60}m" + out
            hours = mins // 60
            if hours:
                out = f"{hours}h" + out
    return "-" + out if neg else out


def seconds_to_go(seconds: float) -> str:
    """Format a duration in seconds the way Go reports it."""
    return format_go_duration(round(seconds * 1_000_000_000))


def _wire_to_seconds(value: Any) -> Any:
    """JSON bodies: an integer is nanoseconds (Go's encoding); a string is Go's syntax."""
    if isinstance(value, bool):
        raise ValueError("a duration is an integer of nanoseconds or a string like '30s'")
    if isinstance(value, int):
        return value / 1_000_000_000
    if isinstance(value, str):
        return parse_go_duration(value) / 1_000_000_000
    if isinstance(value, float) and value.is_integer():
        return value / 1_000_000_000
    # pydantic turns ValueError (not TypeError) into a validation error.
    raise ValueError("a duration is an integer of nanoseconds or a string like '30s'")


def _setting_to_seconds(value: Any) -> Any:
    """Settings: a bare number is seconds (people type ``30``), a string may be Go's syntax."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return parse_go_duration(value) / 1_000_000_000
    raise ValueError("a duration is a number of seconds or a string like '30s'")


_WIRE_SCHEMA = {
    "oneOf": [
        {"type": "integer", "description": "nanoseconds, as Go's encoding/json writes it"},
        {"type": "string", "description": "Go duration syntax", "example": "30s"},
    ]
}

GoDuration = Annotated[
    float,
    BeforeValidator(_wire_to_seconds),
    PlainSerializer(seconds_to_go, return_type=str),
    WithJsonSchema(_WIRE_SCHEMA, mode="validation"),
    WithJsonSchema({"type": "string", "example": "2.5s"}, mode="serialization"),
]
"""A duration from a JSON body, held as float seconds, reported in Go's string form."""

ReportedDuration = Annotated[
    float,
    PlainSerializer(seconds_to_go, return_type=str),
    WithJsonSchema({"type": "string", "example": "2.5s"}),
]
"""A duration the worker reports: float seconds, written in Go's ``Duration.String()`` form."""

SettingDuration = Annotated[float, BeforeValidator(_setting_to_seconds)]
"""A duration from the environment or a flag, held as float seconds."""
