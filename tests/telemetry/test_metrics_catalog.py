"""``docs/metrics.md`` lists every metric of ``worker/telemetry/metrics.py``, with its type and
labels, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from worker.telemetry import metrics

CATALOG = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `(?P<name>agentos_\w+)` \| (?P<type>\w+) \| (?P<labels>[^|]+) \|")

Entry = tuple[str, tuple[str, ...]]


def documented() -> dict[str, Entry]:
    """Each metric of the catalog's tables: its type and labels."""
    entries: dict[str, Entry] = {}
    for line in CATALOG.read_text().splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        name = match["name"]
        assert name not in entries, f"{name} is listed twice"
        cell = match["labels"].strip()
        labels = () if cell == "none" else tuple(re.findall(r"`(\w+)`", cell))
        entries[name] = (match["type"], labels)
    return entries


def defined() -> dict[str, Entry]:
    """Each metric of the module, under the name it is exported as."""
    entries: dict[str, Entry] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            (family,) = value.describe()
            name = family.name + ("_total" if family.type == "counter" else "")
            # The client keeps the label names only here: there is no public accessor.
            entries[name] = (family.type, tuple(value._labelnames))
    return entries


def test_the_catalog_has_rows() -> None:
    assert len(documented()) >= 30


def test_every_metric_is_documented() -> None:
    missing = sorted(set(defined()) - set(documented()))
    assert not missing, f"add to docs/metrics.md: {missing}"


def test_every_documented_metric_exists() -> None:
    unknown = sorted(set(documented()) - set(defined()))
    assert not unknown, f"not in worker/telemetry/metrics.py: {unknown}"


def test_types_and_labels_match() -> None:
    docs = documented()
    wrong = {
        name: {"module": entry, "docs": docs[name]}
        for name, entry in defined().items()
        if name in docs and docs[name] != entry
    }
    assert not wrong
