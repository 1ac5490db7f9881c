"""A reader that stops reading while a run streams thousands of frames: the worker's memory
stays bounded, the stalled reader is coalesced, caught up from the log, or closed with 4008;
others get every frame in order. (The pace they keep meanwhile is measured by
``python -m bench.streaming``, its ``stalled`` mode.)"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import orjson
import websockets

from tests.conftest import SpawnWorker
from tests.streaming.helpers import assert_run, stalled_reader
from worker.testing import WorkerProcess

WORDS = 4000  # 8,000 tokens (words and spaces), each word 60 characters: ~2.3 MB of frames
STALLED = 5


def rss_mib(proc: WorkerProcess) -> float:
    assert proc.proc is not None
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_stalled_readers_keep_memory_bounded_and_others_keep_pace(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker({"WORKER_STREAM_QUEUE_BYTES": str(256 << 10)})
    reply = " ".join(f"{i:06d}" + "w" * 54 for i in range(WORDS))
    # A token a millisecond: a fast model, still a pace a reader can be measured against.
    model = {"provider": "fake", "responses": [reply], "token_delay": "1ms"}
    config = {"type": "chat", "config": {"model": model}}
    async with http.post(
        f"{w.url}/v1/agents",
        data=io.BytesIO(orjson.dumps(config)),
        headers={"Content-Type": "application/json"},
    ) as resp:
        agent_id = (await resp.json())["id"]
    # Warm the worker up (first run, first connections) before the baseline.
    async with http.post(f"{w.url}/v1/agents/{agent_id}/stream", json={"input": "warm"}) as r:
        await r.read()
    baseline = rss_mib(w)

    async with http.post(f"{w.url}/v1/agents/{agent_id}/stream", json={"input": "go"}) as run:
        task_id = run.headers["X-Task-ID"]
        events = f"{w.url}/v1/tasks/{task_id}/events".replace("http", "ws", 1)
        stalled = [await stalled_reader(events) for _ in range(STALLED)]
        frames: list[dict[str, object]] = []

        async def read_fast() -> None:
            async with http.ws_connect(events) as ws:
                frames.extend([orjson.loads(msg.data) async for msg in ws])

        reading = asyncio.create_task(read_fast())
        peak = baseline
        run_body = asyncio.create_task(run.read())
        while not run_body.done():
            peak = max(peak, rss_mib(w))
            await asyncio.sleep(0.05)  # the pace of the memory samples; orders nothing
        await asyncio.wait_for(reading, 30)

    # Every frame reached the reader that kept reading, in order.
    assert_run(frames)
    assert len(frames) == 2 * WORDS + 1

    # The stalled readers got coalesced frames or were closed as too slow, with a resume seq.
    outcomes = []
    for ws in stalled:
        got = []
        try:
            async with asyncio.timeout(20):
                got.extend([orjson.loads(message) async for message in ws])
        except websockets.ConnectionClosedError:
            pass
        outcomes.append((ws.close_code, ws.close_reason, got))
    for code, reason, got in outcomes:
        if code == 4008:
            assert "resume from seq" in reason
        else:
            assert code == 1000
            assert got[-1]["status"] == "completed"
            # Coalesced while it stalled, or caught up from the log at its own pace once it
            # read again (a pull consumer, a batch at a time: memory bounded all the same).
            assert any(f.get("coalesced") for f in got) or len(got) == 2 * WORDS + 1

    growth = peak - baseline
    print(
        f"worker RSS: baseline {baseline:.1f} MiB, peak {peak:.1f} MiB (+{growth:.1f}); "
        f"fast reader {len(frames)} frames; stalled: {[(c, len(g)) for c, _, g in outcomes]}"
    )
    assert growth < 64, growth
