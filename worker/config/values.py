"""How settings' values are read: the variables' prefix, comma-separated entries, and the
import paths some list settings name (``ImportRef``, e.g. ``WORKER_AGENT_TYPES``), with
``ConfigError`` for one that does not import when the worker starts, and ``describe_errors``
for a bad value: the message that names the variable and the flag."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, ValidationError

ENV_PREFIX = "WORKER_"
"""Every setting's variable is this followed by the field's name in capitals."""


def split_csv(value: object) -> object:
    """A comma-separated string as its trimmed, non-empty parts; anything else as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ConfigError(Exception):
    """A setting's value cannot be used, found at start after parsing (an import path that
    does not import). The message names the variable and the entry; start-up stops."""


_IMPORT_REF = re.compile(
    r"^(?P<name>[A-Za-z0-9_-]{1,64})=(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r":(?P<attribute>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$"
)


class ImportRef(BaseModel):
    """One ``name=package.module:attribute`` entry of a list setting (``WORKER_AGENT_TYPES``)."""

    model_config = ConfigDict(frozen=True)
    name: str
    module: str
    attribute: str

    def __str__(self) -> str:
        return f"{self.name}={self.module}:{self.attribute}"


def import_refs(value: object) -> object:
    """A list setting's ``name=package.module:attribute`` entries as ``ImportRef`` fields
    (``ValueError`` for an entry of another form, or a name given twice)."""
    entries = split_csv(value)
    if not isinstance(entries, list):
        return entries
    refs: list[object] = []
    for entry in entries:
        if not isinstance(entry, str):
            refs.append(entry)
            continue
        match = _IMPORT_REF.match(entry.replace(" ", ""))
        if match is None:
            raise ValueError(f"entry {entry!r} is not name=package.module:attribute")
        refs.append(match.groupdict())
    names = [r["name"] if isinstance(r, dict) else getattr(r, "name", None) for r in refs]
    twice = sorted({n for n in names if names.count(n) > 1 and n is not None})
    if twice:
        raise ValueError(f"name {twice[0]!r} is given twice")
    return refs


def describe_errors(exc: ValidationError) -> str:
    """Turn a settings ``ValidationError`` into lines that name the variable and the flag."""
    lines = ["agentos-worker: invalid configuration"]
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        if field:
            flag = "--" + field.replace("_", "-")
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"  {ENV_PREFIX}{field.upper()} / {flag}: {msg}{shown}")
        else:
            lines.append(f"  {msg}")
    return "\n".join(lines)
