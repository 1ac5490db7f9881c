"""Command-line arguments and event-loop selection shared by the servers."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from typing import Any, Literal

import uvloop

from bench.http import runnables

Loop = Literal["uvloop", "asyncio"]


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--agent", choices=runnables.AGENTS, default="echo")
    parser.add_argument("--runnables", choices=("registry", "stand-in"), default="stand-in")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="asyncio")


def run_loop(main: Coroutine[Any, Any, None], loop: Loop) -> None:
    """Run ``main`` on the chosen event loop implementation."""
    if loop == "uvloop":
        uvloop.run(main)
    else:
        asyncio.run(main)
