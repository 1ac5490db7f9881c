"""``Settings``: every ``WORKER_*`` variable and the matching command-line flag, checked.

Built once at start (``Settings.load``); nothing reads the environment after that. A bad value
stops start-up with a message naming the variable and the flag (``describe_errors``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.config.checks import NATS_SECURITY, check_http_access, check_nats_access
from worker.config.values import ENV_PREFIX, ImportRef, describe_errors, import_refs, split_csv
from worker.durations import SettingDuration


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agentos-worker"


class Settings(BaseSettings):
    """Every knob of a worker. Field ``x`` is ``WORKER_X`` and ``--x`` (dashes for underscores)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="ignore",
        cli_kebab_case=True,
        cli_prog_name="agentos-worker",
        cli_implicit_flags=True,
    )

    # --- identity -------------------------------------------------------------------------
    service_name: str = Field("ai-worker", description="`service` label of metrics and spans.")
    worker_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        description="This worker's name in job metadata and logs.",
    )

    # --- HTTP door ------------------------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens; when set, every endpoint but /healthz and "
        "/readyz needs `Authorization: Bearer <token>` (this or a JWT). Each has every scope.",
    )
    allow_unauthenticated: bool = Field(
        False,
        description="Start without auth even when bound beyond loopback (protected mode off).",
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="Shared secret (32 bytes or more) of HS256 JWT bearer tokens (README: JWT "
        "auth and scopes).",
    )
    jwt_public_key_file: Path | None = Field(
        None,
        description="PEM public key (or certificate) that signs JWTs: RSA verifies RS256, EC "
        "ES256/384/512 by its curve, Ed25519/Ed448 EdDSA. Read once at start.",
    )
    jwt_jwks_file: Path | None = Field(
        None,
        description="JWK set (JSON) of the keys that sign JWTs, chosen by the token's `kid`; "
        "each key verifies its `alg`, else the one its type allows. Read once at start.",
    )
    jwt_issuer: str | None = Field(
        None, description="The `iss` every JWT must carry (required with JWT keys)."
    )
    jwt_audience: str | None = Field(
        None, description="The `aud` every JWT must name (required with JWT keys)."
    )
    tenant_claim: str = Field(
        "tenant", min_length=1, description="The JWT claim that names the caller's tenant."
    )
    tenant_required: bool = Field(False, description="Refuse (401) a JWT without the tenant claim.")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest request body (413 past).")
    max_concurrent_invocations: int = Field(
        256, ge=1, description="Invocations running at once on this worker; past it they queue."
    )
    max_queued_invocations: int = Field(
        1024,
        ge=0,
        description="Invocations waiting for a slot (each no longer than its deadline); "
        "past it, 503 at once.",
    )
    invoke_timeout: SettingDuration = Field(30.0, gt=0, description="Default invoke deadline.")
    max_invoke_timeout: SettingDuration = Field(
        300.0, gt=0, description="Largest deadline a caller may ask for."
    )
    sync_pool_size: int = Field(
        8, ge=1, description="Threads that run Runnables with no async implementation."
    )
    access_log: bool = Field(False, description="Log every HTTP request (errors always are).")
    demo_agents: bool = Field(
        False, description="Create the demo agents (demo-echo, demo-chat, demo-steps) at start."
    )

    # --- agents and their tools -------------------------------------------------------------
    agent_types: Annotated[list[ImportRef], NoDecode] = Field(
        default_factory=list,
        description="Extra agent types, comma-separated `name=package.module:attribute`: each "
        "attribute a LangChain Runnable (a compiled LangGraph graph) or an AgentType.",
    )
    tools: Annotated[list[ImportRef], NoDecode] = Field(
        default_factory=list,
        description="Extra tools for the `agent` type, comma-separated "
        "`name=package.module:attribute`: each a LangChain tool or a documented function.",
    )

    prices_file: Path | None = Field(
        None,
        description="TOML price table, USD per million tokens per model (README: Usage and "
        "cost); read once at start. Unset: no model has a price (cost_usd null).",
    )
    accounting: bool = Field(
        True,
        description="Count what every run spends: usage, cost and time to first token in "
        "answers, frames, callbacks and tasks, their metrics, and agents' limits. Off "
        "(--no-accounting), runs report no usage and limits are not enforced: for measuring "
        "what accounting costs (python -m bench.http.sidebyside --against accounting).",
    )

    # --- NATS -----------------------------------------------------------------------------
    nats_url: str | None = Field(
        None, description="NATS server(s), comma-separated; unset starts an embedded one."
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Where the embedded nats-server keeps its JetStream data.",
    )
    nats_server_bin: Path | None = Field(
        None, description="nats-server binary for the embedded mode (default: the bundled one)."
    )
    nats_creds: Path | None = Field(
        None, description="NATS credentials file (user JWT and nkey seed, from `nsc`)."
    )
    nats_nkey_seed: Path | None = Field(None, description="File holding a NATS user nkey seed.")
    nats_user: str | None = Field(None, description="NATS user (with WORKER_NATS_PASSWORD).")
    nats_password: SecretStr | None = Field(None, description="NATS password.")
    nats_token: SecretStr | None = Field(None, description="NATS authentication token.")
    nats_tls_ca: Path | None = Field(
        None, description="CA bundle (PEM) that NATS servers' certificates must chain to."
    )
    nats_tls_cert: Path | None = Field(
        None, description="Client certificate (PEM) for NATS servers that verify clients."
    )
    nats_tls_key: Path | None = Field(None, description="Private key of WORKER_NATS_TLS_CERT.")
    nats_tls_server_name: str | None = Field(
        None, description="Name NATS servers' certificates must carry (default: the URL's host)."
    )
    agents_bucket: str = Field("agentos_agents", description="JetStream KV bucket of agents.")
    kv_replicas: int = Field(1, ge=1, le=5, description="Replicas of the worker's KV buckets.")

    # --- conversation threads (CONTRACT section 6) ----------------------------------------
    threads_bucket: str = Field(
        "agentos_threads", description="JetStream KV bucket of threads and their checkpoints."
    )
    thread_retention: SettingDuration = Field(
        2_592_000.0,
        gt=0,
        description="A thread nobody ran for this long is removed (30d): the bucket's max age.",
    )
    thread_lease_ttl: SettingDuration = Field(
        30.0,
        ge=1,
        description="A run holds its thread this long between renewals; a worker that dies "
        "blocks its threads no longer than this.",
    )

    # --- jobs over NATS (CONTRACT section 2) ---------------------------------------------
    jobs_enabled: bool = Field(True, description="Consume jobs from agent.execute.")
    tasks_stream: str = Field("AGENTOS_TASKS", description="JetStream stream of job messages.")
    tasks_subject: str = Field("agent.execute", description="Subject the Go side publishes on.")
    tasks_consumer: str = Field("agentos-workers", description="Durable pull consumer (pool).")
    tasks_bucket: str = Field("agentos_tasks", description="KV bucket of job states/results.")
    task_retention: SettingDuration = Field(
        86400.0, gt=0, description="How long job messages and results are kept (24h)."
    )
    job_ack_wait: SettingDuration = Field(
        30.0, ge=1, description="Redelivery after this long without an ack or progress."
    )
    job_max_deliver: int = Field(5, ge=1, le=100, description="Deliveries before dead letter.")
    # Sized for jobs that wait on model providers, not for cores: a job waiting on a model
    # holds memory (~85 KiB in flight, bench.agents) and no CPU while it waits, and at 64 a
    # worker finished at most 6.4 ten-second jobs a second with its CPU mostly idle.
    max_jobs: int = Field(
        1024,
        ge=1,
        description="Jobs running at once on this worker (most of a job's time is spent "
        "waiting on its model; lower it for CPU-heavy agents).",
    )
    job_fetch_batch: int = Field(32, ge=1, le=1000, description="Messages per fetch.")
    job_timeout: SettingDuration = Field(
        300.0, gt=0, description="Run limit of a job whose message sets no timeout."
    )
    job_retry_delay: SettingDuration = Field(
        5.0, gt=0, description="Hand-back delay when a job's providers are unavailable."
    )
    shutdown_grace: SettingDuration = Field(
        25.0,
        ge=0,
        description="On SIGTERM, how long in-flight jobs may finish (below "
        "Kubernetes' terminationGracePeriodSeconds).",
    )
    dlq_stream: str = Field("AGENTOS_DLQ", description="JetStream stream of dead letters.")
    dlq_subject: str = Field("agentos.dlq", description="Dead letters go to <this>.<reason>.")
    dlq_max_age: SettingDuration = Field(604800.0, gt=0, description="Dead letters kept (7d).")

    # --- callbacks (CONTRACT section 2) ---------------------------------------------------
    callback_stream: str = Field("AGENTOS_CALLBACKS", description="Durable callback outbox.")
    callback_subject: str = Field("agentos.callbacks", description="Subject of the outbox.")
    callback_timeout: SettingDuration = Field(10.0, gt=0, description="One delivery attempt.")
    callback_retry_for: SettingDuration = Field(
        21600.0, gt=0, description="Retry a failing callback this long (6h), then dead letter."
    )
    callback_max_backoff: SettingDuration = Field(
        300.0, gt=0, description="Longest wait between two delivery attempts."
    )
    callback_concurrency: int = Field(64, ge=1, description="Deliveries at once per worker.")
    callback_breaker_fail_max: int = Field(5, ge=1, description="Failures that open a host.")
    callback_breaker_reset: SettingDuration = Field(
        10.0, gt=0, description="Open breaker's wait before a trial delivery."
    )
    callback_secret: SecretStr | None = Field(
        None, description="Standard Webhooks signing secret (`whsec_...`) for callbacks."
    )
    callback_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or CIDRs allowed as callback targets (comma-separated).",
    )

    # --- model providers ------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(
        None, description="Default API key for `openai` model providers."
    )
    openai_base_url: str | None = Field(
        None, description="Default base URL for `openai` providers (any compatible endpoint)."
    )
    provider_breaker_fail_max: int = Field(
        5, ge=1, description="Consecutive failures that open a provider endpoint's breaker."
    )
    provider_breaker_reset_timeout: SettingDuration = Field(
        30.0, gt=0, description="How long an open provider breaker waits before one trial call."
    )
    provider_retry_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per provider call on transient errors (1: none)."
    )
    provider_retry_initial_backoff: SettingDuration = Field(
        0.5, ge=0, description="First wait before a provider retry; doubles, plus jitter."
    )
    provider_retry_max_wait: SettingDuration = Field(
        10.0, ge=0, description="Longest wait between provider retries, Retry-After included."
    )

    # --- streaming progress (CONTRACT section 3) --------------------------------------------
    frames_stream: str = Field("AGENTOS_FRAMES", description="JetStream stream of frames.")
    frames_max_age: SettingDuration = Field(
        86400.0, gt=0, description="How long frames stay replayable (24h)."
    )
    frames_max_bytes: int = Field(
        1 << 30, ge=1 << 20, description="Bytes the frames stream keeps; oldest go first."
    )
    frames_max_per_task: int = Field(
        10_000, ge=10, description="Frames kept per task; a longer run loses its oldest."
    )
    frames_replicas: int = Field(1, ge=1, le=5, description="Replicas of the frames stream.")
    stream_queue_frames: int = Field(
        256, ge=8, description="Frames queued per reader before progress frames coalesce."
    )
    stream_queue_bytes: int = Field(
        1 << 20, ge=64 << 10, description="Bytes queued per reader before it is closed as too slow."
    )
    stream_socket_buffer: int = Field(
        256 << 10,
        ge=0,
        description="Kernel send buffer of each streaming socket (0: the kernel's autotuning, "
        "up to several MiB per slow reader).",
    )
    stream_tool_output_bytes: int = Field(
        4096,
        ge=256,
        description="Bytes of a tool's output or error text a tool_end / tool_error frame "
        "carries; longer text is cut and the frame says truncated.",
    )
    stream_send_timeout: SettingDuration = Field(
        30.0, gt=0, description="A reader whose socket takes no frame for this long is closed."
    )
    ws_heartbeat: SettingDuration = Field(
        20.0, gt=0, description="WebSocket keepalive ping interval (no pong: closed)."
    )
    ws_max_message_bytes: int = Field(
        64 << 10, ge=1024, description="Largest inbound WebSocket message (1009 past)."
    )
    sse_keepalive: SettingDuration = Field(
        15.0, gt=0, description="Interval of SSE keepalive comments."
    )
    push_give_up: SettingDuration = Field(
        300.0, gt=0, description="Push client: how long to retry a stream_url that is down."
    )
    push_max_backoff: SettingDuration = Field(
        10.0, gt=0, description="Push client: longest wait between two reconnects."
    )

    # --- telemetry ------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    log_format: Literal["json", "console"] = Field("json")

    @field_validator("auth_tokens", "callback_allow", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return split_csv(value)

    @field_validator("agent_types", "tools", mode="before")
    @classmethod
    def _refs(cls, value: object) -> object:
        return import_refs(value)

    @field_validator(*NATS_SECURITY, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # A Kubernetes manifest often sets a variable to "" to mean "none" (and "" as a Path
        # would be the working directory).
        return None if value == "" else value

    @field_validator("callback_allow")
    @classmethod
    def _check_allow(cls, value: list[str]) -> list[str]:
        for entry in value:
            if "/" in entry:
                ipaddress.ip_network(entry, strict=False)
        return value

    @model_validator(mode="after")
    def _protected_mode(self) -> Settings:
        check_http_access(
            host=self.http_host,
            static_tokens=bool(self.auth_tokens),
            jwt=self.jwt_enabled,
            jwt_issuer=self.jwt_issuer,
            jwt_audience=self.jwt_audience,
            unauthenticated_allowed=self.allow_unauthenticated,
        )
        if self.invoke_timeout > self.max_invoke_timeout:
            raise ValueError("WORKER_INVOKE_TIMEOUT is larger than WORKER_MAX_INVOKE_TIMEOUT")
        if self.thread_lease_ttl >= self.thread_retention:
            raise ValueError("WORKER_THREAD_LEASE_TTL is not shorter than WORKER_THREAD_RETENTION")
        check_nats_access({f: getattr(self, f) for f in NATS_SECURITY}, embedded=self.embedded_nats)
        return self

    @property
    def jwt_enabled(self) -> bool:
        """True when some key verifies JWT bearer tokens."""
        return (
            self.jwt_secret is not None
            or self.jwt_public_key_file is not None
            or self.jwt_jwks_file is not None
        )

    @property
    def embedded_nats(self) -> bool:
        """True when the worker runs its own nats-server."""
        return not self.nats_url

    def token_values(self) -> frozenset[bytes]:
        """The configured bearer tokens, as bytes for constant-time comparison."""
        return frozenset(t.get_secret_value().encode() for t in self.auth_tokens)

    @classmethod
    def load(cls, argv: Sequence[str] | None = None) -> Settings:
        """Build from the environment and ``argv``; exit with a clear message on a bad value."""
        args = list(sys.argv[1:] if argv is None else argv)
        try:
            return cls(_cli_parse_args=args)
        except ValidationError as exc:
            raise SystemExit(describe_errors(exc)) from None
