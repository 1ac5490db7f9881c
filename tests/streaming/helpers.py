"""Helpers for the streaming tests: real clients and a real push receiver."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server, ServerConnection, serve

from tests.agents.helpers import local_agent
from worker.agents.store import ResolvedAgent
from worker.outbound.ssrf import CallbackPolicy

LOOPBACK = CallbackPolicy(["127.0.0.0/8"])
"""A policy that lets pushes reach these tests' receivers, which listen on loopback."""


def resolved(type_name: str, config: dict[str, Any]) -> ResolvedAgent:
    """An agent built in this process, as the store would resolve it."""
    return local_agent(type_name, config)


async def create_agent(
    http: aiohttp.ClientSession, base: str, type_name: str, config: dict[str, Any]
) -> str:
    async with http.post(f"{base}/v1/agents", json={"type": type_name, "config": config}) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])


async def sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    """The events of an SSE response, as dicts of their fields (comments skipped)."""
    event: dict[str, str] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")


async def sse_frames(
    resp: aiohttp.ClientResponse, into: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every frame of an SSE response (``id`` checked against ``seq``), added to ``into`` as
    they arrive when it is given (a test can wait on them)."""
    frames = [] if into is None else into
    async for event in sse_events(resp):
        frame = orjson.loads(event["data"])
        if event.get("event") != "error":
            assert int(event["id"]) == frame["seq"], event
        frames.append(frame)
    return frames


async def ws_frames(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """The frames of a WebSocket up to and including the first final one."""
    frames = []
    async for msg in ws:
        assert msg.type == aiohttp.WSMsgType.TEXT
        frames.append(orjson.loads(msg.data))
        if frames[-1].get("status") in {"completed", "failed", "cancelled"}:
            break
    return frames


def assert_run(frames: list[dict[str, Any]], *, first: int = 1, final: str = "completed") -> None:
    """seq without gaps from ``first``, ``started`` first (if from 1), one final frame last."""
    assert [f["seq"] for f in frames] == list(range(first, first + len(frames))), frames
    if first == 1:
        assert frames[0]["status"] == "started"
    assert [f["status"] for f in frames].count(final) == 1
    assert frames[-1]["status"] == final
    assert all(f["status"] in {"started", "processing"} for f in frames[:-1])


async def stalled_reader(url: str) -> ClientConnection:
    """A WebSocket client that reads nothing: tiny receive buffer, one-message queue."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host, port = url.split("//")[1].split("/", maxsplit=1)[0].split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await websockets.connect(
        url, sock=sock, max_queue=1, compression=None, proxy=None, ping_interval=None
    )


@dataclass
class PushReceiver:
    """A real WebSocket server standing in for the Go gateway's stream endpoint."""

    drop_after: int | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    accepted: int = 0
    """TCP connections accepted, handshake or not."""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    server: Server | None = None
    headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/internal/stream"

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.headers.append(dict(ws.request.headers) if ws.request else {})
        async for message in ws:
            frame = orjson.loads(message)
            self.frames.append(frame)
            if self.drop_after is not None and len(self.frames) >= self.drop_after:
                self.drop_after = None
                ws.transport.abort()  # an abrupt drop, as a crashed gateway would
                return
            if frame["status"] in {"completed", "failed", "cancelled"}:
                self.done.set()

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames]


@contextlib.asynccontextmanager
async def push_receiver(drop_after: int | None = None) -> AsyncIterator[PushReceiver]:
    """A started ``PushReceiver`` on a free loopback port."""
    rec = PushReceiver(drop_after=drop_after)

    class Counted(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            rec.accepted += 1
            super().connection_made(transport)

    async with serve(
        rec.handle, "127.0.0.1", 0, compression=None, create_connection=Counted
    ) as server:
        rec.server = server
        yield rec


__all__ = ["websockets"]
