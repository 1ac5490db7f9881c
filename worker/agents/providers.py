"""Model providers of the ``chat`` agent: how a provider spec in agent config becomes a model."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag

from worker.agents.fake_model import ScriptedChatModel
from worker.agents.registry import BuildContext
from worker.durations import GoDuration
from worker.errors import BadRequest


class FakeProvider(BaseModel):
    """langchain-core's fake chat model: scripted replies, deterministic, streamed per token."""

    model_config = ConfigDict(extra="forbid", title="FakeProvider")
    provider: Literal["fake"] = "fake"
    responses: list[str] = Field(
        default_factory=lambda: ["Hello! I am a fake model answering from a script."],
        min_length=1,
        description="Replies, cycled through in order.",
    )
    token_delay: GoDuration = Field(0.0, ge=0, le=10, description="Delay before each token.")


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


def _provider_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("provider", "fake"))
    return str(getattr(value, "provider", "fake"))


ProviderSpec = Annotated[
    Annotated[FakeProvider, Tag("fake")] | Annotated[OpenAIProvider, Tag("openai")],
    Discriminator(_provider_of),
]
"""A model provider, chosen by its ``provider`` key (``fake`` when the key is absent)."""


def build_model(spec: FakeProvider | OpenAIProvider, ctx: BuildContext) -> BaseChatModel:
    """The LangChain chat model for ``spec``."""
    if isinstance(spec, FakeProvider):
        return ScriptedChatModel(responses=list(spec.responses), token_delay=spec.token_delay)
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
    }
    if spec.temperature is not None:
        kwargs["temperature"] = spec.temperature
    if spec.max_tokens is not None:
        kwargs["max_tokens"] = spec.max_tokens
    model: BaseChatModel = ChatOpenAI(**kwargs)
    return model
