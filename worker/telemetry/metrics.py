"""Every Prometheus metric of the worker, defined once (names and labels per CONTRACT section 4).

Prometheus' client keeps a process-wide registry; that is the one global this project allows.
"""

from __future__ import annotations

import functools
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)


def labelled(metric: M, *values: str) -> M:
    """``metric.labels(*values)``, looked up once per label set.

    ``labels()`` takes a lock and builds its key on every call, and a job calls it half a dozen
    times; label sets are few (subjects, outcomes, agent types), so each child is kept.
    """
    return _child(metric, values)  # type: ignore[return-value]


@functools.cache
def _child(metric: MetricWrapperBase, values: tuple[str, ...]) -> MetricWrapperBase:
    return metric.labels(*values)


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
HTTP_QUEUED = Gauge(
    "agentos_http_invocations_queued",
    "Agent invocations waiting for a free slot on this worker.",
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

# --- jobs (CONTRACT section 2) -----------------------------------------------------------
_JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)

JOB_DURATION = Histogram(
    "agentos_job_duration_seconds",
    "Time a job spent running, by agent type and final status.",
    ["agent_type", "status"],
    buckets=_JOB_BUCKETS,
)
JOBS_IN_FLIGHT = Gauge(
    "agentos_jobs_in_flight",
    "Jobs running now on this worker.",
    ["service"],
)
JOB_PUBLISH_TO_DONE = Histogram(
    "agentos_job_queue_to_done_seconds",
    "From the job message's arrival in the stream to its result being stored.",
    buckets=_JOB_BUCKETS,
)
JOB_QUEUE_WAIT = Histogram(
    "agentos_job_queue_wait_seconds",
    "From a job message's publish (its time in the stream) to the start of a run of it, by "
    "agent type; a redelivered job's next run counts from the same publish.",
    ["agent_type"],
    buckets=_JOB_BUCKETS,
)
JOB_REDELIVERIES = Counter(
    "agentos_job_redeliveries_total",
    "Jobs run again after their message came back, by why: worker_lost (its worker stopped "
    "answering), handed_back (a drain, providers down), not_acked (no record of a run).",
    ["reason"],
)
CALLBACK_ATTEMPTS = Counter(
    "agentos_callback_attempts_total",
    "Callback delivery attempts by outcome (delivered, retry, rejected, refused, breaker_open).",
    ["outcome"],
)
CALLBACK_LATENCY = Histogram(
    "agentos_callback_duration_seconds",
    "Time of one callback POST, by outcome.",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "agentos_dead_letters_total",
    "Messages sent to the dead-letter stream, by reason.",
    ["reason"],
)
CONSUMER_PENDING = Gauge(
    "agentos_consumer_pending_messages",
    "A durable consumer's backlog, pool-wide (every worker reports the same): state pending "
    "(waiting, not yet delivered), ack_pending (delivered, not yet acknowledged), redelivered "
    "(of those, delivered more than once).",
    ["consumer", "state"],
)

