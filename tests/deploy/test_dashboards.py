"""The Grafana dashboard and the alert rules name only metrics and labels the worker exports.

PromQL is parsed loosely with regular expressions: metric names, the labels in selectors,
`by (...)` clauses, legends and alert templates. A histogram's `_bucket`, `_sum` and `_count`
series map to the histogram. The metric definitions come from worker/telemetry/metrics.py
itself, so renaming a metric or a label there without updating these files fails here.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.deploy import dashboard
from tests.deploy.helpers import PROMETHEUS, ROOT, load_documents
from worker.http.app import ROUTES

METRICS_MODULE = ROOT / "worker" / "telemetry" / "metrics.py"
ALERTS = PROMETHEUS / "alerts.yml"
# Labels Prometheus adds to every scraped series, whatever the worker exports.
TARGET_LABELS = {"instance", "job", "pod", "namespace", "container", "service"}

METRIC_NAME = re.compile(r"\bagentos_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(agentos_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"([^\"]*)\"")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
VARIABLE_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*=~\s*\"\$([a-zA-Z_][a-zA-Z0-9_]*)\"")
TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",), "gauge": ("",)}


@dataclass(frozen=True)
class Metric:
    """One metric of metrics.py as Prometheus exposes it."""

    name: str
    kind: str
    labels: frozenset[str]


def _defined_metrics() -> dict[str, Metric]:
    """Exposed series name -> its metric, read from the calls in metrics.py."""
    tree = ast.parse(METRICS_MODULE.read_text(encoding="utf-8"))
    series: dict[str, Metric] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        kind = node.func.id.lower()
        if kind not in SUFFIXES:
            continue
        name = ast.literal_eval(node.args[0])
        labels: list[str] = []
        if len(node.args) > 2:
            labels = ast.literal_eval(node.args[2])
        for kw in node.keywords:
            if kw.arg == "labelnames":
                labels = ast.literal_eval(kw.value)
        base = name.removesuffix("_total") if kind == "counter" else name
        metric = Metric(base, kind, frozenset(labels))
        for suffix in SUFFIXES[kind]:
            series[base + suffix] = metric
    return series


DEFINED = _defined_metrics()


def _dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL-ish text): every target with its legend, and every variable query."""
    queries = [(q.where, f"{q.expr}\n{q.legend}") for q in dashboard.panel_queries()]
    queries.extend(
        (f"variable {var['name']}", var["definition"])
        for var in dashboard.variables()
        if var["type"] == "query"
    )
    return queries


def _rules() -> list[dict[str, Any]]:
    (doc,) = load_documents(ALERTS)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _alert_queries() -> list[tuple[str, str]]:
    return [
        (f"alert {rule['alert']}", f"{rule['expr']}\n{json.dumps(rule['annotations'])}")
        for rule in _rules()
    ]


ALL_QUERIES = [*_dashboard_queries(), *_alert_queries()]


def test_metrics_module_is_parsed() -> None:
    # The AST reading found the module's metrics; if metrics.py changes shape, fail loudly.
    names = {m.name for m in DEFINED.values()}
    assert len(names) >= 25
    assert DEFINED["agentos_http_request_duration_seconds_bucket"].labels == {
        "service",
        "endpoint",
        "status",
    }


@pytest.mark.parametrize(("where", "query"), ALL_QUERIES, ids=[w for w, _ in ALL_QUERIES])
def test_query_names_existing_metrics_and_labels(where: str, query: str) -> None:
    names = set(METRIC_NAME.findall(query))
    assert names, f"{where}: no agentos_* metric"
    unknown = names - DEFINED.keys()
    assert not unknown, f"{where}: not exported by worker/telemetry/metrics.py: {unknown}"
    metrics = [DEFINED[n] for n in names]
    known = set().union(*(m.labels for m in metrics)) | TARGET_LABELS
    if any(n.endswith("_bucket") for n in names):
        known.add("le")
    for name, body in SELECTOR.findall(query):
        for label, _ in MATCHER.findall(body):
            assert label in DEFINED[name].labels | TARGET_LABELS, f"{where}: {name} has no {label}"
    used = {
        label.strip()
        for group in GROUPING.findall(query)
        for label in group.split(",")
        if label.strip()
    }
    used |= set(LEGEND_LABEL.findall(query)) | set(TEMPLATE_LABEL.findall(query))
    assert used <= known, f"{where}: labels {used - known} are on none of {sorted(names)}"


