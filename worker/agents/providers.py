"""Model providers of the ``chat`` agent: how a provider spec in agent config becomes a model.

Every provider is wrapped in a ``GuardedChatModel``; network providers (``openai``) get a guard
too: retries with backoff for transient errors and the circuit breaker of their endpoint, whose
name is ``openai:{base_url}#{model}`` (one per endpoint and model, shared by every agent using
it; the API key is not part of it, so agents with different keys share the endpoint's breaker).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationError,
)

from worker.agents.agent_type import BuildContext
from worker.agents.fake_model import ScriptedChatModel, ScriptedReply, ScriptedUsage, TextReply
from worker.durations import GoDuration
from worker.errors import BadRequest
from worker.resilience import GuardedChatModel
from worker.resilience.classify import ErrorKind

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASIC_ANSWER = (
    "Sorry, the assistant cannot answer right now because its language models are unavailable. "
    "Please try again in a few minutes."
)


class FakeProvider(BaseModel):
    """A fake chat model: scripted replies, deterministic, streamed per token, calling tools
    when a reply says so."""

    model_config = ConfigDict(extra="forbid", title="FakeProvider")
    provider: Literal["fake"] = "fake"
    responses: list[ScriptedReply] = Field(
        default_factory=lambda: list[ScriptedReply](
            ["Hello! I am a fake model answering from a script."]
        ),
        min_length=1,
        description="Replies, cycled through in order: a text answer, or "
        '`{"tool_calls": [{"name": "calculator", "args": {"expression": "2+2"}}]}` to call '
        "tools.",
    )
    token_delay: GoDuration = Field(0.0, ge=0, le=10, description="Delay before each token.")
    model: str = Field(
        "fake",
        min_length=1,
        max_length=128,
        description="The model's name in usage, metrics and the price table.",
    )


class BasicProvider(BaseModel):
    """The last resort of a fallback chain: a fixed answer, no model. Always marked degraded."""

    model_config = ConfigDict(extra="forbid", title="BasicProvider")
    provider: Literal["basic"]
    answer: str = Field(BASIC_ANSWER, min_length=1, max_length=10_000)


class BreakerConfig(BaseModel):
    """The endpoint's circuit breaker (unset: the worker's ``WORKER_PROVIDER_BREAKER_*``)."""

    model_config = ConfigDict(extra="forbid", title="BreakerConfig")
    fail_max: int | None = Field(
        None, ge=1, le=1000, description="Consecutive failures that open it."
    )
    reset_timeout: GoDuration | None = Field(
        None, gt=0, le=3600, description="How long it stays open before one trial call."
    )
    count: list[ErrorKind] | None = Field(
        None,
        description="Error kinds that count as failures (default: connection, timeout, "
        "rate_limit, server_error); other errors mean the endpoint answered.",
    )


class RetryConfig(BaseModel):
    """Retries of transient errors (unset: the worker's ``WORKER_PROVIDER_RETRY_*``)."""

    model_config = ConfigDict(extra="forbid", title="RetryConfig")
    max_attempts: int | None = Field(None, ge=1, le=10, description="Attempts, first included.")
    initial_backoff: GoDuration | None = Field(
        None, ge=0, le=60, description="First wait; doubles per retry, plus jitter."
    )
    max_wait: GoDuration | None = Field(
        None, ge=0, le=300, description="Longest wait, Retry-After included."
    )


class OpenAIProvider(BaseModel):
    """Any OpenAI-compatible chat completions endpoint, through ``langchain-openai``."""

    model_config = ConfigDict(extra="forbid", title="OpenAIProvider")
    provider: Literal["openai"]
    model: str = Field("gpt-4o-mini", min_length=1)
    base_url: str | None = Field(None, description="Default: WORKER_OPENAI_BASE_URL.")
    api_key: SecretStr | None = Field(None, description="Default: WORKER_OPENAI_API_KEY.")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    timeout: GoDuration = Field(30.0, gt=0, description="Per-request timeout.")
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)


def _provider_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("provider", "fake"))
    return str(getattr(value, "provider", "fake"))


