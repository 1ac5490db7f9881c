"""Invocation slots come back however a run ends, and the chat socket keeps one run at a time,
when its messages reach the worker together."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.conftest import SpawnWorker
from tests.http.helpers import call, metric
from worker.testing import wait_for

IN_FLIGHT = "agentos_http_invocations_in_flight"
SOCKETS = "agentos_websocket_connections"
FINAL = {"completed", "failed", "cancelled"}


async def _gauge_settles(http: aiohttp.ClientSession, base: str, name: str, want: float) -> None:
    """Wait until the worker's gauge ``name`` reads ``want`` (a slot that leaked never does)."""

    async def reads_want() -> bool:
        return await metric(http, base, name, service="ai-worker") == want

    await wait_for(reads_want, what=f"{name} to read {want:g}", within=10)


async def _send_at_once(url: str, texts: list[str], *, close: bool) -> list[dict[str, Any]]:
    """Open the chat socket, then write ``texts`` (and the close frame, if ``close``) in one TCP
    write, so the worker reads them together; return the messages it sends back, up to the
    final frame, or up to the end of the connection when ``close``.

    A hand-driven client (websockets' sans-I/O protocol on a plain stream) because a socket
    client writes each message on its own, and the worker may read them apart.
    """
    uri = parse_uri(url)
    protocol = ClientProtocol(uri)
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    received: list[dict[str, Any]] = []
    try:
        protocol.send_request(protocol.connect())
        writer.write(b"".join(protocol.data_to_send()))
        while protocol.state is State.CONNECTING:
            data = await reader.read(1 << 16)
            assert data, "the worker closed the connection during the handshake"
            protocol.receive_data(data)
        assert protocol.state is State.OPEN, protocol.handshake_exc
        for text in texts:
            protocol.send_text(text.encode())
        if close:
            protocol.send_close(1000)
        writer.write(b"".join(protocol.data_to_send()))
        await writer.drain()
        while data := await reader.read(1 << 16):  # until the worker closes its end
            protocol.receive_data(data)
            received.extend(
                orjson.loads(event.data)
                for event in protocol.events_received()
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT
            )
            if not close and received and received[-1].get("status") in FINAL:
                break
    finally:
        writer.close()
        await writer.wait_closed()
    return received


async def test_a_chat_socket_closed_before_its_run_starts_gives_its_slot_back(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker(
        {"WORKER_MAX_CONCURRENT_INVOCATIONS": "1", "WORKER_MAX_QUEUED_INVOCATIONS": "0"}
    )
    _, slow, _ = await call(
        http,
        "POST",
        w.url + "/v1/agents",
        json={"type": "steps", "config": {"steps": 5, "step_delay": "100ms"}},
    )
    _, echo, _ = await call(http, "POST", w.url + "/v1/agents", json={"type": "echo"})
    chat_url = w.url.replace("http://", "ws://", 1) + f"/v1/agents/{slow['id']}/ws"
    for attempt in range(3):
        await _send_at_once(chat_url, [f'{{"input": "run {attempt}"}}'], close=True)
        # The worker is done with the socket once it no longer counts it.
        await _gauge_settles(http, w.url, SOCKETS, 0.0)
    await _gauge_settles(http, w.url, IN_FLIGHT, 0.0)
    status, body, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{echo['id']}/invoke", json={"input": "after"}
    )
    assert (status, body.get("output")) == (200, "after"), body


async def test_a_cancel_read_with_the_input_cancels_the_run_once_it_has_started(
    spawn_worker: SpawnWorker, http: aiohttp.ClientSession
) -> None:
    w = spawn_worker()
    _, slow, _ = await call(
        http,
        "POST",
        w.url + "/v1/agents",
        json={"type": "steps", "config": {"steps": 50, "step_delay": "100ms"}},
    )
    chat_url = w.url.replace("http://", "ws://", 1) + f"/v1/agents/{slow['id']}/ws"
    # Read together, the cancel comes while the run is still starting; then a second input,
    # which finds the socket busy rather than starting a second run beside the first.
    got = await _send_at_once(
        chat_url, ['{"input": "x"}', '{"cancel": true}', '{"input": "y"}'], close=False
    )
    errors = [m["error"]["code"] for m in got if "status" not in m]
    frames = [m for m in got if "status" in m]
    assert errors == ["busy"], got
    assert frames[0]["status"] == "started"
    assert frames[-1]["status"] == "cancelled"
    assert {f["task_id"] for f in frames} == {frames[0]["task_id"]}
    await _gauge_settles(http, w.url, IN_FLIGHT, 0.0)
