"""Every Prometheus metric of the worker, defined once (names and labels per CONTRACT section 4).

Prometheus' client keeps a process-wide registry; that is the one global this project allows.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Buckets from 0.5 ms: the sync door's target is single-digit milliseconds.
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
)

HTTP_REQUEST_DURATION = Histogram(
    "agentos_http_request_duration_seconds",
    "HTTP request duration for Go <-> Python communication, by route template.",
    ["service", "endpoint", "status"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "agentos_http_invocations_in_flight",
    "Agent invocations running now on this worker.",
    ["service"],
)
HTTP_REJECTED = Counter(
    "agentos_http_rejected_total",
    "Requests turned away before running (overload, auth, limits), by reason.",
    ["service", "reason"],
)
AGENT_INVOCATIONS = Counter(
    "agentos_agent_invocations_total",
    "Agent runs by agent type and outcome.",
    ["agent_type", "outcome"],
)
AGENT_INVOCATION_DURATION = Histogram(
    "agentos_agent_invocation_duration_seconds",
    "Time spent inside the agent's Runnable.",
    ["agent_type"],
    buckets=_LATENCY_BUCKETS,
)
NATS_MESSAGES = Counter(
    "agentos_nats_messages_total",
    "Total number of NATS messages, by subject and status.",
    ["subject", "status"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "agentos_websocket_connections",
    "Current number of WebSocket connections.",
    ["service"],
)
NATS_CONNECTED = Gauge(
    "agentos_nats_connected",
    "1 while this worker is connected to NATS.",
    ["service"],
)
EMBEDDED_NATS_RESTARTS = Counter(
    "agentos_embedded_nats_restarts_total",
    "Times the embedded nats-server died and was started again.",
)
AGENTS_KNOWN = Gauge(
    "agentos_agents",
    "Agents in the pool's bucket, as this worker sees them.",
    ["agent_type"],
)
