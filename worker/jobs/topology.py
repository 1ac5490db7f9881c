"""The JetStream objects of the jobs door, created at start and brought up to date.

``add_stream``/``add_consumer`` fail or keep the old settings when an object exists, and
``pull_subscribe`` never changes an existing consumer; so every object here is created if
missing and updated when its configuration differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from worker.broker.jetstream import ensure_bucket, ensure_consumer, ensure_stream
from worker.callbacks.outbox import CALLBACK_CONSUMER
from worker.config import Settings

CANCEL_SUBJECT_PREFIX = "agent.cancel"


@dataclass(frozen=True, slots=True)
class Topology:
    """Names and configurations of the stream, consumers and bucket the jobs door uses."""

    tasks: StreamConfig
    consumer: ConsumerConfig
    callbacks: StreamConfig
    callback_consumer: ConsumerConfig
    dead_letters: StreamConfig
    results: KeyValueConfig

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        """The objects for ``settings``."""
        ack_wait = settings.job_ack_wait
        # Redelivery after a silent worker (no ack, no progress): ack wait, then longer waits,
        # so a job that crashes its worker does not crash the pool in a tight loop.
        backoff = [ack_wait * min(2**i, 8) for i in range(settings.job_max_deliver)]
        return cls(
            tasks=StreamConfig(
                name=settings.tasks_stream,
                description="AgentOS jobs published on agent.execute (work queue)",
                subjects=[settings.tasks_subject],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                max_age=settings.task_retention,
                duplicate_window=120.0,
                num_replicas=settings.kv_replicas,
                discard=DiscardPolicy.OLD,
            ),
            consumer=ConsumerConfig(
                durable_name=settings.tasks_consumer,
                description="The worker pool: every worker pulls from this one consumer",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait,
                # Unlimited on the server: a message past its last delivery is not left stuck
                # in the work queue (where no advisory would find it again) but delivered once
                # more, and the runner dead-letters it without running it.
                max_deliver=-1,
                backoff=backoff,
                max_ack_pending=100_000,
                max_waiting=4096,
                filter_subject=settings.tasks_subject,
            ),
            callbacks=StreamConfig(
                name=settings.callback_stream,
                description="AgentOS callback outbox: results waiting for delivery",
                subjects=[settings.callback_subject],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                max_age=settings.callback_retry_for + 3600,
                duplicate_window=120.0,
                num_replicas=settings.kv_replicas,
            ),
            callback_consumer=ConsumerConfig(
                durable_name=CALLBACK_CONSUMER,
                description="Callback deliveries, shared by the pool",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=settings.callback_timeout + 20,
                max_deliver=-1,
                max_ack_pending=100_000,
                max_waiting=4096,
                filter_subject=settings.callback_subject,
            ),
            dead_letters=StreamConfig(
                name=settings.dlq_stream,
                description="AgentOS dead letters: malformed jobs, exhausted jobs, undeliverable "
                "callbacks, each with its reason",
                subjects=[f"{settings.dlq_subject}.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=settings.dlq_max_age,
                duplicate_window=120.0,
                num_replicas=settings.kv_replicas,
            ),
            results=KeyValueConfig(
                bucket=settings.tasks_bucket,
                description="AgentOS job states and results",
                history=1,
                ttl=settings.task_retention,
                storage=StorageType.FILE,
                replicas=settings.kv_replicas,
            ),
        )


async def ensure_all(js: JetStreamContext, topology: Topology) -> KeyValue:
    """Every stream, consumer and bucket; returns the results bucket."""
    await ensure_stream(js, topology.tasks)
    await ensure_consumer(js, topology.tasks.name or "", topology.consumer)
    await ensure_stream(js, topology.callbacks)
    await ensure_consumer(js, topology.callbacks.name or "", topology.callback_consumer)
    await ensure_stream(js, topology.dead_letters)
    return await ensure_bucket(js, topology.results)
