"""Server (a), the floor: a bare aiohttp handler around ``runnable.ainvoke``.

``POST /invoke`` with ``{"input": ...}`` answers ``{"output": ...}`` (orjson);
``GET /readyz`` answers 200. Run as
``python -m bench.http.serve_bare --port P --agent echo``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import orjson
from aiohttp import web
from langchain_core.runnables import Runnable

from bench.http import runnables
from bench.http.serverargs import add_server_args, run_loop


def make_app(runnable: Runnable[Any, Any]) -> web.Application:
    async def invoke(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        output = await runnable.ainvoke(body["input"])
        return web.Response(body=orjson.dumps({"output": output}), content_type="application/json")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/invoke", invoke)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(host: str, port: int, runnable: Runnable[Any, Any]) -> None:
    # access_log=None: no per-request logging; backlog as uvicorn's default so
    # that the 1,000-connection burst is not dropped at the listen queue.
    runner = web.AppRunner(make_app(runnable), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=2048).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_server_args(parser)
    args = parser.parse_args()
    runnable = runnables.build(args.agent, args.runnables)
    run_loop(serve(args.host, args.port, runnable), args.loop)


if __name__ == "__main__":
    main()
