"""Publisher of the worker phases, in its own process (it stands for the runs on other workers):
``python -m bench.streaming.publish URL RATE SECONDS TASK...`` connects, says ``ready`` on its
standard output, reads a wall time from its standard input, and from then on publishes frames
(seq 2 on) for each task to the frames stream for SECONDS, ``RATE`` per second each (at up to
10 per second spread evenly over the period, as concurrent runs would be). Started before the
watchers connect, it has imported and connected long before the measured seconds.

Frames go out as plain NATS publishes (JetStream stores them all the same), without waiting
for acknowledgements: a run's writer waits for them, but on the worker running it, not on the
one under test, and acknowledging 10,000 frames a second would take the load generator a good
part of its CPU.
"""

from __future__ import annotations

import asyncio
import sys
import time

import nats

from bench.streaming import procs
from worker.streaming.frames import PROCESSING, Draft
from worker.streaming.hub import StreamOptions
from worker.streaming.log import FrameLog


async def publish(url: str, rate: float, seconds: float, tasks: list[str]) -> None:
    nc = await nats.connect(url, pending_size=8 << 20)
    opts = StreamOptions()
    flog = FrameLog(nc=nc, js=nc.jetstream(), stream=opts.stream, limits=opts.limits)
    subjects = [(t, flog.subject(t)) for t in tasks]
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    start = float(await loop.run_in_executor(None, sys.stdin.readline) or 0)
    await asyncio.sleep(max(0.0, start - time.time()))
    until = loop.time() + seconds
    # Paced frames go out in 20 slots per period (every 5 ms at 10/s), as concurrent runs
    # would spread them; finer slots cost the publisher a timer and a write each.
    slots = 20 if rate <= 10 else 1
    size = max(1, -(-len(subjects) // slots))
    chunks = [subjects[i : i + size] for i in range(0, len(subjects), size)]
    seq = 2
    next_at = loop.time()
    while loop.time() < until:
        for chunk in chunks:
            for task_id, subject in chunk:
                draft = Draft(
                    status=PROCESSING, progress=0, message="bench", partial_result="token"
                )
                data = draft.encode(task_id=task_id, seq=seq, attempt=1)
                await nc.publish(subject, data, headers={"Nats-Msg-Id": f"{task_id}:{seq}"})
            next_at += 1 / rate / len(chunks)
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        seq += 1
    await nc.flush()
    await nc.close()


if __name__ == "__main__":
    url, rate, seconds, *names = sys.argv[1:]
    procs.run(publish(url, float(rate), float(seconds), names))
