"""Request models decoded the way Go's ``encoding/json`` decodes into a struct.

Go matches object keys to struct fields case-insensitively (an exact match wins), so an
untagged Go struct sends ``{"Type": "chat"}`` for a field ``type``. Pydantic has no
case-insensitive aliases, hence the small ``before`` validator here.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, model_validator

_FOLDED: dict[type[BaseModel], dict[str, str]] = {}


class GoModel(BaseModel):
    """Base of every inbound wire model: case-insensitive keys, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        folded = _FOLDED.get(cls)
        if folded is None:
            folded = {name.lower(): name for name in cls.model_fields}
            _FOLDED[cls] = folded
        out: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str) or key in cls.model_fields:
                out[key] = value
                continue
            target = folded.get(key.lower(), key)
            # An exact key wins over a case-folded one, as in Go.
            if target not in out or target not in data:
                out[target] = value
        return out


def json_fallback(value: Any) -> Any:
    # Agent outputs may be LangChain objects (messages, documents): pydantic models dump, the
    # rest is shown as text rather than failing the response.
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def dumps(obj: Any) -> bytes:
    """Serialise to JSON bytes (orjson: datetimes as RFC 3339, which Go's time.Time reads)."""
    return orjson.dumps(obj, default=json_fallback, option=orjson.OPT_UTC_Z)