# --- model providers: breakers, retries, fallbacks (worker/resilience) -------------------
BREAKER_STATE = Gauge(
    "agentos_circuit_breaker_state",
    "Circuit breaker per model provider endpoint: 0 closed, 1 half-open, 2 open.",
    ["name"],
)
BREAKER_TRANSITIONS = Counter(
    "agentos_circuit_breaker_transitions_total",
    "Circuit breaker state changes, by breaker and the state entered.",
    ["name", "state"],
)
PROVIDER_CALL_DURATION = Histogram(
    "agentos_provider_call_duration_seconds",
    "One attempt at a model provider (an attempt refused by an open breaker is not timed).",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
PROVIDER_CALLS = Counter(
    "agentos_provider_calls_total",
    "Attempts at a model provider by outcome: ok, connection, timeout, rate_limit, "
    "server_error, client_error, other, breaker_open, cancelled.",
    ["provider", "outcome"],
)
PROVIDER_RETRIES = Counter(
    "agentos_provider_retries_total",
    "Retries of a model provider call, by the kind of error that caused them.",
    ["provider", "reason"],
)
PROVIDER_FALLBACKS = Counter(
    "agentos_provider_fallbacks_total",
    "Answers served by a fallback provider (the primary failed or was skipped), by provider.",
    ["provider"],
)

# --- streaming (CONTRACT section 3); `transport` is websocket, sse or push ---------------
STREAM_FRAMES_PUBLISHED = Counter(
    "agentos_stream_frames_published_total",
    "Frames stored in the pool's event log by runs on this worker.",
    ["service"],
)
STREAM_FRAMES_SENT = Counter(
    "agentos_stream_frames_sent_total",
    "Frames sent to readers, by transport.",
    ["service", "transport"],
)
STREAM_FRAMES_COALESCED = Counter(
    "agentos_stream_frames_coalesced_total",
    "Progress frames merged into a later one for a reader that fell behind (transport 'log': "
    "while the event log was unreachable).",
    ["service", "transport"],
)
STREAM_FRAMES_DROPPED = Counter(
    "agentos_stream_frames_dropped_total",
    "Frames never delivered, by reason: slow_reader, receiver_gone, log_unreachable, "
    "publish_failed.",
    ["service", "reason"],
)
STREAM_FRAME_LAG = Histogram(
    "agentos_stream_frame_lag_seconds",
    "Time from a frame's ts to its sending to a reader, by transport.",
    ["service", "transport"],
    buckets=_LATENCY_BUCKETS,
)
STREAM_READERS = Gauge(
    "agentos_stream_readers",
    "Readers following frames on this worker now, by transport.",
    ["service", "transport"],
)
STREAM_SLOW_READERS = Counter(
    "agentos_stream_slow_readers_closed_total",
    "Readers closed because they fell hopelessly behind, by transport.",
    ["service", "transport"],
)
STREAM_PUSH_CONNECTIONS = Counter(
    "agentos_stream_push_connections_total",
    "Connections the push client opened to stream_url receivers, by outcome (ok, error, "
    "refused: not an allowed target).",
    ["service", "outcome"],
)

# --- model usage, cost and latency; tools; budgets (CONTRACT section 7) --------------------
# `provider` and `model` are what the chat model reports (LangChain's ls_provider and
# ls_model_name: "openai", "gpt-4o-mini"), never an endpoint URL or an agent id.
_TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30)
_INTER_TOKEN_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1,
    2,
)
# US dollars per run: a hundredth of a cent to ten dollars.
_RUN_COST_BUCKETS = (
    0.0001,
    0.00025,
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
)
_MODEL_CALL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)

LLM_TOKENS = Counter(
    "agentos_llm_tokens_total",
    "Tokens of model calls, by kind: input (cached included), output (reasoning included), "
    "cached_input, reasoning.",
    ["agent_type", "provider", "model", "kind"],
)
LLM_COST = Counter(
    "agentos_llm_cost_usd_total",
    "US dollars spent on model calls, priced by the operator's price table (WORKER_PRICES_FILE).",
    ["agent_type", "provider", "model"],
)
RUN_COST = Histogram(
    "agentos_run_cost_usd",
    "What one run cost in US dollars, observed once when it ends (runs that spent tokens, all "
    "of them priced).",
    ["agent_type"],
    buckets=_RUN_COST_BUCKETS,
)
LLM_UNPRICED_TOKENS = Counter(
    "agentos_llm_unpriced_tokens_total",
    "Tokens of model calls whose model has no price in the price table (their runs report "
    "cost_usd null).",
    ["agent_type", "provider", "model"],
)
LLM_TIME_TO_FIRST_TOKEN = Histogram(
    "agentos_llm_time_to_first_token_seconds",
    "From a streamed model call's start to its first token.",
    ["provider", "model"],
    buckets=_TTFT_BUCKETS,
)
LLM_INTER_TOKEN = Histogram(
    "agentos_llm_inter_token_seconds",
    "Gap between two consecutive tokens of a streamed model call.",
    ["provider", "model"],
    buckets=_INTER_TOKEN_BUCKETS,
)
LLM_CALL_DURATION = Histogram(
    "agentos_llm_call_duration_seconds",
    "One model call, from its start to its answer or error (retries included).",
    ["provider", "model"],
    buckets=_MODEL_CALL_BUCKETS,
)
TOOL_CALLS = Counter(
    "agentos_tool_calls_total",
    "Tool calls by tool and outcome: ok, error, cancelled.",
    ["tool", "outcome"],
)
TOOL_DURATION = Histogram(
    "agentos_tool_duration_seconds",
    "One tool call, from its start to its result or error.",
    ["tool"],
    buckets=_LATENCY_BUCKETS,
)
BUDGET_EXCEEDED = Counter(
    "agentos_budget_exceeded_total",
    "Runs stopped by their agent's limits, by the limit passed (max_tokens_per_run, "
    "max_cost_per_run).",
    ["agent_type", "limit"],
)
