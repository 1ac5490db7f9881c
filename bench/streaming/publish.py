"""Publisher of the worker phases, in its own process so the clients keep a core to themselves:
``python -m bench.streaming.publish URL RATE START SECONDS TASK...`` publishes frames (seq 2 on)
for each task to the frames stream from wall time START, ``RATE`` per second each (0: as fast
as JetStream takes them).
"""

from __future__ import annotations

import asyncio
import sys
import time

import nats

from worker.streaming.frames import PROCESSING, Draft
from worker.streaming.hub import StreamOptions
from worker.streaming.log import FrameLog


async def publish(url: str, rate: float, start: float, seconds: float, tasks: list[str]) -> None:
    nc = await nats.connect(url)
    opts = StreamOptions()
    flog = FrameLog(nc=nc, js=nc.jetstream(), stream=opts.stream, limits=opts.limits)
    await asyncio.sleep(max(0.0, start - time.time()))
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    groups = 100 if rate > 0 else 1  # paced frames spread over the period, as runs would be
    size = max(1, -(-len(tasks) // groups))
    chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    seq = 2
    next_at = loop.time()
    while loop.time() < until:
        for chunk in chunks:
            futures = []
            for task_id in chunk:
                draft = Draft(
                    status=PROCESSING, progress=0, message="bench", partial_result="token"
                )
                data = draft.encode(task_id=task_id, seq=seq, attempt=1)
                futures.append(await flog.publish_async(task_id, data, seq=seq))
            await asyncio.gather(*futures)
            if rate > 0:
                next_at += 1 / rate / len(chunks)
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        seq += 1
    await nc.close()


if __name__ == "__main__":
    url, rate, start, seconds, *names = sys.argv[1:]
    asyncio.run(publish(url, float(rate), float(start), float(seconds), names))
