"""Frames, coalescing and a reader's bounded queue."""

from __future__ import annotations

import orjson
import pytest

from worker.streaming.frames import COMPLETED, PROCESSING, TOKEN, Draft, FrameEvent, WireFrame
from worker.streaming.outbox import FrameQueue, ReaderTooSlow


def frame(seq: int, status: str = PROCESSING, partial: object = "x") -> WireFrame:
    draft = Draft(status=status, progress=seq, message=f"m{seq}", partial_result=partial)
    return WireFrame.parse(draft.encode(task_id="t", seq=seq, attempt=1), sseq=seq)


def step(seq: int, event: FrameEvent, data: dict[str, object] | None = None) -> WireFrame:
    """A ``processing`` frame of an agent step (a token's text is its ``data``'s ``text``)."""
    draft = Draft(status=PROCESSING, progress=seq, message=f"m{seq}", event=event)
    if event == TOKEN:
        draft.partial_result = (data or {})["text"]
    else:
        draft.data = data
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


async def test_queue_coalesces_tokens_but_never_merges_step_frames() -> None:
    box = FrameQueue(max_frames=2, max_bytes=1 << 20)
    tool = step(4, "tool_end", {"tool": "add", "output": "5"})
    node = step(7, "node", {"node": "model"})
    offered = [
        step(1, TOKEN, {"text": "a"}),
        step(2, TOKEN, {"text": "b"}),
        step(3, TOKEN, {"text": "c"}),
        tool,
        step(5, TOKEN, {"text": "d"}),
        step(6, TOKEN, {"text": "e"}),
        node,
        frame(8, COMPLETED, None),
    ]
    for f in offered:
        box.offer(f)
    got = [await box.get() for _ in range(len(box))]
    assert [f.seq for f in got] == [1, 3, 4, 6, 7, 8]
    tokens = [orjson.loads(got[i].data) for i in (1, 3)]
    assert [(t["partial_result"], t["event"], t["coalesced"]) for t in tokens] == [
        ("bc", TOKEN, 2),
        ("de", TOKEN, 2),  # not merged into the tool frame before it
    ]
    assert got[2] is tool  # step frames go through whole: the very frame every reader shares
    assert got[4] is node
    assert box.coalesced == 2


async def test_tokens_merged_with_plain_progress_make_a_plain_frame() -> None:
    box = FrameQueue(max_frames=1, max_bytes=1 << 20)
    for f in (step(1, TOKEN, {"text": "x"}), frame(2, partial="y"), step(3, TOKEN, {"text": "z"})):
        box.offer(f)
    (merged,) = [await box.get() for _ in range(len(box))]
    body = orjson.loads(merged.data)
    assert (body["partial_result"], body["coalesced"]) == ("xyz", 3)
    assert "event" not in body
    assert merged.event is None


def test_drafts_coalesce_by_the_same_rule() -> None:
    def token(text: str) -> Draft:
        return Draft(status=PROCESSING, progress=0, message="m", partial_result=text, event=TOKEN)

    tokens = token("a")
    tokens.absorb(token("b"))
    assert (tokens.event, tokens.partial_result, tokens.coalesced) == (TOKEN, "ab", 2)
    plain = Draft(status=PROCESSING, progress=0, message="m", partial_result="p")
    plain.absorb(token("q"))
    assert (plain.event, plain.partial_result) == (None, "pq")
    tool = Draft(status=PROCESSING, progress=0, message="m", event="tool_start", data={})
    assert [d.coalescible for d in (tokens, plain, tool)] == [True, True, False]


async def test_lossless_queue_refuses_step_frames_too_when_full() -> None:
    box = FrameQueue(max_frames=1, max_bytes=1 << 20, lossless=True)
    assert box.offer(step(1, TOKEN, {"text": "a"}))
    assert not box.offer(step(2, "node", {"node": "model"}))  # read from the log instead
