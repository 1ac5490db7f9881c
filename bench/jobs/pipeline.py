"""The floor of a job: the same durable steps as the worker's, with nothing else around them.

Usage: python -m bench.jobs.pipeline NATS_URL COUNT SECONDS SECRET
Runs on the worker's own stream, consumer, results bucket and frames stream (the bench stops the
worker pool first), so the server does exactly the work it does for the worker. Per message:
claim (KV create), the `started` frame (publish expecting no earlier frame), ``ainvoke`` of the
same `echo` Runnable, the final frame, the result (KV put), the callback POST signed with
standardwebhooks, the ack. No validation, dead letters, spans, metrics, logs, heartbeats or
outbox: what is left is what any implementation of the contract pays.
Prints ``ready`` once bound to the consumer, then one JSON line: {"count": N, "seconds": S}.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import nats
import orjson
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from standardwebhooks.webhooks import Webhook

from worker.agents.types.echo import EchoConfig, build
from worker.config import Settings

IN_FLIGHT = 256  # the bench's WORKER_MAX_JOBS
BATCH = 64


class Pipeline:
    def __init__(self, js: Any, kv: Any, http: aiohttp.ClientSession, secret: str) -> None:
        self.js = js
        self.kv = kv
        self.http = http
        self.signer = Webhook(secret)
        self.runnable = build(EchoConfig(), None)  # type: ignore[arg-type]
        self.done = 0

    async def job(self, msg: Msg) -> None:
        task = orjson.loads(msg.data)
        task_id = task["id"]
        record = {"id": task_id, "status": "running", "agent_id": task["payload"]["agent_id"]}
        await self.kv.create(task_id, orjson.dumps(record))
        frames = f"agentos.frames.{task_id}"
        started = {"task_id": task_id, "seq": 1, "status": "started", "progress": 0}
        await self.js.publish(
            frames, orjson.dumps(started), headers={"Nats-Expected-Last-Subject-Sequence": "0"}
        )
        output = await self.runnable.ainvoke(task["payload"]["input"])
        final = {"task_id": task_id, "seq": 2, "status": "completed", "result": output}
        await self.js.publish(frames, orjson.dumps(final))
        record.update(status="completed", result=output)
        await self.kv.put(task_id, orjson.dumps(record))
        body = orjson.dumps({"task_id": task_id, "status": "completed", "result": output})
        now = datetime.now(UTC)
        webhook_id = f"msg_{task_id}"
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(webhook_id, now, body.decode()),
            "Content-Type": "application/json",
        }
        async with self.http.post(task["callback"], data=body, headers=headers) as resp:
            await resp.read()
        await msg.ack()
        self.done += 1


async def main(url: str, count: int, seconds: float, secret: str) -> None:
    names = Settings()
    nc = await nats.connect(url)
    js = nc.jetstream()
    kv = await js.key_value(names.tasks_bucket)
    sub = await js.pull_subscribe_bind(durable=names.tasks_consumer, stream=names.tasks_stream)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128))
    pipe = Pipeline(js, kv, http, secret)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    running: set[asyncio.Task[None]] = set()
    start = 0.0
    waiting = BATCH
    deadline = time.monotonic() + seconds
    while pipe.done < count and time.monotonic() < deadline:
        free = IN_FLIGHT - len(running)
        if free <= 0:
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            continue
        try:
            msgs = await sub.fetch(min(free, BATCH, max(1, waiting)), timeout=0.5)
        except NatsTimeout:
            waiting = 0
            if start and not running:
                break  # the pool's other processes took the rest
            continue
        start = start or time.perf_counter()
        waiting = msgs[-1].metadata.num_pending or 0
        for msg in msgs:
            task = asyncio.create_task(pipe.job(msg))
            running.add(task)
            task.add_done_callback(running.discard)
    if running:
        await asyncio.wait(running, timeout=10)
    elapsed = time.perf_counter() - start if start else 0.0
    await http.close()
    await nc.close()
    sys.stdout.write(orjson.dumps({"count": pipe.done, "seconds": elapsed}).decode() + "\n")


if __name__ == "__main__":
    url, count, seconds, secret = sys.argv[1:5]
    try:  # the worker's event loop: uvloop where it is built
        import uvloop
    except ImportError:
        asyncio.run(main(url, int(count), float(seconds), secret))
    else:
        uvloop.run(main(url, int(count), float(seconds), secret))
