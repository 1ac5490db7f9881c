"""Command line: ``agentos-worker`` / ``python -m worker``. Flags mirror the ``WORKER_*``
variables (``--http-port`` is ``WORKER_HTTP_PORT``); ``--help`` lists them all."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

from worker.broker.connection import NatsRefused
from worker.config import ConfigError, Settings
from worker.server import running_worker
from worker.telemetry import tracing
from worker.telemetry.logs import configure_logging, get_logger


async def serve(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT, then drain and stop."""
    log = get_logger("worker")
    provider = tracing.build_tracer_provider(settings.service_name, settings.worker_id)
    tracing.install(provider)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_worker(settings) as worker:
            # A line for people and scripts: where to reach this worker.
            print(f"agentos-worker listening on {worker.http_url}", file=sys.stderr, flush=True)
            await stop.wait()
            log.info("signal received; draining")
    finally:
        provider.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    settings = Settings.load(argv)
    configure_logging(settings.log_level, settings.log_format)
    try:
        import uvloop  # noqa: PLC0415 - optional: not built for every platform
    except ImportError:  # pragma: no cover - Windows
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        run(serve(settings))
    except ConfigError as exc:  # an import path that does not import, or a bad key file
        raise SystemExit(f"agentos-worker: invalid configuration\n  {exc}") from None
    except NatsRefused as exc:  # a wrong password, an untrusted certificate: one clear line
        raise SystemExit(f"agentos-worker: NATS refused the connection: {exc}") from None
    return 0
