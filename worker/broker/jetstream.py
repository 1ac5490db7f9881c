"""Create-or-update for JetStream objects, shared by every door that owns a stream or bucket.

``add_stream``/``add_consumer``/``create_key_value`` fail or keep the old settings when an object
exists, and ``pull_subscribe`` never changes an existing consumer: a changed configuration is
applied here.
"""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, KeyValueConfig, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from worker.telemetry.logs import get_logger

log = get_logger(__name__)


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or update it when its configuration changed."""
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", stream=config.name)
        return
    current = info.config
    wanted = config.as_dict()
    if any(current.as_dict().get(k) != v for k, v in wanted.items()):
        await js.update_stream(config)
        log.info("stream updated", stream=config.name)


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer, or update it when its configuration changed."""
    name = config.durable_name or ""
    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        log.info("consumer created", stream=stream, consumer=name)
        return
    current = info.config.as_dict()
    wanted = config.as_dict()
    if any(current.get(k) != v for k, v in wanted.items()):
        # add_consumer with an existing durable name is the server's create-or-update.
        await js.add_consumer(stream, config)
        log.info("consumer updated", stream=stream, consumer=name)


async def ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """Open the key-value bucket, creating it if missing (TTL and replica changes are applied)."""
    try:
        kv = await js.key_value(config.bucket)
    except BucketNotFoundError:
        return await js.create_key_value(config=config)
    info = await js.stream_info(f"KV_{config.bucket}")
    current = info.config
    changed = False
    if config.ttl and current.max_age != config.ttl:
        current.max_age = config.ttl
        changed = True
    if current.num_replicas != config.replicas:
        current.num_replicas = config.replicas
        changed = True
    if changed:
        await js.update_stream(current)
        log.info("bucket updated", bucket=config.bucket)
    return kv
