"""The floor: a bare nats-py fetch-and-ack loop on a JetStream stream, as a subprocess.

Usage: python -m bench.jobs.rawloop NATS_URL STREAM CONSUMER COUNT BATCH
Prints one JSON line: {"count": N, "seconds": S}.
"""

from __future__ import annotations

import asyncio
import sys
import time

import nats
import orjson
from nats.errors import TimeoutError as NatsTimeout


async def main(url: str, stream: str, consumer: str, count: int, batch: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind(durable=consumer, stream=stream)
    seen = 0
    start = 0.0
    deadline = time.monotonic() + 120
    while seen < count and time.monotonic() < deadline:
        try:
            msgs = await sub.fetch(batch, timeout=1.0)
        except NatsTimeout:
            continue
        if not start:
            start = time.perf_counter()
        for msg in msgs:
            await msg.ack()
        seen += len(msgs)
    elapsed = time.perf_counter() - start
    await nc.close()
    sys.stdout.write(orjson.dumps({"count": seen, "seconds": elapsed}).decode() + "\n")


if __name__ == "__main__":
    url, stream, consumer, count, batch = sys.argv[1:6]
    asyncio.run(main(url, stream, consumer, int(count), int(batch)))
