"""What kind of failure a model provider call ended in, and whether trying again can help.

Providers raise their SDK's exceptions (``openai.APIStatusError``, ``openai.APITimeoutError``...).
They are recognised by duck typing and by the SDK modules already loaded, so this module imports
no optional SDK itself: an exception of a module that is not loaded cannot have been raised.
"""

from __future__ import annotations

import email.utils
import math
import sys
import time
from datetime import UTC
from typing import Literal, get_args

ErrorKind = Literal["connection", "timeout", "rate_limit", "server_error", "client_error", "other"]
"""``connection``: refused, reset or closed; ``timeout``: no answer in time (or 408);
``rate_limit``: 429; ``server_error``: 5xx; ``client_error``: another 4xx, which will fail
again; ``other``: anything else (a bug, a parse error)."""

ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)
TRANSIENT: frozenset[ErrorKind] = frozenset({"connection", "timeout", "rate_limit", "server_error"})
"""The kinds worth retrying, and by default the kinds a breaker counts."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries (``status_code``, or its ``response``'s)."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


# SDK exceptions by kind, as (module, class name); checked in this order (a timeout is also a
# connection error to openai and httpx).
_SDK_ERRORS: tuple[tuple[ErrorKind, str, str], ...] = (
    ("timeout", "openai", "APITimeoutError"),
    ("timeout", "httpx", "TimeoutException"),
    ("timeout", "httpx2", "TimeoutException"),
    ("connection", "openai", "APIConnectionError"),
    ("connection", "httpx", "TransportError"),
    ("connection", "httpx2", "TransportError"),
)


def classify(exc: BaseException) -> ErrorKind:
    """The kind of ``exc``."""
    status = status_of(exc)
    if status is not None and status >= 400:
        return _status_kind(status)
    if isinstance(exc, TimeoutError):
        return "timeout"
    for kind, module, name in _SDK_ERRORS:
        if _sdk_error(exc, module, name):
            return kind
    if isinstance(exc, ConnectionError | OSError):
        return "connection"
    return "other"


def _status_kind(status: int) -> ErrorKind:
    if status == 429:
        return "rate_limit"
    if status == 408:
        return "timeout"
    return "server_error" if status >= 500 else "client_error"


def is_transient(exc: BaseException) -> bool:
    """True when the same call may well succeed a little later."""
    return isinstance(exc, Exception) and classify(exc) in TRANSIENT


def _sdk_error(exc: BaseException, module: str, name: str) -> bool:
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(exc, cls)


def retry_after_hint(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait (``Retry-After``/``retry-after-ms``), if any."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    millis = _number(getter("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = getter("retry-after")
    if isinstance(value, int | float):  # a test double's headers may hold numbers
        value = str(value)
    return parse_retry_after(value if isinstance(value, str) else None, now=now)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """An HTTP ``Retry-After`` value as seconds from ``now`` (default: the current time).

    Either form of RFC 9110: delay-seconds (a fraction is accepted too) or an HTTP-date; a
    date in the past is 0. None when absent or unreadable.
    """
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are always in UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _number(value: object) -> float | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
