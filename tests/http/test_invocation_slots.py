"""Invocation slots come back whichever way a run ends, on every door that takes one."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from tests.conftest import SpawnWorker
from tests.http.helpers import call

IN_FLIGHT = "agentos_http_invocations_in_flight"
SOCKETS = "agentos_websocket_connections"


async def _gauge(http: aiohttp.ClientSession, base: str, name: str) -> float:
    _, text, _ = await call(http, "GET", base + "/metrics")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return 0.0


async def _gauge_settles(
    http: aiohttp.ClientSession, base: str, name: str, want: float, *, within: float = 5.0
) -> float:
    """The gauge's value once it reads ``want``, or its last value when ``within`` runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await _gauge(http, base, name)
        if value == want or loop.time() >= deadline:
            return value
        await asyncio.sleep(0.02)  # a poll interval: the wait itself is on the gauge


async def _send_input_and_close_at_once(url: str, text: str) -> None:
    """Open the chat socket, then write an input message and the close frame in one TCP write,
    so the worker reads both together: the socket ends before the run it asked for can start.

    A hand-driven client (websockets' sans-I/O protocol on a plain stream) because a socket
    client writes each message on its own, and the worker may read them apart.
    """
    uri = parse_uri(url)
    protocol = ClientProtocol(uri)
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    try:
        protocol.send_request(protocol.connect())
        writer.write(b"".join(protocol.data_to_send()))
        while protocol.state is State.CONNECTING:
            data = await reader.read(1 << 16)
            assert data, "the worker closed the connection during the handshake"
            protocol.receive_data(data)
        assert protocol.state is State.OPEN, protocol.handshake_exc
        protocol.send_text(text.encode())
        protocol.send_close(1000)
        writer.write(b"".join(protocol.data_to_send()))
        await writer.drain()
        while data := await reader.read(1 << 16):  # until the worker closes its end
            protocol.receive_data(data)
    finally:
        writer.close()
        await writer.wait_closed()


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
        await _send_input_and_close_at_once(chat_url, f'{{"input": "run {attempt}"}}')
        # The worker is done with the socket once it no longer counts it.
        assert await _gauge_settles(http, w.url, SOCKETS, 0.0) == 0.0
    assert await _gauge_settles(http, w.url, IN_FLIGHT, 0.0) == 0.0
    status, body, _ = await call(
        http, "POST", f"{w.url}/v1/agents/{echo['id']}/invoke", json={"input": "after"}
    )
    assert (status, body.get("output")) == (200, "after"), body
