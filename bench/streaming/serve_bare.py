"""The bare baseline: an aiohttp WebSocket server that sends frame-shaped JSON in a loop.

``GET /ws?rate=R&seconds=S`` sends R frames per second (0: as fast as it can) for S seconds,
then closes. No NATS, no queue, no auth: the floor the worker is compared with. It runs on the
same event loop as the worker (uvloop when installed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import WSMsgType, web

from worker.streaming.frames import PROCESSING, Draft


async def stream(request: web.Request) -> web.WebSocketResponse:
    rate = float(request.query.get("rate", "10"))
    seconds = float(request.query.get("seconds", "10"))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    seq = 0
    next_at = loop.time()
    while loop.time() < end and not ws.closed:
        seq += 1
        draft = Draft(status=PROCESSING, progress=0, message="bench", partial_result="token")
        await ws.send_frame(draft.encode(task_id="bare", seq=seq, attempt=1), WSMsgType.TEXT)
        if rate > 0:
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))
    await ws.close()
    return ws


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/ws", stream)
    try:
        import uvloop  # noqa: PLC0415 - optional, as for the worker
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    print("ready", file=sys.stderr, flush=True)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        backlog=4096,
        loop=loop,
    )


if __name__ == "__main__":
    main()
