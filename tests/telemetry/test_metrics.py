"""``labelled``: one child per label set, counting into the process registry."""

from __future__ import annotations

from prometheus_client import REGISTRY

from worker.telemetry.metrics import CALLBACK_ATTEMPTS, labelled


def test_labelled_returns_the_same_child_and_counts_where_labels_would() -> None:
    child = labelled(CALLBACK_ATTEMPTS, "test-outcome")
    assert labelled(CALLBACK_ATTEMPTS, "test-outcome") is child
    assert child is CALLBACK_ATTEMPTS.labels("test-outcome")
    before = REGISTRY.get_sample_value(
        "agentos_callback_attempts_total", {"outcome": "test-outcome"}
    )
    child.inc()
    after = REGISTRY.get_sample_value(
        "agentos_callback_attempts_total", {"outcome": "test-outcome"}
    )
    assert after == (before or 0) + 1
