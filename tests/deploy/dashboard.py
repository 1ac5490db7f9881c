"""The Grafana dashboard as the deploy tests read it: its panels, their queries, its template
variables, and Grafana's interpolation of those variables into PromQL.

Grafana itself is not run: what it does to a query before sending it to Prometheus is small
and documented (template variables, ``$__rate_interval``), and is redone here so the live test
can send every panel's query to a real Prometheus exactly as a dashboard would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.deploy.helpers import DASHBOARDS

DASHBOARD = DASHBOARDS / "agentos-worker.json"

# What Grafana puts in place of its built-in interval variables. With a 1s scrape interval a
# minute covers the whole of a short test's load, so every rate sees all of it.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1m"}

# `$name`, `${name}`, `${name:format}` and the deprecated `[[name]]`.
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<match>.+),\s*)?(?P<label>\w+)\s*\)\s*$")
# Grafana's prometheusSpecialRegexEscape (public/app/plugins/datasource/prometheus): a regex
# metacharacter gets two backslashes, one for the PromQL string and one for the regex.
_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")


def load() -> dict[str, Any]:
    """The dashboard's JSON."""
    with DASHBOARD.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def panels() -> list[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    out: list[dict[str, Any]] = []
    for panel in load()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    panel: str
    ref: str
    expr: str
    legend: str

    @property
    def where(self) -> str:
        return f"panel {self.panel!r} query {self.ref}"


def panel_queries() -> list[PanelQuery]:
    """Every query of every panel, in the dashboard's order."""
    return [
        PanelQuery(
            panel["title"], target.get("refId", "A"), target["expr"], target.get("legendFormat", "")
        )
        for panel in panels()
        for target in panel.get("targets", [])
    ]


def variables() -> list[dict[str, Any]]:
    """The template variables, in the order Grafana resolves them (each may use the ones
    before it)."""
    found: list[dict[str, Any]] = load()["templating"]["list"]
    return found


@dataclass(frozen=True)
class LabelValues:
    """A variable's ``label_values(match, label)`` query."""

    label: str
    match: str | None


def label_values(definition: str) -> LabelValues:
    """The parts of a ``label_values(...)`` variable query (the only kind this dashboard uses)."""
    parsed = _LABEL_VALUES.match(definition)
    if parsed is None:
        raise ValueError(f"not a label_values(...) query: {definition!r}")
    return LabelValues(parsed["label"], parsed["match"])


def regex_value(values: Sequence[str]) -> str:
    """A multi-value variable's selection as Grafana writes it into a Prometheus query:
    each value regex-escaped, several ones as an alternation."""
    escaped = [
        _REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(), v.replace("\\", "\\\\\\\\"))
        for v in values
    ]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every variable replaced by ``values`` (already formatted) or a built-in;
    an unknown variable raises, as it would show as an error in Grafana."""

    def one(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in values:
            return values[name]
        if name in BUILTINS:
            return BUILTINS[name]
        raise KeyError(f"unknown variable ${name} in {expr!r}")

    return _VARIABLE.sub(one, expr)
