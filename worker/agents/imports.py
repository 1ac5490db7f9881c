"""Objects named by ``name=package.module:attribute`` settings, imported once at start.

An entry that does not import stops start-up with ``ConfigError`` naming the variable and the
entry: the operator asked for it, so a worker without it would be a different worker.
"""

from __future__ import annotations

import importlib
from typing import Any

from worker.config import ENV_PREFIX, ConfigError, ImportRef


def load(ref: ImportRef, *, setting: str) -> Any:
    """The object ``ref`` names (``setting`` is the field, ``agent_types``, for messages)."""
    try:
        target: Any = importlib.import_module(ref.module)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise invalid(ref, setting, _describe(ref.module, exc)) from exc
    for part in ref.attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            reason = f"{ref.module!r} has no attribute {ref.attribute!r}"
            raise invalid(ref, setting, reason) from None
    return target


def invalid(ref: ImportRef, setting: str, reason: str) -> ConfigError:
    """The error that stops start-up for ``ref``: the variable, the entry and why."""
    return ConfigError(f"{ENV_PREFIX}{setting.upper()}: entry {str(ref)!r}: {reason}")


def _describe(module: str, exc: Exception) -> str:
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and (module == missing or module.startswith(missing + ".")):
        return f"no module named {missing!r}"  # the module itself (or its package) is missing
    return f"importing {module!r} failed: {type(exc).__name__}: {exc}"
