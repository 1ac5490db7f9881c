"""Frames, coalescing and a reader's bounded queue."""

from __future__ import annotations

import orjson
import pytest

from worker.streaming.frames import COMPLETED, PROCESSING, Draft, WireFrame
from worker.streaming.outbox import FrameQueue, ReaderTooSlow


def frame(seq: int, status: str = PROCESSING, partial: object = "x") -> WireFrame:
    draft = Draft(status=status, progress=seq, message=f"m{seq}", partial_result=partial)
    return WireFrame.parse(draft.encode(task_id="t", seq=seq, attempt=1), sseq=seq)


def test_frame_json_has_the_contract_fields() -> None:
    done = Draft(status=COMPLETED, progress=100, message="done", result={"a": 1})
    body = orjson.loads(done.encode(task_id="t1", seq=7, attempt=2))
    assert body["task_id"] == "t1"
    assert (body["seq"], body["status"], body["progress"], body["attempt"]) == (
        7,
        COMPLETED,
        100,
        2,
    )
    assert body["result"] == {"a": 1}
    assert body["ts"].endswith("Z")
    assert "partial_result" in body
    assert "error" not in body


async def test_queue_coalesces_progress_but_never_final_frames() -> None:
    box = FrameQueue(max_frames=2, max_bytes=1 << 20)
    shared = [frame(i, partial=f"t{i} ") for i in range(1, 6)]
    for f in shared:
        box.offer(f)
    box.offer(frame(6, COMPLETED, None))
    got = [await box.get() for _ in range(len(box))]
    assert [f.seq for f in got] == [1, 5, 6]
    merged = orjson.loads(got[1].data)
    assert merged["coalesced"] == 4
    assert merged["partial_result"] == "t2 t3 t4 t5 "
    assert got[1].first_seq == 2
    assert got[2].status == COMPLETED
    # Frames are shared between readers: coalescing worked on a copy.
    assert orjson.loads(shared[1].data)["partial_result"] == "t2 "


async def test_queue_fails_a_hopelessly_slow_reader_with_the_resume_seq() -> None:
    box = FrameQueue(max_frames=2, max_bytes=4096)
    box.offer(frame(1))
    box.offer(frame(2))
    for seq in range(3, 100):
        box.offer(frame(seq, partial="y" * 100))
    with pytest.raises(ReaderTooSlow) as caught:
        await box.get()
    assert caught.value.resume_seq == 1


async def test_lossless_queue_refuses_instead_of_coalescing() -> None:
    box = FrameQueue(max_frames=2, max_bytes=1 << 20, lossless=True)
    assert box.offer(frame(1))
    assert box.offer(frame(2))
    assert not box.offer(frame(3))
    assert len(box) == 2
