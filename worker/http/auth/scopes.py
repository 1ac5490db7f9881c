"""The scopes a JWT's ``scope`` claim may grant, and what each lets a caller do.

Each route of the route table names the one scope it needs (``Operation.scope``); a static token
(``WORKER_AUTH_TOKENS``) holds them all. Conversation threads have scopes of their own rather
than riding on the agents' ones: a thread holds what a customer said, an agent's config is the
operator's, and a console that manages agents (``agents:read``/``agents:write``) has no business
reading or erasing conversations. A run on a thread (invoke, stream or socket with a
``thread_id``, and ``resume``) is an invocation and needs ``agents:invoke`` alone: a route's
scope cannot depend on its body, and the run is what the caller asked for.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """One scope of the ``scope`` claim (RFC 8693 section 4.2: space-separated)."""

    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    AGENTS_INVOKE = "agents:invoke"
    THREADS_READ = "threads:read"
    THREADS_WRITE = "threads:write"
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    STREAMS_READ = "streams:read"
    ADMIN = "admin"


DESCRIPTIONS: dict[Scope, str] = {
    Scope.AGENTS_READ: "List and read agents and the agent types.",
    Scope.AGENTS_WRITE: "Create, patch and delete agents.",
    Scope.AGENTS_INVOKE: "Run agents: invoke, stream, the chat socket, and resuming a thread.",
    Scope.THREADS_READ: "Read conversation threads and their history.",
    Scope.THREADS_WRITE: "Create and delete conversation threads.",
    Scope.TASKS_READ: "Read long jobs' states and results.",
    Scope.TASKS_WRITE: "Submit and cancel long jobs.",
    Scope.STREAMS_READ: "Watch a task's frames (SSE or WebSocket).",
    Scope.ADMIN: "Operate the pool: dead letters, their replay, and the metrics.",
}

ALL_SCOPES: frozenset[str] = frozenset(Scope)
"""What a static token, or a worker without auth, may do: everything."""


def parse_scopes(claim: str) -> frozenset[str]:
    """The scopes of a ``scope`` claim; ones this worker does not know are kept (and ignored)."""
    return frozenset(claim.split())
