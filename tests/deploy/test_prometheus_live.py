"""The dashboard and the alert rules, proven on a real Prometheus scraping two real workers.

Debian's ``prometheus`` scrapes both workers every second and evaluates deploy/prometheus/
alerts.yml every second while a mixed load (tests/deploy/load.py) goes through them. Then
every query of every panel of the dashboard, its template variables filled in from their own
queries as Grafana fills them, must return a number from Prometheus' HTTP API, and the breaker
the outage opened must show as a pending AgentOSCircuitBreakerOpen. A panel added to the
dashboard is covered without changing this test.

The load runs twice. Counters and histograms with labels are born at their first use, so a
single run would leave their rates at zero and their quantiles NaN: the second round comes
once Prometheus has the first one, as an operator's Prometheus would have had the hour before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import nats as nats_py
import pytest
from nats.aio.client import Client

from tests.conftest import SpawnWorker
from tests.deploy import dashboard
from tests.deploy.helpers import PROMETHEUS, debian_binary
from tests.deploy.load import MixedLoad, pool_env
from tests.deploy.prometheus import Prometheus, has_number
from tests.fakes.openai_server import FakeOpenAI
from tests.jobs.receiver import Receiver
from worker.testing import NatsServer, WorkerProcess, free_port

ALERTS = PROMETHEUS / "alerts.yml"
WITHIN = 20.0  # seconds for Prometheus to show what the load did (it scrapes every second)

Results = list[dict[str, Any]]


@pytest.fixture
async def nc(nats: NatsServer) -> AsyncIterator[Client]:
    client = await nats_py.connect(nats.url)
    yield client
    await client.drain()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def eventually(
    what: str, check: Callable[[], Awaitable[list[str]]], *, within: float = WITHIN
) -> None:
    """Until ``check()`` returns no complaint; fail with its last complaints after ``within``."""
    deadline = time.monotonic() + within
    while complaints := await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}, after {within:g}s:\n" + "\n".join(complaints))
        await asyncio.sleep(0.5)  # a poll of Prometheus' own API, bounded by the deadline


async def fill_variables(
    prom: Prometheus, http: aiohttp.ClientSession, values: dict[str, str]
) -> list[str]:
    """Set every template variable in ``values`` as Grafana would with all its options
    selected: each ``label_values`` query is run (with the variables before it filled in) and
    its values become a regex alternation. The variables without values, if any."""
    for var in dashboard.variables():
        if var["type"] == "datasource":
            continue  # the Prometheus itself: it appears in panels' datasource, not in queries
        assert var["type"] == "query", f"variable {var['name']}: unexpected {var['type']}"
        query = dashboard.label_values(var["definition"])
        match = dashboard.interpolate(query.match or "{__name__=~'.+'}", values)
        found = await prom.label_values(http, query.label, match)
        if not found:
            return [f"variable {var['name']}: {var['definition']} has no values"]
        values[var["name"]] = dashboard.regex_value(found)
    return []


async def run_panels(
    prom: Prometheus, http: aiohttp.ClientSession, values: dict[str, str]
) -> list[tuple[str, Results]]:
    """Every panel query, interpolated and run at the current time: (where and what, result)."""
    queries = [(q.where, dashboard.interpolate(q.expr, values)) for q in dashboard.panel_queries()]
    results = await asyncio.gather(*(prom.query(http, expr) for _, expr in queries))
    return [
        (f"{where}: {expr}", result) for (where, expr), result in zip(queries, results, strict=True)
    ]


async def test_every_panel_has_data_and_the_outage_alert_is_pending(
    spawn_worker: SpawnWorker,
    http: aiohttp.ClientSession,
    nc: Client,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    binary = debian_binary("prometheus")
    env = pool_env(tmp_path)
    ports = [free_port(), free_port()]
    while ports[0] == ports[1]:
        ports[1] = free_port()
    # Prometheus first: it takes its targets ~5s after start, the workers' start overlaps that.
    with Prometheus(
        binary,
        tmp_path / "prometheus",
        targets=[f"127.0.0.1:{p}" for p in ports],
        rule_files=[ALERTS],
    ) as prom:
        workers: list[WorkerProcess] = [
            spawn_worker({**env, "WORKER_HTTP_PORT": str(port)}, start=False) for port in ports
        ]
        await asyncio.gather(*(asyncio.to_thread(w.start) for w in workers))
        async with FakeOpenAI() as healthy, FakeOpenAI() as down:
            load = MixedLoad(
                workers, http, nc, env["WORKER_TASKS_SUBJECT"], receiver, healthy, down
            )
            await load.prepare()
            await load.round()
            values: dict[str, str] = {}

            async def empty_panels() -> list[str]:
                if empty := await fill_variables(prom, http, values):
                    return empty
                return [q for q, r in await run_panels(prom, http, values) if not r]

            await eventually("panel queries without any series", empty_panels)
            await load.round()

            async def panels_without_numbers() -> list[str]:
                results = await run_panels(prom, http, values)
                return [f"{q}\n  -> {r}" for q, r in results if not has_number(r)]

            await eventually("panel queries without a number", panels_without_numbers)

            # The outage's breaker: pending (`for: 5m`), not yet firing. The dead letter:
            # firing at once (no `for`), although its series was zero before.
            expected = {
                ("AgentOSCircuitBreakerOpen", "name", load.outage_breaker): "pending",
                ("AgentOSDeadLetters", "reason", "malformed_json"): "firing",
            }

            async def alerts_not_as_expected() -> list[str]:
                alerts = await prom.alerts(http)
                states = {
                    (name, label, value): a["state"]
                    for a in alerts
                    for name, label, value in expected
                    if a["labels"]["alertname"] == name and a["labels"].get(label) == value
                }
                if states == expected:
                    return []
                return [f"expected {expected}", f"got {states}", f"alerts: {alerts}"]

            await eventually("the alerts are not as expected", alerts_not_as_expected)