@pytest.mark.parametrize(("where", "query"), ALL_QUERIES, ids=[w for w, _ in ALL_QUERIES])
def test_endpoint_values_are_route_templates(where: str, query: str) -> None:
    routes = {op.path for op, _ in ROUTES}
    for _, body in SELECTOR.findall(query):
        for match in re.finditer(r"endpoint\s*(=~|!~|!=|=)\s*\"([^\"]*)\"", body):
            op, value = match.groups()
            if op in {"=", "!="}:
                assert value in routes, f"{where}: {value} is not a route template"
            else:
                pattern = re.compile(value)
                assert any(pattern.fullmatch(r) for r in routes), f"{where}: {value} matches none"


def test_quantiles_aggregate_by_bucket() -> None:
    for where, query in ALL_QUERIES:
        for match in re.finditer(r"histogram_quantile\([^,]+,(.*)", query):
            assert re.search(r"by \(([^)]*,\s*)?le\b", match.group(1)), where
            assert "_bucket" in match.group(1), where


def test_dashboard_covers_the_operators_questions() -> None:
    used = {DEFINED[n].name for _, q in _dashboard_queries() for n in METRIC_NAME.findall(q)}
    required = {
        "agentos_http_request_duration_seconds",
        "agentos_nats_messages",
        "agentos_websocket_connections",
        "agentos_jobs_in_flight",
        "agentos_job_duration_seconds",
        "agentos_callback_attempts",
        "agentos_circuit_breaker_state",
        "agentos_dead_letters",
        "agentos_consumer_pending_messages",
        "agentos_llm_tokens",
        "agentos_llm_cost_usd",
        "agentos_run_cost_usd",
        "agentos_llm_time_to_first_token_seconds",
        "agentos_llm_inter_token_seconds",
        "agentos_llm_call_duration_seconds",
        "agentos_job_queue_wait_seconds",
        "agentos_job_redeliveries",
        "agentos_tool_calls",
        "agentos_tool_duration_seconds",
        "agentos_budget_exceeded",
    }
    assert required <= used, f"no panel for {required - used}"
    queries = "\n".join(q for _, q in _dashboard_queries())
    assert "histogram_quantile(0.5, sum by (le, endpoint)" in queries
    assert "histogram_quantile(0.99, sum by (le, endpoint)" in queries
    assert "sum by (status) (rate(agentos_http_request_duration_seconds_count" in queries


def test_dashboard_is_importable() -> None:
    assert dashboard.load()["uid"] == "agentos-worker"
    variables = {v["name"]: v for v in dashboard.variables()}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard.panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_panels_follow_the_template_variables() -> None:
    # Picking a worker, a service or an agent type at the top narrows every panel it can.
    variables = {v["name"] for v in dashboard.variables()}
    assert {"datasource", "instance", "agent_type"} <= variables
    for query in dashboard.panel_queries():
        names = METRIC_NAME.findall(query.expr)
        selectors = SELECTOR.findall(query.expr)
        assert len(selectors) == len(names), f"{query.where}: a metric without a selector"
        for name, body in selectors:
            matchers = set(VARIABLE_MATCHER.findall(body))
            wanted = {"instance"} | (DEFINED[name].labels & variables)
            for label in wanted:
                assert (label, label) in matchers, f'{query.where}: no {label}=~"${label}"'


def test_every_alert_says_what_to_do() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8").lower()
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys()
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        # GitHub's anchor for a `### AgentOSFoo` heading is `#agentosfoo`.
        assert f"### {rule['alert'].lower()}\n" in runbook, f"no section for {rule['alert']}"
