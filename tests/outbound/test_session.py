"""The checked session: requests and WebSockets alike go through the policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from worker.outbound.session import checked_session
from worker.outbound.ssrf import CallbackPolicy, CallbackRefused, refusal_in


@dataclass
class Target:
    """A loopback server with an echo WebSocket and a redirect, counting what reached it."""

    port: int
    requests: int = 0


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    found = Target(port=0)

    @web.middleware
    async def count(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
        found.requests += 1
        return await handler(request)

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data)
        return ws

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{found.port}/ws")

    async def callback(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[count])
    app.router.add_get("/ws", echo)
    app.router.add_get("/moved", redirect)
    app.router.add_post("/cb", callback)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    found.port = runner.addresses[0][1]
    yield found
    await runner.cleanup()


def _session(allow: list[str]) -> aiohttp.ClientSession:
    return checked_session(CallbackPolicy(allow), timeout=aiohttp.ClientTimeout(total=5), limit=4)


async def test_listed_targets_are_reached_over_http_and_websocket(target: Target) -> None:
    async with _session(["127.0.0.1"]) as session:
        async with session.post(f"http://127.0.0.1:{target.port}/cb") as resp:
            assert resp.status == 200
        async with session.ws_connect(f"ws://127.0.0.1:{target.port}/ws") as ws:
            await ws.send_str("hello")
            assert (await ws.receive()).data == "hello"
    assert target.requests == 2


@pytest.mark.parametrize(
    ("allow", "host"),
    [
        (["hooks.example.com"], "127.0.0.1"),  # a literal address: checked before connecting
        (["*"], "localhost"),  # a name: its addresses are checked by the resolver
        (["hooks.example.com"], "localhost"),  # an unlisted name: refused before resolving
    ],
)
async def test_unlisted_targets_get_no_request_at_all(
    target: Target, allow: list[str], host: str
) -> None:
    async with _session(allow) as session:
        with pytest.raises((CallbackRefused, aiohttp.ClientError)) as post:
            await session.post(f"http://{host}:{target.port}/cb")
        with pytest.raises((CallbackRefused, aiohttp.ClientError)) as ws:
            await session.ws_connect(f"ws://{host}:{target.port}/ws")
    assert refusal_in(post.value) is not None
    assert refusal_in(ws.value) is not None
    assert target.requests == 0


async def test_redirects_are_refused_even_to_an_allowed_target(target: Target) -> None:
    # The redirect's target would get neither check, so none is followed.
    async with _session(["127.0.0.1"]) as session:
        with pytest.raises(CallbackRefused, match="redirects are not followed"):
            await session.ws_connect(f"ws://127.0.0.1:{target.port}/moved")
    assert target.requests == 1
