"""Where a thread's data lives in the threads bucket: the key layout, in one place.

Every key starts with the thread, so one subject filter reaches all of a thread's data::

    <thread>.meta                       the thread record (created_at, metadata, updated_at)
    <thread>.lease                      which run holds the thread, until when
    <thread>.head.<ns>                  id of the newest checkpoint of namespace <ns>
    <thread>.cp.<ns>.<checkpoint_id>    one checkpoint, self-contained (state and metadata)
    <thread>.wr.<ns>.<checkpoint_id>    the pending writes recorded against that checkpoint

NATS KV keys are dot-separated tokens of ``[-/_=a-zA-Z0-9]``, none empty. A thread id
(CONTRACT section 6: ``[A-Za-z0-9_.-]{1,128}``) becomes one token by writing its dots as ``=``,
which a thread id never contains, so the mapping is one-to-one and thread ``a`` never matches the
keys of thread ``a.b``. A checkpoint namespace (empty for the root graph, ``node:task|...`` for
subgraphs) becomes ``_`` when empty, else ``n`` and its unpadded base64url.
"""

from __future__ import annotations

import base64
import re
from typing import NamedTuple

from worker.errors import BadRequest

THREAD_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
THREAD_ID_PATTERN = f"^{THREAD_ID.pattern}$"
"""The thread id rule as a JSON Schema ``pattern`` (the API documents say it with this)."""
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
ROOT_NS = "_"


def check_thread_id(thread_id: str) -> str:
    """``thread_id`` if valid; else ``BadRequest`` (400) saying what a thread id may hold."""
    if not isinstance(thread_id, str) or not THREAD_ID.fullmatch(thread_id):
        raise BadRequest(
            f"invalid thread_id {thread_id!r}: 1 to 128 characters of A-Z a-z 0-9 _ . -",
            code="invalid_thread_id",
        )
    return thread_id


def is_checkpoint_id(checkpoint_id: str) -> bool:
    """True when ``checkpoint_id`` can be a key token (LangGraph's ids are UUIDs)."""
    return bool(_TOKEN.fullmatch(checkpoint_id))


def thread_token(thread_id: str) -> str:
    """The key token of a (valid) thread id."""
    return check_thread_id(thread_id).replace(".", "=")


def thread_of(token: str) -> str:
    """The thread id of a key token."""
    return token.replace("=", ".")


def ns_token(checkpoint_ns: str) -> str:
    """The key token of a checkpoint namespace."""
    if not checkpoint_ns:
        return ROOT_NS
    return "n" + base64.urlsafe_b64encode(checkpoint_ns.encode()).decode().rstrip("=")


def ns_of(token: str) -> str:
    """The checkpoint namespace of a key token."""
    if token == ROOT_NS:
        return ""
    data = token[1:]
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()


def meta(thread_id: str) -> str:
    """Key of the thread record."""
    return f"{thread_token(thread_id)}.meta"


def lease(thread_id: str) -> str:
    """Key of the thread's lease."""
    return f"{thread_token(thread_id)}.lease"


def head(thread_id: str, checkpoint_ns: str) -> str:
    """Key holding the newest checkpoint id of a namespace."""
    return f"{thread_token(thread_id)}.head.{ns_token(checkpoint_ns)}"


def checkpoint(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    """Key of one checkpoint."""
    return f"{thread_token(thread_id)}.cp.{ns_token(checkpoint_ns)}.{checkpoint_id}"


def writes(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    """Key of the pending writes of one checkpoint."""
    return f"{thread_token(thread_id)}.wr.{ns_token(checkpoint_ns)}.{checkpoint_id}"


def checkpoints_filter(thread_id: str | None, checkpoint_ns: str | None) -> str:
    """Key filter of the checkpoints of a thread (every thread when None) and namespace (every
    namespace when None)."""
    thread = "*" if thread_id is None else thread_token(thread_id)
    if checkpoint_ns is None:
        return f"{thread}.cp.>"
    return f"{thread}.cp.{ns_token(checkpoint_ns)}.*"


def checkpointer_filters(thread_id: str) -> list[str]:
    """Key filters of everything the checkpointer keeps for a thread."""
    token = thread_token(thread_id)
    return [f"{token}.cp.>", f"{token}.wr.>", f"{token}.head.>"]


def thread_filter(thread_id: str) -> str:
    """Key filter of everything kept for a thread."""
    return f"{thread_token(thread_id)}.>"


class CheckpointKey(NamedTuple):
    """A checkpoint key, parsed."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str


def parse_checkpoint(key: str) -> CheckpointKey | None:
    """The parts of a checkpoint key, or None for any other key."""
    parts = key.split(".")
    if len(parts) != 4 or parts[1] != "cp":
        return None
    return CheckpointKey(thread_of(parts[0]), ns_of(parts[2]), parts[3])
