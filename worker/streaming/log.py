"""The pool's one event log of frames: a JetStream stream with one subject per task.

Frames of task ``T`` are published on ``agentos.frames.T``. The stream is bounded (maximum age,
maximum bytes, and a maximum number of frames kept per task: the oldest go first, the newest
always stay), and any worker reads any task's frames from it.

Live readers do not each need a consumer: the stream *republishes* every stored frame on
``agentos.frames-live.T`` (JetStream RePublish), with the frame's stream sequence
(``Nats-Sequence``) and the previous stream sequence of the same task (``Nats-Last-Sequence``).
A reader that knows the last stream sequence it has seen can therefore tell a gap on that core
NATS feed, and fill it from the stream with a consumer of its own (``follow`` or ``replay``).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from worker.broker.jetstream import ensure_stream
from worker.streaming.frames import WireFrame

SUBJECT_PREFIX = "agentos.frames"
LIVE_PREFIX = "agentos.frames-live"
_SAFE = re.compile(r"^[A-Za-z0-9_\-:=@+]{1,200}$")
# Republished and replayed frames carry these JetStream headers.
SEQUENCE_HEADER = "Nats-Sequence"
LAST_SEQUENCE_HEADER = "Nats-Last-Sequence"
_EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
_MSG_ID = "Nats-Msg-Id"
_REPLAY_IDLE = 60.0  # seconds an abandoned replay consumer lives on the server
_PUSH_PENDING = 4096  # frames a follow subscription buffers on the client
PUSH_REPLAY_MAX = 1024
"""Frames behind up to which a reader catches up with ``follow`` (a push consumer, well inside
its client buffer); further behind, or once that many wait in the buffer, with ``replay`` (a
pull consumer, in batches)."""


def subject_token(task_id: str) -> str:
    """The subject token of a task: the id itself when it is a safe token, else a hash.

    Go sends UUIDs, which pass as they are; anything holding ``.``, ``*``, ``>`` or spaces
    would break the subject, so it is hashed (``~`` never occurs in a verbatim token).
    """
    if _SAFE.match(task_id):
        return task_id
    return "~" + hashlib.sha256(task_id.encode()).hexdigest()[:40]


@dataclass(frozen=True, kw_only=True)
class LogLimits:
    """How much of the log the stream keeps."""

    max_age: float
    max_bytes: int
    max_per_task: int
    replicas: int = 1


class FrameLog:
    """Publishing to and reading from the frames stream."""

    def __init__(self, *, nc: Client, js: JetStreamContext, stream: str, limits: LogLimits) -> None:
        self.nc = nc
        self.js = js
        self.stream = stream
        self._limits = limits

    def subject(self, task_id: str) -> str:
        """Where ``task_id``'s frames are published and stored."""
        return f"{SUBJECT_PREFIX}.{subject_token(task_id)}"

    def live_subject(self, task_id: str) -> str:
        """Where the stream republishes ``task_id``'s frames once stored."""
        return f"{LIVE_PREFIX}.{subject_token(task_id)}"

    async def ensure(self) -> None:
        """Create the stream, or bring an existing one to this configuration."""
        limits = self._limits
        config = StreamConfig(
            name=self.stream,
            description="AgentOS progress frames of every run (CONTRACT section 3)",
            subjects=[f"{SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=limits.max_age,
            max_bytes=limits.max_bytes,
            max_msgs_per_subject=limits.max_per_task,
            num_replicas=limits.replicas,
            duplicate_window=min(120.0, limits.max_age),
            allow_direct=True,
            republish=RePublish(src=f"{SUBJECT_PREFIX}.>", dest=f"{LIVE_PREFIX}.>"),
        )
        await ensure_stream(self.js, config)

    async def last(self, task_id: str) -> WireFrame | None:
        """The newest stored frame of ``task_id`` (``None`` if it has none)."""
        try:
            msg = await self.js.get_last_msg(self.stream, self.subject(task_id), direct=True)
        except NotFoundError:
            return None
        if not msg.data:
            return None
        return WireFrame.parse(msg.data, sseq=msg.seq or 0)

    async def next_after(self, task_id: str, after_sseq: int) -> WireFrame | None:
        """The first stored frame of ``task_id`` after stream seq ``after_sseq`` (a direct get:
        nothing is created on the server), or ``None``."""
        try:
            msg = await self.js.get_msg(
                self.stream,
                seq=after_sseq + 1,
                subject=self.subject(task_id),
                direct=True,
                next=True,
            )
        except NotFoundError:
            return None
        if not msg.data:
            return None
        return WireFrame.parse(msg.data, sseq=msg.seq or 0)

    async def claim(self, task_id: str, data: bytes, *, seq: int, after_sseq: int) -> PubAck:
        """Publish frame ``seq`` only if the task's newest stored frame is still ``after_sseq``.

        A second writer of the same task (a job delivered twice at once) loses this race with
        ``nats.js.errors.BadRequestError`` (err_code 10071) instead of reusing a ``seq``.
        """
        return await self.js.publish(
            self.subject(task_id),
            data,
            headers={
                _EXPECTED_LAST_SUBJECT_SEQ: str(after_sseq),
                _MSG_ID: f"{task_id}:{seq}",
            },
        )

    async def publish(
        self, task_id: str, data: bytes, *, seq: int, ack_within: float | None = None
    ) -> PubAck:
        """Publish frame ``seq`` and wait up to ``ack_within`` seconds for its acknowledgement
        (``Nats-Msg-Id`` as below)."""
        return await self.js.publish(
            self.subject(task_id), data, timeout=ack_within, headers={_MSG_ID: f"{task_id}:{seq}"}
        )

    async def publish_async(self, task_id: str, data: bytes, *, seq: int) -> object:
        """Publish frame ``seq`` without waiting; returns the acknowledgement's future.

        ``Nats-Msg-Id`` makes a republished frame (after a lost acknowledgement) a no-op.
        """
        return await self.js.publish_async(
            self.subject(task_id), data, headers={_MSG_ID: f"{task_id}:{seq}"}
        )

    async def follow(self, task_id: str, *, after_sseq: int) -> JetStreamContext.PushSubscription:
        """An ordered consumer over ``task_id``'s stored frames after stream seq ``after_sseq``
        and those stored next, for a short replay (see ``PUSH_REPLAY_MAX``).

        It delivers what is stored and then what is stored next, in order; the caller reads
        with ``next_msg`` and unsubscribes when it has caught up.
        """
        if after_sseq > 0:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_sseq + 1
            )
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        return await self.js.subscribe(
            self.subject(task_id),
            stream=self.stream,
            ordered_consumer=True,
            config=config,
            pending_msgs_limit=_PUSH_PENDING,
            pending_bytes_limit=8 << 20,
        )

    async def replay(self, task_id: str, *, after_sseq: int) -> Replay:
        """A consumer of its own over ``task_id``'s stored frames after stream seq
        ``after_sseq``, read in batches with ``Replay.sub.fetch``: for a long replay.

        A pull consumer, so a long replay goes at the reader's pace: a push consumer sends
        everything stored at once, and past its pending limit (``_PUSH_PENDING``) frames are
        dropped on the client, which then waits for them forever. For a short replay the push
        consumer is cheaper (no request per batch, no consumer to delete).
        """
        name = f"replay_{uuid.uuid4().hex}"
        await self.js.add_consumer(
            self.stream,
            ConsumerConfig(
                name=name,
                filter_subject=self.subject(task_id),
                deliver_policy=(
                    DeliverPolicy.BY_START_SEQUENCE if after_sseq > 0 else DeliverPolicy.ALL
                ),
                opt_start_seq=after_sseq + 1 if after_sseq > 0 else None,
                ack_policy=AckPolicy.NONE,
                mem_storage=True,
                num_replicas=1,
                inactive_threshold=_REPLAY_IDLE,  # removed by the server if we vanish
            ),
        )
        sub = await self.js.pull_subscribe_bind(name, stream=self.stream)
        return Replay(log=self, name=name, sub=sub)


@dataclass
class Replay:
    """One reader's replay of a task's stored frames: ``sub.fetch`` batches, then ``close``."""

    log: FrameLog
    name: str
    sub: JetStreamContext.PullSubscription

    async def close(self) -> None:
        """Stop reading and delete the consumer."""
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()
        with contextlib.suppress(Exception):
            await self.log.js.delete_consumer(self.log.stream, self.name)
