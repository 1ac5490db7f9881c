"""Server (c): LangServe's ``add_routes`` on FastAPI, served by uvicorn.

The Runnable is mounted at ``/<agent>`` (so ``POST /echo/invoke``); ``GET
/readyz`` answers 200. uvicorn runs with httptools and no access log, its
usual production setup. Run as
``python -m bench.http.serve_langserve --port P --agent echo``.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI
from langchain_core.runnables import Runnable
from langserve import add_routes

from bench.http import runnables
from bench.http.serverargs import add_server_args


def make_app(agent: str, runnable: Runnable[Any, Any]) -> FastAPI:
    app = FastAPI()
    # A prompt-first chain declares an object input schema ({"input": str});
    # tell LangServe the request's "input" is the plain string the chain takes.
    schema = runnable.get_input_jsonschema()
    input_type: Any = str if schema.get("type") == "object" else "auto"
    add_routes(app, runnable, path=f"/{agent}", input_type=input_type)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_server_args(parser)
    args = parser.parse_args()
    app = make_app(args.agent, runnables.build(args.agent, args.runnables))
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop=args.loop,
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=2048,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
