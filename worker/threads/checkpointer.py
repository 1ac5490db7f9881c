"""A LangGraph checkpointer on JetStream key-value: threads need no Postgres and no Redis.

``KVCheckpointer`` implements langgraph-checkpoint's ``BaseCheckpointSaver`` (the async half;
the worker is async-only) on the threads bucket, laid out as ``worker.threads.keys`` describes:

- A checkpoint is one self-contained key: its channel values travel inside it rather than in
  per-channel blobs shared between checkpoints (as the Postgres saver does), because the bucket
  ages every key out on its own (thread retention): a blob shared with a newer checkpoint could
  expire under it. The price is that each checkpoint carries the whole state, so a thread's
  state must fit one NATS message (``max_payload``, 1 MiB by default): past it, ``aput`` raises
  ``ThreadTooLarge`` (413) with the sizes.
- The newest checkpoint id of each namespace sits in a ``head`` key, advanced by compare-and-set
  and only forwards, so ``aget_tuple`` of the latest state costs two reads whatever the thread's
  length, and a retried or late ``aput`` never moves a thread back.
- A checkpoint's pending writes share one key, merged by compare-and-set: tasks of one step
  write concurrently, and a retried ``aput_writes`` adds nothing twice.
- ``alist`` asks the server for the thread's checkpoint keys (one request) and reads the
  checkpoints newest first, only as many as it yields; ``adelete_thread`` purges by key filter.

Runs of one thread are serialized by the thread's lease (``worker.threads.lease``); nothing here
relies on it for correctness of the stored data, only for the order of a thread's turns.
Values are encoded with the saver's ``serde`` (``JsonPlusSerializer``) inside msgpack records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from worker.threads import keys
from worker.threads.bucket import Entry, Stale, ThreadsBucket

_ASYNC_ONLY = (
    "KVCheckpointer is async-only (the worker runs graphs with ainvoke/astream): use the "
    "a-prefixed methods, e.g. graph.aget_state() rather than graph.get_state()"
)
# Compare-and-set rounds before giving up: each lost round means another write landed, and
# only the few tasks of one step write one thread at once.
_CAS_ROUNDS = 64
# Checkpoints read at once while listing.
_LIST_BATCH = 16


class KVCheckpointer(BaseCheckpointSaver[int]):
    """Checkpoints of LangGraph threads in the pool's threads bucket."""

    def __init__(self, bucket: ThreadsBucket, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self._bucket = bucket

    @property
    def max_checkpoint_bytes(self) -> int:
        """The largest checkpoint (the whole state of a thread, encoded) that can be stored."""
        return self._bucket.max_value_bytes

    # --- reads ----------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or the newest of its thread and namespace."""
        thread_id, ns = _thread_and_ns(config)
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            head = await self._bucket.get(keys.head(thread_id, ns))
            if head is None:
                return None
            checkpoint_id = head.value.decode()
        elif not keys.is_checkpoint_id(checkpoint_id):
            return None
        return await self._load(keys.CheckpointKey(thread_id, ns, checkpoint_id))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread and namespace (every namespace
        when ``checkpoint_ns`` is absent), whose metadata holds every item of ``filter``, older
        than ``before``, at most ``limit``. ``config=None`` lists every thread, as far as the
        server lists subjects in one answer (100,000): meant for tests and tools, not runs."""
        if limit is not None and limit <= 0:
            return
        configurable = (config or {}).get("configurable", {})
        thread_id = configurable.get("thread_id")
        ns = configurable.get("checkpoint_ns")
        only = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        found = [
            parsed
            for key in await self._bucket.keys(
                keys.checkpoints_filter(None if thread_id is None else str(thread_id), ns)
            )
            if (parsed := keys.parse_checkpoint(key)) is not None
            and (not only or parsed.checkpoint_id == only)
            and (not before_id or parsed.checkpoint_id < before_id)
        ]
        # Checkpoint ids are UUIDv6: in string order is in time order.
        found.sort(key=lambda k: k.checkpoint_id, reverse=True)
        remaining = limit
        batch = _LIST_BATCH if filter or limit is None else min(limit, _LIST_BATCH)
        for start in range(0, len(found), batch):
            loaded = await asyncio.gather(*(self._load(k) for k in found[start : start + batch]))
            for item in loaded:
                if item is None or not _matches(item.metadata, filter):
                    continue  # expired since the listing, or filtered out
                yield item
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        return

    async def _load(self, key: keys.CheckpointKey) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = key
        stored, writes = await asyncio.gather(
            self._bucket.get(keys.checkpoint(thread_id, ns, checkpoint_id)),
            self._bucket.get(keys.writes(thread_id, ns, checkpoint_id)),
        )
        if stored is None:
            return None
        record = ormsgpack.unpackb(stored.value)
        parent = record["parent"]
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint=self.serde.loads_typed(tuple(record["checkpoint"])),
            metadata=self.serde.loads_typed(tuple(record["metadata"])),
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=[
                (task_id, channel, self.serde.loads_typed((kind, data)))
                for task_id, _, channel, kind, data, _ in _sorted_writes(writes)
            ],
        )

    # --- writes ---------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (whole: every channel value), then advance the thread's head."""
        thread_id, ns = _thread_and_ns(config)
        checkpoint_id = checkpoint["id"]
        if not keys.is_checkpoint_id(checkpoint_id):
            raise ValueError(f"checkpoint id {checkpoint_id!r} cannot be a key")
        record = {
            "parent": config["configurable"].get("checkpoint_id"),
            "checkpoint": self.serde.dumps_typed(checkpoint),
            "metadata": self.serde.dumps_typed(
                get_serializable_checkpoint_metadata(config, metadata)
            ),
        }
        # The same key and value on a retry: writing it twice is harmless.
        await self._bucket.put(
            keys.checkpoint(thread_id, ns, checkpoint_id), ormsgpack.packb(record)
        )
        await self._advance_head(keys.head(thread_id, ns), checkpoint_id)
        return _config(thread_id, ns, checkpoint_id)

    async def _advance_head(self, key: str, checkpoint_id: str) -> None:
        """Point ``key`` at ``checkpoint_id`` unless it points at a newer one already."""
        value = checkpoint_id.encode()
        for _ in range(_CAS_ROUNDS):
            current = await self._bucket.get(key)
            try:
                if current is None:
                    await self._bucket.create(key, value)
                elif current.value.decode() < checkpoint_id:
                    await self._bucket.update(key, value, revision=current.revision)
            except Stale:
                continue
            return
        raise RuntimeError(f"could not advance {key}: it kept changing")

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Record a task's writes against a checkpoint; a write already recorded (same task and
        index) is kept, except the special ones (error, interrupt, ...), which replace."""
        thread_id, ns = _thread_and_ns(config)
        key = keys.writes(thread_id, ns, config["configurable"]["checkpoint_id"])
        new = {}
        for idx, (channel, value) in enumerate(writes):
            slot = WRITES_IDX_MAP.get(channel, idx)
            new[(task_id, slot)] = [
                task_id,
                slot,
                channel,
                *self.serde.dumps_typed(value),
                task_path,
            ]
        for _ in range(_CAS_ROUNDS):
            current = await self._bucket.get(key)
            stored = {(w[0], w[1]): w for w in _unpack_writes(current)}
            merged = dict(stored)
            for slot_key, write in new.items():
                if slot_key[1] >= 0 and slot_key in stored:
                    continue
                merged[slot_key] = write
            if merged == stored:
                return  # a retry of writes already recorded
            value = ormsgpack.packb(list(merged.values()))
            try:
                if current is None:
                    await self._bucket.create(key, value)
                else:
                    await self._bucket.update(key, value, revision=current.revision)
            except Stale:
                continue
            return
        raise RuntimeError(f"could not record writes under {key}: it kept changing")

    async def amerge_metadata(
        self, config: RunnableConfig, values: Mapping[str, Any], *, where: Mapping[str, Any]
    ) -> bool:
        """Merge ``values`` into the metadata of the newest checkpoint of ``config``'s thread
        and namespace, if that metadata holds every item of ``where``; False when it does not
        (or the thread has none). Not LangGraph's: the worker notes there what a turn spent,
        known only once the run that wrote the checkpoint has ended."""
        thread_id, ns = _thread_and_ns(config)
        head = await self._bucket.get(keys.head(thread_id, ns))
        if head is None:
            return False
        key = keys.checkpoint(thread_id, ns, head.value.decode())
        for _ in range(_CAS_ROUNDS):
            stored = await self._bucket.get(key)
            if stored is None:
                return False
            record = ormsgpack.unpackb(stored.value)
            metadata = self.serde.loads_typed(tuple(record["metadata"]))
            if not _matches(metadata, dict(where)):
                return False
            record["metadata"] = self.serde.dumps_typed({**metadata, **values})
            try:
                await self._bucket.update(key, ormsgpack.packb(record), revision=stored.revision)
            except Stale:
                continue
            return True
        raise RuntimeError(f"could not update {key}: it kept changing")

    async def adelete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint and write of ``thread_id`` (its record and lease stay)."""
        await asyncio.gather(
            *(self._bucket.purge(f) for f in keys.checkpointer_filters(str(thread_id)))
        )

    # --- the synchronous half: not served -------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Not served: use ``aget_tuple``."""
        raise NotImplementedError(_ASYNC_ONLY)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Not served: use ``alist``."""
        raise NotImplementedError(_ASYNC_ONLY)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Not served: use ``aput``."""
        raise NotImplementedError(_ASYNC_ONLY)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Not served: use ``aput_writes``."""
        raise NotImplementedError(_ASYNC_ONLY)

    def delete_thread(self, thread_id: str) -> None:
        """Not served: use ``adelete_thread``."""
        raise NotImplementedError(_ASYNC_ONLY)


def _thread_and_ns(config: RunnableConfig) -> tuple[str, str]:
    configurable = config["configurable"]
    return str(configurable["thread_id"]), configurable.get("checkpoint_ns") or ""


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _matches(metadata: CheckpointMetadata, wanted: dict[str, Any] | None) -> bool:
    return not wanted or all(metadata.get(k) == v for k, v in wanted.items())


def _unpack_writes(entry: Entry | None) -> list[list[Any]]:
    """Stored writes: ``[task_id, idx, channel, type, data, task_path]`` each."""
    return [] if entry is None else list(ormsgpack.unpackb(entry.value))


def _sorted_writes(entry: Entry | None) -> list[list[Any]]:
    """In the order live execution applied them (what ``get_tuple`` must return)."""
    return sorted(_unpack_writes(entry), key=lambda w: writes_sort_key(w[5], w[0], w[1]))
