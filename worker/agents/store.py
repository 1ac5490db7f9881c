"""The pool's agents, kept in a JetStream key-value bucket.

Every worker watches the bucket and keeps a local view, so an agent created through any worker
is visible to all of them without a NATS round trip per invocation, and survives restarts. A key
not in the local view yet (created a moment ago elsewhere) is read from the bucket directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from langchain_core.runnables import Runnable
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from worker.agents.accounting import RunAccounting, UsageTracker, limits_of
from worker.agents.agent_type import AgentType, BuildContext
from worker.agents.registry import AgentTypeRegistry
from worker.agents.thread_graph import ThreadGraph
from worker.broker.jetstream import ensure_bucket
from worker.errors import BadRequest, Conflict, NotFound
from worker.resilience.admission import Admission, AdmissionRecorder
from worker.telemetry.logs import get_logger
from worker.telemetry.metrics import AGENTS_KNOWN

log = get_logger(__name__)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """One agent as stored: its type, name and validated config."""

    id: str
    type: str
    name: str
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    revision: int = 0

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps(
            {
                "id": self.id,
                "type": self.type,
                "name": self.name,
                "config": self.config,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            },
            option=orjson.OPT_UTC_Z,
        )

    @classmethod
    def from_json(cls, data: bytes, revision: int) -> AgentRecord:
        """Read the stored form."""
        raw = orjson.loads(data)
        return cls(
            id=raw["id"],
            type=raw["type"],
            name=raw.get("name", ""),
            config=raw.get("config") or {},
            created_at=datetime.fromisoformat(raw["created_at"]),
            updated_at=datetime.fromisoformat(raw.get("updated_at", raw["created_at"])),
            revision=revision,
        )


@dataclass(frozen=True, slots=True)
class ResolvedAgent:
    """An agent with its type and its built Runnable, ready to run."""

    record: AgentRecord
    agent_type: AgentType
    runnable: Runnable[Any, Any]
    admission: Admission | None = None
    """Checked before each run: refuses at once while a provider chain every run calls cannot
    answer. None for an agent with nothing to check (no model, or a ``basic``/``fake`` one)."""
    thread_graph: Callable[[], ThreadGraph] | None = None
    """Builds the agent's graph on the pool's checkpointer, once, at its first run on a thread
    (most agents never run on one); None when its type keeps no thread."""
    accounting: RunAccounting | None = None
    """How its runs' spending is counted; None when the worker counts none
    (``WORKER_ACCOUNTING=false``)."""

    def tracker(self) -> UsageTracker | None:
        """A usage tracker for one run of the agent (None when accounting is off)."""
        return None if self.accounting is None else self.accounting.tracker()

    def on_thread(self) -> ThreadGraph:
        """The agent as it runs on a thread; 400 ``threads_unsupported`` if it cannot."""
        if self.thread_graph is None:
            raise BadRequest(
                f"agent type {self.record.type!r} cannot keep a conversation thread: only "
                "LangGraph graphs and the chat and agent types can; run it without thread_id",
                code="threads_unsupported",
            )
        return self.thread_graph()


def build_agent(record: AgentRecord, agent_type: AgentType, ctx: BuildContext) -> ResolvedAgent:
    """``record`` ready to run: its Runnable, what to check before each run, and (built at its
    first run on a thread, if ``ctx`` has a checkpointer and its type keeps threads) its graph
    on a thread."""
    recorder = AdmissionRecorder()  # what the builder says every run needs
    config = agent_type.parse_config(record.config)
    runnable = agent_type.build(config, replace(ctx, admission=recorder))
    thread_graph = None
    if agent_type.on_thread is not None and ctx.checkpointer is not None:
        # From the same config and context: its providers share the Runnable's breakers.
        thread_graph = functools.cache(functools.partial(agent_type.on_thread, config, ctx))
    accounting = None
    if ctx.accounting:
        accounting = RunAccounting(
            agent_type=record.type,
            prices=ctx.prices,
            limits=limits_of(record.config),
            callbacks=agent_type.usage_from == "callbacks",
        )
    return ResolvedAgent(
        record=record,
        agent_type=agent_type,
        runnable=runnable,
        admission=recorder.admission(),
        thread_graph=thread_graph,
        accounting=accounting,
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: ``null`` removes a key, objects merge, the rest replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class AgentStore:
    """Create, read, update and delete agents in the pool's bucket; build their Runnables."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        registry: AgentTypeRegistry,
        build_context: BuildContext,
        bucket: str = "agentos_agents",
        replicas: int = 1,
    ) -> None:
        self._js = js
        self._registry = registry
        self._ctx = build_context
        self._bucket = bucket
        self._replicas = replicas
        self._kv: KeyValue | None = None
        self._records: dict[str, AgentRecord] = {}
        self._built: dict[str, ResolvedAgent] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    @property
    def kv(self) -> KeyValue:
        """The bucket (after ``start``)."""
        if self._kv is None:
            raise RuntimeError("AgentStore.start() was not awaited")
        return self._kv

    async def start(self, *, sync_timeout: float = 10.0) -> None:
        """Open (or create) the bucket and load the pool's agents into the local view."""
        self._kv = await ensure_bucket(
            self._js,
            KeyValueConfig(
                bucket=self._bucket,
                description="AgentOS agents, shared by every worker of the pool",
                history=1,
                storage=StorageType.FILE,
                replicas=self._replicas,
            ),
        )
        self._watch_task = asyncio.create_task(self._watch(), name="agent-store-watch")
        await asyncio.wait_for(self._synced.wait(), sync_timeout)

    async def stop(self) -> None:
        """Stop following the bucket."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task

    async def _watch(self) -> None:
        watcher = await self.kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:  # the initial values have all arrived
                    self._synced.set()
                    continue
                if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                    self._forget(entry.key)
                else:
                    with contextlib.suppress(ValueError, KeyError):
                        self._remember(AgentRecord.from_json(entry.value, entry.revision or 0))
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _remember(self, record: AgentRecord) -> None:
        current = self._records.get(record.id)
        if current is not None and current.revision >= record.revision:
            return
        if current is None:
            AGENTS_KNOWN.labels(record.type).inc()
        self._records[record.id] = record

    def _forget(self, agent_id: str) -> None:
        record = self._records.pop(agent_id, None)
        self._built.pop(agent_id, None)
        if record is not None:
            AGENTS_KNOWN.labels(record.type).dec()

    # --- CRUD ---------------------------------------------------------------------------

    async def create(
        self, *, type_name: str, name: str = "", config: Mapping[str, Any] | None = None
    ) -> AgentRecord:
        """Validate and store a new agent."""
        agent_type = self._registry.get(type_name)
        parsed = agent_type.parse_config(config)
        agent_type.build(parsed, self._ctx)  # fail now, not at the first invocation
        now = datetime.now(UTC)
        record = AgentRecord(
            id=uuid.uuid4().hex,
            type=type_name,
            name=name,
            config=parsed.model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
        revision = await self.kv.create(record.id, record.to_json())
        record = replace(record, revision=revision)
        self._remember(record)
        return record

    async def ensure(
        self, agent_id: str, *, type_name: str, name: str, config: Mapping[str, Any]
    ) -> None:
        """Create ``agent_id`` unless it exists (demo agents: every worker may try, one wins)."""
        agent_type = self._registry.get(type_name)
        parsed = agent_type.parse_config(config)
        now = datetime.now(UTC)
        record = AgentRecord(
            id=agent_id,
            type=type_name,
            name=name,
            config=parsed.model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
        with contextlib.suppress(KeyWrongLastSequenceError):
            revision = await self.kv.create(agent_id, record.to_json())
            self._remember(replace(record, revision=revision))

    async def get(self, agent_id: str) -> AgentRecord:
        """The agent ``agent_id`` (404 if there is none)."""
        record = self._records.get(agent_id)
        if record is not None:
            return record
        if not _ID.match(agent_id):
            raise NotFound(f"agent {agent_id!r} not found", code="agent_not_found")
        try:
            entry = await self.kv.get(agent_id)
        except (KeyNotFoundError, KeyDeletedError):
            raise NotFound(f"agent {agent_id!r} not found", code="agent_not_found") from None
        if not entry.value:
            raise NotFound(f"agent {agent_id!r} not found", code="agent_not_found")
        record = AgentRecord.from_json(entry.value, entry.revision or 0)
        self._remember(record)
        return record

    def list(self) -> list[AgentRecord]:
        """Every agent of the pool, oldest first, as this worker sees them."""
        return sorted(self._records.values(), key=lambda r: (r.created_at, r.id))

    async def update(
        self, agent_id: str, *, name: str | None = None, config_patch: Any = None
    ) -> AgentRecord:
        """Rename and/or merge-patch the config (RFC 7386); 409 if it changed meanwhile."""
        current = await self._fresh(agent_id)
        agent_type = self._registry.get(current.type)
        config = current.config
        if config_patch is not None:
            parsed = agent_type.parse_config(merge_patch(current.config, config_patch))
            agent_type.build(parsed, self._ctx)
            config = parsed.model_dump(mode="json")
        record = replace(
            current,
            name=current.name if name is None else name,
            config=config,
            updated_at=datetime.now(UTC),
        )
        try:
            revision = await self.kv.update(agent_id, record.to_json(), last=current.revision)
        except KeyWrongLastSequenceError:
            raise Conflict(
                f"agent {agent_id!r} was changed concurrently; read it and try again"
            ) from None
        record = replace(record, revision=revision)
        self._remember(record)
        return record

    async def delete(self, agent_id: str) -> None:
        """Delete an agent (404 if there is none)."""
        current = await self._fresh(agent_id)
        try:
            await self.kv.delete(agent_id, last=current.revision)
        except KeyWrongLastSequenceError:
            raise Conflict(
                f"agent {agent_id!r} was changed concurrently; read it and try again"
            ) from None
        self._forget(agent_id)

    async def _fresh(self, agent_id: str) -> AgentRecord:
        """The stored record, read from the bucket (writes must not act on a stale view)."""
        if not _ID.match(agent_id):
            raise NotFound(f"agent {agent_id!r} not found", code="agent_not_found")
        try:
            entry = await self.kv.get(agent_id)
        except (KeyNotFoundError, KeyDeletedError):
            self._forget(agent_id)
            raise NotFound(f"agent {agent_id!r} not found", code="agent_not_found") from None
        if not entry.value:
            raise NotFound(f"agent {agent_id!r} not found", code="agent_not_found")
        return AgentRecord.from_json(entry.value, entry.revision or 0)

    # --- running --------------------------------------------------------------------------

    async def resolve(self, agent_id: str) -> ResolvedAgent:
        """The agent with its Runnable, built once per revision."""
        record = await self.get(agent_id)
        built = self._built.get(agent_id)
        if built is not None and built.record.revision == record.revision:
            return built
        built = build_agent(record, self._registry.get(record.type), self._ctx)
        self._built[agent_id] = built
        return built
