"""The worker's lifecycle, in one place: start every part in order, stop them in reverse.

``running_worker`` is an async context manager, so the command line, the tests and anything
embedding the worker start and stop it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from worker.agents.accounting import load_prices
from worker.agents.agent_type import BuildContext
from worker.agents.demo import create_demo_agents
from worker.agents.from_runnable import register_agent_types
from worker.agents.registry import AgentTypeRegistry
from worker.agents.store import AgentStore
from worker.agents.tools import ToolRegistry
from worker.broker.connection import Broker, connect_options
from worker.broker.embedded import EmbeddedNats, find_nats_server
from worker.config import Settings
from worker.http.app import build_app
from worker.http.auth import BearerAuth
from worker.http.limiter import InvocationLimiter
from worker.http.state import Services
from worker.jobs.service import running_jobs
from worker.outbound.ssrf import CallbackPolicy
from worker.resilience import Resilience, RetryPolicy
from worker.streaming.hub import StreamHub, StreamOptions
from worker.telemetry.logs import get_logger
from worker.threads import ThreadStore

log = get_logger(__name__)


@dataclass(slots=True)
class RunningWorker:
    """A started worker: where it listens and its parts."""

    services: Services
    http_url: str
    nats_url: str

    def start_draining(self) -> None:
        """Stop taking new work: readiness turns 503 so load balancers move away."""
        self.services.draining = True


_GC_YOUNG_THRESHOLD = 20_000  # allocations before a young collection (CPython's default: 700)


def _restore_gc(threshold: tuple[int, int, int]) -> None:
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def _start_embedded_nats(settings: Settings, stack: contextlib.AsyncExitStack) -> str:
    """Start the embedded nats-server, stopped with ``stack``; its URL."""
    embedded = EmbeddedNats(
        binary=find_nats_server(settings.nats_server_bin), state_dir=settings.state_dir
    )
    url = await embedded.start()
    stack.push_async_callback(embedded.stop)
    return url


@contextlib.asynccontextmanager
async def running_worker(  # noqa: PLR0915 - the whole lifecycle, top to bottom, in one place
    settings: Settings,
    *,
    registry: AgentTypeRegistry | None = None,
    shutdown_timeout: float = 10.0,
) -> AsyncIterator[RunningWorker]:
    """Start a worker for ``settings``; stop it, in reverse order, on exit.

    Raises ``ConfigError`` before starting anything when an import path of the settings
    (``WORKER_AGENT_TYPES``, ``WORKER_TOOLS``), a JWT key file, a NATS credentials or TLS file
    or the price table (``WORKER_PRICES_FILE``) cannot be used, and ``NatsRefused`` when NATS
    refuses the worker's credentials or TLS.
    """
    # What the agents are made of comes first: a bad entry stops start-up before any part runs.
    if registry is None:
        registry = AgentTypeRegistry.discover()
        register_agent_types(registry, settings.agent_types)
    tools = ToolRegistry.discover(settings.tools)
    prices = load_prices(settings.prices_file)  # read once, for every run's usage
    auth = BearerAuth.from_settings(settings)  # JWT keys: a file that cannot be used stops here
    # Every connection of the worker (the shared one, the live frames' own) reaches NATS with
    # these credentials and this TLS context, built once; an unusable file stops start-up here.
    nats_options = connect_options(settings)
    async with contextlib.AsyncExitStack() as stack:
        loop = asyncio.get_running_loop()
        # Runnables without an async implementation run in LangChain's executor, which is the
        # loop's default one: bound it, so sync agents never take more than their share.
        pool = ThreadPoolExecutor(settings.sync_pool_size, thread_name_prefix="runnable")
        loop.set_default_executor(pool)
        stack.callback(pool.shutdown, wait=False, cancel_futures=True)
        # The loop outlives the worker when it is embedded (tests): leave it a live executor.
        stack.callback(loop.set_default_executor, ThreadPoolExecutor())

        if settings.embedded_nats:
            servers = (await _start_embedded_nats(settings, stack),)
            nats_options = dataclasses.replace(nats_options, servers=servers)
        nats_url = ",".join(nats_options.servers)
        broker = Broker(service=settings.service_name)
        await broker.connect(nats_options, name=f"agentos-worker:{settings.worker_id}")
        stack.push_async_callback(broker.close)

        # One set of provider breakers for the whole worker, shared by every agent's model.
        resilience = Resilience(
            fail_max=settings.provider_breaker_fail_max,
            reset_timeout=settings.provider_breaker_reset_timeout,
            retry=RetryPolicy(
                max_attempts=settings.provider_retry_max_attempts,
                initial_backoff=settings.provider_retry_initial_backoff,
                max_wait=settings.provider_retry_max_wait,
            ),
        )
        # Conversation threads (CONTRACT section 6): one bucket for the pool; every graph that
        # runs on a thread gets its checkpointer, and the doors take thread leases from it.
        threads = await ThreadStore.open(nc=broker.client, js=broker.jetstream, settings=settings)
        store = AgentStore(
            js=broker.jetstream,
            registry=registry,
            build_context=BuildContext(
                openai_api_key=(
                    settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
                ),
                openai_base_url=settings.openai_base_url,
                resilience=resilience,
                tools=tools,
                checkpointer=threads.checkpointer,
                prices=prices,
                accounting=settings.accounting,
            ),
            bucket=settings.agents_bucket,
            replicas=settings.kv_replicas,
        )
        await store.start()
        stack.push_async_callback(store.stop)
        if settings.demo_agents:
            await create_demo_agents(store)

        # Where a job may make the worker connect: its callback and its stream_url alike.
        outbound = CallbackPolicy.from_settings(settings)
        # Frames of every run (CONTRACT section 3); started before jobs, so stopped after them.
        streams = StreamHub(
            nc=broker.client,
            js=broker.jetstream,
            service=settings.service_name,
            policy=outbound,
            options=StreamOptions.from_settings(settings),
            connect=nats_options,
        )
        await streams.start()
        stack.push_async_callback(streams.stop)

        jobs = await stack.enter_async_context(
            running_jobs(
                nc=broker.client,
                js=broker.jetstream,
                settings=settings,
                agents=store,
                policy=outbound,
                execute=streams.run,
                finals=streams,
                threads=threads,
            )
        )
        services = Services(
            settings=settings,
            registry=registry,
            store=store,
            broker=broker,
            limiter=InvocationLimiter(
                settings.max_concurrent_invocations,
                queue=settings.max_queued_invocations,
                service=settings.service_name,
            ),
            jobs=jobs,
            streams=streams,
            threads=threads,
            resilience=resilience,
        )
        app = build_app(services, auth=auth)
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=shutdown_timeout, handle_signals=False
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.http_host, settings.http_port, backlog=2048)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        http_url = f"http://{shown}:{port}"
        log.info(
            "worker started",
            http_url=http_url,
            nats_url=nats_url,
            embedded_nats=settings.embedded_nats,
            agent_types=registry.names(),
            worker_id=settings.worker_id,
        )
        # What the worker has built by now lives as long as it does: keep it out of the
        # collector's full passes, and let the young generation grow before collecting it, so
        # bursts of streamed frames do not promote short-lived objects into full passes that
        # stall every open stream for tens of milliseconds (bench/streaming). Undone on stop.
        stack.callback(_restore_gc, gc.get_threshold())
        gc.freeze()
        gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        worker = RunningWorker(services=services, http_url=http_url, nats_url=nats_url)
        yield worker
        worker.start_draining()
        log.info("worker stopping")
    log.info("worker stopped")
