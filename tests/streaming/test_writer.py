"""The frame writer against a real nats-server that restarts in the middle of a run."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats as nats_client
import orjson

from worker.streaming.frames import COMPLETED, PROCESSING, STARTED, TOKEN, Draft, FrameEvent
from worker.streaming.hub import StreamHub
from worker.streaming.log import FrameLog, LogLimits
from worker.streaming.writer import FrameWriter
from worker.testing import NatsServer, wait_for

LIMITS = LogLimits(max_age=3600, max_bytes=1 << 26, max_per_task=1000)


async def stored(log: FrameLog, task_id: str) -> list[dict[str, object]]:
    """Every stored frame of ``task_id``, oldest first."""
    frames = []
    sseq = 0
    while (frame := await log.next_after(task_id, sseq)) is not None:
        frames.append(orjson.loads(frame.data))
        sseq = frame.sseq
    return frames


async def test_frames_emitted_while_nats_restarts_are_published_after_it(tmp_path: Path) -> None:
    server = NatsServer(store_dir=tmp_path / "nats").start()
    nc = await nats_client.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        log = FrameLog(nc=nc, js=nc.jetstream(), stream="FRAMES_T", limits=LIMITS)
        await log.ensure()
        writer = FrameWriter(log=log, task_id="restart", service="test", ack_timeout=1.0)
        writer.start()
        writer.emit(Draft(status=STARTED, progress=0, message="started"))
        assert await asyncio.wait_for(writer.attempt, 5) == 1

        server.stop()
        for i in range(1, 4):  # emitted while the log is unreachable: retried, not dropped
            writer.emit(Draft(status=PROCESSING, progress=i * 25, message=f"step {i}"))
        writer.emit(Draft(status=COMPLETED, progress=100, message="done", result="ok"))
        await wait_for(lambda: not nc.is_connected, what="the client to see the server go")
        server.start()
        await writer.close(within=20)

        frames = await stored(log, "restart")
        assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
        assert frames[0]["status"] == STARTED
        assert frames[-1]["status"] == COMPLETED
        assert frames[-1]["result"] == "ok"
        assert len(frames) == 5
    finally:
        await nc.close()
        server.close()


def _step(event: FrameEvent, n: int) -> Draft:
    return Draft(status=PROCESSING, progress=0, message="m", event=event, data={"n": n})


async def test_a_backlog_coalesces_tokens_but_publishes_every_step_frame(hub: StreamHub) -> None:
    task_id = uuid.uuid4().hex
    writer = FrameWriter(log=hub.log, task_id=task_id, service="test", max_pending=4)
    writer.start()
    writer.emit(Draft(status=STARTED, progress=0, message="started"))
    # Emitted in one go, before the publisher runs: a backlog past max_pending.
    texts = [f"t{i} " for i in range(40)]
    calls = {10: _step("tool_start", 1), 20: _step("tool_end", 2), 30: _step("node", 3)}
    for i, text in enumerate(texts):
        if i in calls:
            writer.emit(calls[i])
        writer.emit(
            Draft(status=PROCESSING, progress=0, message="t", partial_result=text, event=TOKEN)
        )
    writer.emit(Draft(status=COMPLETED, progress=100, message="done", result="ok"))
    await writer.close(within=10)

    frames = await stored(hub.log, task_id)
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    steps = [(f["event"], f["data"]) for f in frames if f.get("event") not in {None, TOKEN}]
    assert steps == [("tool_start", {"n": 1}), ("tool_end", {"n": 2}), ("node", {"n": 3})]
    tokens = [f for f in frames if f.get("event") == TOKEN]
    assert "".join(str(f["partial_result"]) for f in tokens) == "".join(texts)
    emitted = 2 + len(texts) + len(calls)
    assert len(frames) < emitted  # the backlog did coalesce...
    assert sum(int(str(f.get("coalesced", 1))) for f in frames) == emitted  # ...losing none
