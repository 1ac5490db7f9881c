"""The push client against a real WebSocket receiver: full sequence, drops, give-up, traces."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import nats as nats_client
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from websockets.asyncio.server import ServerConnection, serve

from tests.streaming.helpers import LOOPBACK, assert_run, push_receiver, resolved
from tests.streaming.test_hub import collect
from worker.agents.fake_model import split_tokens
from worker.outbound.ssrf import CallbackPolicy
from worker.streaming.hub import StreamHub
from worker.streaming.push import PushOptions
from worker.testing import NatsServer, free_port, wait_for

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_receiver_gets_every_frame_in_order_final_last(hub: StreamHub) -> None:
    reply = "one two three four five six seven"
    agent = resolved(
        "chat", {"model": {"provider": "fake", "responses": [reply], "token_delay": "5ms"}}
    )
    async with push_receiver() as rec:
        task_id = uuid.uuid4().hex
        await hub.run(
            agent, "hi", task_id=task_id, time_limit=10, stream_url=rec.url, traceparent=TRACEPARENT
        )
        await asyncio.wait_for(rec.done.wait(), 10)
    assert_run(rec.frames)
    assert [f["partial_result"] for f in rec.frames[1:-1]] == split_tokens(reply)
    assert rec.frames[-1]["result"] == reply
    # The push connection carries the job's trace.
    assert rec.headers[0]["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]


async def test_receiver_that_drops_and_comes_back_sees_every_seq(hub: StreamHub) -> None:
    agent = resolved("steps", {"steps": 30, "step_delay": "10ms"})
    async with push_receiver(drop_after=8) as rec:
        task_id = uuid.uuid4().hex
        await hub.run(agent, "x", task_id=task_id, time_limit=10, stream_url=rec.url)
        await asyncio.wait_for(rec.done.wait(), 10)
    assert rec.connections >= 2
    seqs = rec.seqs()
    assert set(seqs) == set(range(1, 33))  # every seq (a repeat is allowed)
    assert seqs[-1] == 32
    assert rec.frames[-1]["status"] == "completed"
    assert seqs == sorted(seqs) or len(seqs) > 32


def _failed_connections() -> float:
    labels = {"service": "test", "outcome": "error"}
    return REGISTRY.get_sample_value("agentos_stream_push_connections_total", labels) or 0.0


async def test_receiver_down_at_first_is_reached_when_it_comes_up(hub: StreamHub) -> None:
    port = free_port()
    agent = resolved("steps", {"steps": 3, "step_delay": "1ms"})
    task_id = uuid.uuid4().hex
    failed = _failed_connections()
    await hub.run(agent, "x", task_id=task_id, time_limit=10, stream_url=f"ws://127.0.0.1:{port}/s")
    assert hub.pushing == 1  # the job is done; the pusher keeps trying on its own
    await wait_for(lambda: _failed_connections() > failed, what="the pusher to fail to connect")
    got: list[int] = []
    done = asyncio.Event()

    async def handle(ws: ServerConnection) -> None:
        async for message in ws:
            frame = orjson.loads(message)
            got.append(frame["seq"])
            if frame["status"] == "completed":
                done.set()

    async with serve(handle, "127.0.0.1", port):
        await asyncio.wait_for(done.wait(), 15)
    assert got == [1, 2, 3, 4, 5]


async def test_receiver_that_never_comes_back_is_given_up(hub: StreamHub) -> None:
    hub.options = dataclasses.replace(hub.options, push=PushOptions(give_up=0.5, max_backoff=0.1))
    agent = resolved("echo", {})
    await hub.run(
        agent,
        "x",
        task_id=uuid.uuid4().hex,
        time_limit=10,
        stream_url=f"ws://127.0.0.1:{free_port()}/s",
    )
    await wait_for(lambda: hub.pushing == 0, what="the pusher to give up")
    assert hub.pushing == 0


async def test_push_span_is_a_child_of_the_job_trace(nats: NatsServer) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    nc = await nats_client.connect(nats.url)
    hub = StreamHub(
        nc=nc,
        js=nc.jetstream(),
        service="test",
        policy=LOOPBACK,
        tracer=provider.get_tracer("t"),
    )
    await hub.start()
    try:
        async with push_receiver() as rec:
            await hub.run(
                resolved("echo", {}),
                "x",
                task_id=uuid.uuid4().hex,
                time_limit=10,
                stream_url=rec.url,
                traceparent=TRACEPARENT,
            )
            await asyncio.wait_for(rec.done.wait(), 10)
            # The push span ends when the pusher has closed its connection: wait for that (a
            # loaded machine takes more than a moment) rather than cancel it at hub.stop().
            await wait_for(lambda: hub.pushing == 0, what="the pusher to close its connection")
            assert hub.pushing == 0
    finally:
        await hub.stop()
        await nc.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    push = spans["agentos.stream push"]
    assert format(push.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert push.kind == trace.SpanKind.CLIENT
    connection = spans["agentos.stream push connection"]
    assert connection.parent is not None
    assert connection.parent.span_id == push.context.span_id


def _refused_pushes() -> float:
    value = REGISTRY.get_sample_value(
        "agentos_stream_push_connections_total", {"service": "test", "outcome": "refused"}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("allow", "host"),
    [
        # Loopback not listed: refused before any connection (the URL's literal address).
        (["hooks.example.com"], "127.0.0.1"),
        # Any public host allowed, and a name that resolves to loopback: refused by the resolver.
        (["*"], "localhost"),
    ],
)
async def test_stream_url_the_policy_refuses_gets_no_connection(
    nats: NatsServer, allow: list[str], host: str
) -> None:
    nc = await nats_client.connect(nats.url)
    hub = StreamHub(nc=nc, js=nc.jetstream(), service="test", policy=CallbackPolicy(allow))
    await hub.start()
    refused_before = _refused_pushes()
    try:
        async with push_receiver() as rec:
            task_id = uuid.uuid4().hex
            url = rec.url.replace("127.0.0.1", host)
            agent = resolved("steps", {"steps": 3, "step_delay": "1ms"})
            result = await hub.run(agent, "x", task_id=task_id, time_limit=10, stream_url=url)
            # A refusal is final: the pusher ends instead of retrying, so nothing can follow.
            await wait_for(lambda: hub.pushing == 0, what="the pusher to end")
            assert rec.accepted == 0
        assert _refused_pushes() == refused_before + 1
        # The run went on, and its frames are in the log for any reader.
        assert result.output == "completed 3 steps for input: x"
        assert_run(await collect(hub, task_id))
    finally:
        await hub.stop()
        await nc.close()