ProviderSpec = Annotated[
    Annotated[FakeProvider, Tag("fake")]
    | Annotated[OpenAIProvider, Tag("openai")]
    | Annotated[BasicProvider, Tag("basic")],
    Discriminator(_provider_of),
]
"""A model provider, chosen by its ``provider`` key (``fake`` when the key is absent)."""

AnyProvider = FakeProvider | OpenAIProvider | BasicProvider
_SPEC: TypeAdapter[AnyProvider] = TypeAdapter(ProviderSpec)


def provider_name(spec: AnyProvider, ctx: BuildContext) -> str:
    """The provider's name in metadata, metrics and ``/readyz``; for ``openai`` also the name of
    its endpoint's breaker."""
    if isinstance(spec, OpenAIProvider):
        base_url = (spec.base_url or ctx.openai_base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/")
        return f"openai:{base_url}#{spec.model}"
    return spec.provider


def build_model(spec: AnyProvider, ctx: BuildContext) -> BaseChatModel:
    """The provider's own LangChain chat model, unguarded."""
    if isinstance(spec, FakeProvider):
        return ScriptedChatModel(
            responses=list(spec.responses), token_delay=spec.token_delay, model=spec.model
        )
    if isinstance(spec, BasicProvider):
        # No model answers, so nothing is spent: its answer reports zero tokens.
        answer = TextReply(
            content=spec.answer, usage=ScriptedUsage(input_tokens=0, output_tokens=0)
        )
        return ScriptedChatModel(responses=[answer], provider="basic", model="basic")
    try:  # an optional extra, imported when an agent uses it
        from langchain_openai import ChatOpenAI  # noqa: PLC0415
    except ImportError:  # the optional extra is missing
        raise BadRequest(
            "the 'openai' provider needs the worker's 'openai' extra "
            "(pip install 'agentos-worker[openai]')",
            code="provider_unavailable",
        ) from None
    api_key = spec.api_key.get_secret_value() if spec.api_key else ctx.openai_api_key
    kwargs: dict[str, Any] = {
        "model": spec.model,
        "base_url": spec.base_url or ctx.openai_base_url,
        "api_key": api_key or "not-needed",
        "timeout": spec.timeout,
        # Retries belong to the worker's resilience layer, not to the SDK's hidden loop.
        "max_retries": 0,
        # Streamed answers report their token usage too (``stream_options.include_usage``):
        # without it, a streamed run's spend would be unknown.
        "stream_usage": True,
    }
    if spec.temperature is not None:
        kwargs["temperature"] = spec.temperature
    if spec.max_tokens is not None:
        kwargs["max_tokens"] = spec.max_tokens
    model: BaseChatModel = ChatOpenAI(**kwargs)
    return model


def build_provider(spec: AnyProvider, ctx: BuildContext, *, fallback: bool) -> GuardedChatModel:
    """The provider's model behind its guard. ``fallback``: not the agent's primary provider,
    so its answers are degraded (``basic`` answers always are)."""
    name = provider_name(spec, ctx)
    degraded = fallback or isinstance(spec, BasicProvider)
    guard = None
    if isinstance(spec, OpenAIProvider):
        guard = ctx.resilience.guard(
            name,
            fail_max=spec.breaker.fail_max,
            reset_timeout=spec.breaker.reset_timeout,
            counted=spec.breaker.count,
            max_attempts=spec.retry.max_attempts,
            initial_backoff=spec.retry.initial_backoff,
            max_wait=spec.retry.max_wait,
        )
    inner = build_model(spec, ctx)
    return GuardedChatModel(
        inner=inner,
        provider=name,
        degraded=degraded,
        guard=guard,
        name=inner.get_name(),
        metadata={"agentos_provider": name, "agentos_degraded": degraded},
    )


def provider_names(config: Mapping[str, Any], ctx: BuildContext) -> list[str]:
    """The providers named by an agent config's ``model`` and ``fallbacks`` keys (the ``chat``
    type's, and any plugin type following the same convention); [] if it has none."""
    specs: list[Any] = []
    if "model" in config:
        specs.append(config["model"])
    fallbacks = config.get("fallbacks")
    if isinstance(fallbacks, list):
        specs.extend(fallbacks)
    names = []
    for raw in specs:
        try:
            names.append(provider_name(_SPEC.validate_python(raw), ctx))
        except ValidationError:
            continue
    return names
