"""The threads bucket: reads, compare-and-set writes, and the two operations on many keys.

nats-py's ``KeyValue`` does single keys well; what it lacks is listing and removing many keys
by a subject filter in a way that scales: ``kv.keys()`` streams every key of the bucket to the
client and filters there, and deletes leave one marker per key. Here listing asks the server
for the subjects under a filter (``STREAM.INFO`` with ``subjects_filter``, one request) and
removing purges the stream by filter (``STREAM.PURGE``, one request, no markers left).
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client
from nats.errors import MaxPayloadError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from worker.broker.jetstream import ensure_bucket
from worker.errors import ThreadTooLarge
from worker.threads.keys import thread_of

# Room left in a message for its headers (compare-and-set, TTL): the server counts them against
# max_payload and closes the connection of a client that sends more, so values stop short of it.
HEADER_ROOM = 1024
# The server's error codes for a compare-and-set that lost (JSStreamWrongLastSequence*).
_WRONG_LAST_SEQUENCE = (10071, 10164)


class Stale(Exception):
    """The key changed since the revision a compare-and-set named."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A key's value and the revision it was read at."""

    value: bytes
    revision: int
    deleted: bool = False
    """A delete marker (read with ``markers=True`` only): the key has no value."""


class ThreadsBucket:
    """The JetStream key-value bucket holding every thread of the pool."""

    def __init__(self, *, js: JetStreamContext, kv: KeyValue, name: str, max_value_bytes: int):
        self._js = js
        self._kv = kv
        self.name = name
        self.max_value_bytes = max_value_bytes
        self._stream = f"KV_{name}"  # the stream and subjects behind a bucket (NATS ADR-8)
        self._prefix = f"$KV.{name}."

    @classmethod
    async def open(
        cls, *, nc: Client, js: JetStreamContext, name: str, retention: float, replicas: int
    ) -> ThreadsBucket:
        """Open the bucket, creating it (or bringing its retention and replicas up to date)."""
        kv = await ensure_bucket(
            js,
            KeyValueConfig(
                bucket=name,
                description="AgentOS conversation threads: records, leases and checkpoints",
                history=1,
                ttl=retention,
                storage=StorageType.FILE,
                replicas=replicas,
                # Reads go to the stream leader: a direct get may be answered by a replica that
                # has not seen the last checkpoint yet, and a thread must read its own writes.
                direct=False,
            ),
        )
        return cls(js=js, kv=kv, name=name, max_value_bytes=nc.max_payload - HEADER_ROOM)

    async def get(self, key: str, *, markers: bool = False) -> Entry | None:
        """The value of ``key``, or None when there is none. With ``markers``, a deleted key
        reads as its delete marker, whose revision an ``update`` may name (one round trip
        fewer than ``create`` on a key deleted before)."""
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError as exc:
            marker = exc.entry
            if markers and marker is not None and marker.revision:
                return Entry(b"", marker.revision, deleted=True)
            return None
        return Entry(entry.value or b"", entry.revision or 0)

    async def put(self, key: str, value: bytes) -> int:
        """Write ``value`` whatever is there; returns the new revision."""
        self._check_size(key, value)
        try:
            return await self._kv.put(key, value)
        except MaxPayloadError:
            raise self._too_large(key, value) from None

    async def create(self, key: str, value: bytes) -> int:
        """Write ``value`` if ``key`` has none; ``Stale`` otherwise."""
        self._check_size(key, value)
        try:
            return await self._kv.create(key, value)
        except KeyWrongLastSequenceError:
            raise Stale(key) from None
        except MaxPayloadError:
            raise self._too_large(key, value) from None

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        """Write ``value`` if ``key`` is still at ``revision``; ``Stale`` otherwise."""
        self._check_size(key, value)
        try:
            return await self._kv.update(key, value, last=revision)
        except KeyWrongLastSequenceError:
            raise Stale(key) from None
        except MaxPayloadError:
            raise self._too_large(key, value) from None

    async def delete(self, key: str, *, revision: int) -> None:
        """Delete ``key`` if it is still at ``revision``; ``Stale`` otherwise."""
        try:
            await self._kv.delete(key, last=revision)
        except APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                raise Stale(key) from None
            raise

    async def keys(self, key_filter: str) -> list[str]:
        """Every key under ``key_filter`` (NATS wildcards), in no particular order.

        The server lists at most 100,000 subjects in one answer; a thread has far fewer keys.
        """
        info = await self._js.stream_info(self._stream, subjects_filter=self._prefix + key_filter)
        subjects = info.state.subjects or {}
        start = len(self._prefix)
        return [subject[start:] for subject in subjects]

    async def purge(self, key_filter: str) -> None:
        """Remove every key under ``key_filter`` with all its revisions."""
        await self._js.purge_stream(self._stream, subject=self._prefix + key_filter)

    def _check_size(self, key: str, value: bytes) -> None:
        if len(value) > self.max_value_bytes:
            raise self._too_large(key, value)

    def _too_large(self, key: str, value: bytes) -> ThreadTooLarge:
        thread_id = thread_of(key.partition(".")[0])
        return ThreadTooLarge(
            f"a value of {len(value)} bytes for thread {thread_id!r} is larger "
            f"than the {self.max_value_bytes} bytes one NATS message may carry here (the server's "
            "max_payload less room for headers): raise max_payload on the NATS servers, or "
            "keep less state on the thread"
        )
