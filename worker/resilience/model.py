"""The chat model seen by an agent: each provider's model wrapped in its guard, and the chain of
providers (LangChain's fallbacks) that turns "every provider is down" into ``Unavailable``.

``GuardedChatModel`` is a ``BaseChatModel`` that delegates ``_agenerate`` and ``_astream`` to the
provider's model. It is the one chat model run LangChain sees, so ``astream_events`` still yields
``on_chat_model_start``/``on_chat_model_stream``/``on_chat_model_end`` once per answer, token by
token, with ``metadata["agentos_provider"]`` naming the provider. (Delegating to the inner
model's public ``ainvoke``/``astream`` instead would nest a second chat model run, and every
token would be reported twice.) Each call reports its streamed chunks and usage to the run's
meter, if its scope has one (``metering``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.fallbacks import RunnableWithFallbacks
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from worker.resilience.chain_check import ChainCheck
from worker.resilience.failures import ProviderFailure, exhausted
from worker.resilience.guard import ProviderGuard
from worker.resilience.metering import CallMeter, meter_answer, meter_chunk
from worker.resilience.scope import check_stopped, current_meter, record_answer
from worker.telemetry.metrics import PROVIDER_FALLBACKS

PROVIDER_KEY = "agentos_provider"
DEGRADED_KEY = "agentos_degraded"


# The failures of the chain run in progress. A list set by the chain and appended to by its
# models: LangChain runs the models in copies of the chain's context (see scope.py).
_FAILURES: ContextVar[list[ProviderFailure] | None] = ContextVar(
    "agentos_provider_failures", default=None
)


class GuardedChatModel(BaseChatModel):
    """A provider's chat model behind its ``ProviderGuard`` (None for local providers, which
    cannot be unavailable), reporting which provider answered and whether that was degraded."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    provider: str
    degraded: bool = False
    guard: ProviderGuard | None = None

    @property
    def _llm_type(self) -> str:
        return f"agentos-guarded:{self.inner._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"provider": self.provider, "degraded": self.degraded}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The provider's own model's: its provider and model names (``ls_provider``,
        ``ls_model_name``) are what a call's metadata, traces and usage accounting show."""
        return self.inner._get_ls_params(stop=stop, **kwargs)

    @functools.cached_property
    def usage_names(self) -> tuple[str, str]:
        """The provider and model its calls report usage under: ``ls_provider`` and
        ``ls_model_name``, read once (a provider may build its whole call parameters to tell)."""
        params = self.inner._get_ls_params()
        return (
            str(params.get("ls_provider") or "unknown"),
            str(params.get("ls_model_name") or "unknown"),
        )

    def _metered(self) -> CallMeter | None:
        """This call's meter, when the run's scope has one."""
        meter = current_meter()
        return None if meter is None else meter.model_call(*self.usage_names)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the way the provider's own model formats them, keeping the guard around
        every call: the provider's ``bind_tools`` only turns the tools into call arguments,
        which this model passes on to it."""
        bound = self.inner.bind_tools(tools, tool_choice=tool_choice, **kwargs)
        if not isinstance(bound, RunnableBinding) or bound.bound is not self.inner:
            raise NotImplementedError(
                f"{self.inner.get_name()}.bind_tools does not bind call arguments"
            )
        return self.bind(**bound.kwargs)

    def _answered(self, result: ChatResult | None = None) -> None:
        record_answer(self.provider, degraded=self.degraded)
        if self.degraded:
            PROVIDER_FALLBACKS.labels(self.provider).inc()
        if result is not None:
            for generation in result.generations:
                generation.message.response_metadata[PROVIDER_KEY] = self.provider
                generation.message.response_metadata[DEGRADED_KEY] = self.degraded

    def _failed(self, exc: BaseException) -> None:
        failures = _FAILURES.get()
        if failures is None or not isinstance(exc, Exception):
            return
        retry_after = self.guard.unavailable_for(exc) if self.guard is not None else None
        failures.append(ProviderFailure(self.provider, exc, retry_after))

    @contextmanager
    def _reporting_failure(self, meter: CallMeter | None) -> Iterator[None]:
        """Report a call that raised to the chain (``_failed``) and to its ``meter``, then let
        the error go on."""
        try:
            yield
        except BaseException as exc:
            self._failed(exc)
            if meter is not None:
                meter.stop()
            raise

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        def call() -> ChatResult:
            return self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

        check_stopped()
        meter = self._metered()
        with self._reporting_failure(meter):
            result = call() if self.guard is None else self.guard.call_sync(call)
        self._answered(result)
        if meter is not None:
            meter_answer(meter, result)  # past the budget: BudgetExceeded, not a provider failure
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        def call() -> Any:
            return self.inner._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)

        check_stopped()
        meter = self._metered()
        with self._reporting_failure(meter):
            result: ChatResult = await (call() if self.guard is None else self.guard.call(call))
        self._answered(result)
        if meter is not None:
            meter_answer(meter, result)  # past the budget: BudgetExceeded, not a provider failure
        return result

    # No ``_stream``: synchronous streaming falls back to one whole answer through ``_generate``.

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        def open_stream() -> AsyncIterator[ChatGenerationChunk]:
            return self.inner._astream(messages, stop=stop, run_manager=run_manager, **kwargs)

        check_stopped()
        meter = self._metered()
        chunks = open_stream() if self.guard is None else self.guard.stream(open_stream)
        started = False
        try:
            async for chunk in chunks:
                started = True
                if meter is not None:
                    meter_chunk(meter, chunk)  # past the budget: BudgetExceeded ends the stream
                yield chunk
        except BaseException as exc:
            if not started:
                self._failed(exc)
            if meter is not None:
                meter.stop()
            raise
        self._answered()
        if meter is not None:
            meter.end()


class ProviderChain(RunnableWithFallbacks[LanguageModelInput, BaseMessage]):
    """LangChain's ``RunnableWithFallbacks`` over an agent's providers, in order, with one
    addition: when every provider failed and at least one of them is merely unavailable (open
    breaker, transient errors), the caller gets ``Unavailable`` whose ``retry_after`` is the
    soonest any of them is worth trying again, instead of the primary's raw error.

    Build it with ``provider_chain``; an open breaker raises at once, so its provider is skipped
    without waiting on the network.
    """

    @property
    def guards(self) -> tuple[ProviderGuard | None, ...]:
        """Each provider's guard, in order; None for a provider that cannot be unavailable."""
        # Unwrap bindings: ``bind_tools`` on the chain binds each of its models (see
        # ``RunnableWithFallbacks.__getattr__``), and the result is still this class.
        models = (m.bound if isinstance(m, RunnableBinding) else m for m in self.runnables)
        return tuple(m.guard if isinstance(m, GuardedChatModel) else None for m in models)

    def _all_open(self) -> Exception | None:
        """``Unavailable`` when every provider's breaker refuses calls now, else None.

        Checked before LangChain runs anything: during an outage every call would end the same
        way, and skipping the callback machinery of each model run keeps the refusal fast. (The
        worker's doors refuse even earlier, before the agent's Runnable starts: ``admission``.)
        """
        guards: list[ProviderGuard] = []
        for guard in self.guards:
            if guard is None:
                return None  # a local provider always answers
            guards.append(guard)
        return ChainCheck(guards).refusal()

    def _refuse_if_all_open(self) -> None:
        refused = self._all_open()
        if refused is not None:
            raise refused

    @contextmanager
    def _one_call(self) -> Iterator[None]:
        """One whole call of the chain: refused at once when every breaker is open, else its
        providers' failures collected and, if they all failed, turned into one error."""
        self._refuse_if_all_open()
        failures: list[ProviderFailure] = []
        token = _FAILURES.set(failures)
        try:
            yield
        except Exception as exc:
            raise exhausted(exc, failures) from exc
        finally:
            _FAILURES.reset(token)

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        with self._one_call():
            return await super().ainvoke(input, config, **kwargs)

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> BaseMessage:
        with self._one_call():
            return super().invoke(input, config, **kwargs)

    async def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[BaseMessage]:
        self._refuse_if_all_open()
        failures: list[ProviderFailure] = []
        # Set, not reset with a token: a generator may be resumed in another context. Every
        # provider is tried before the first chunk comes out, all within this first step.
        _FAILURES.set(failures)
        started = False
        try:
            async for chunk in super().astream(input, config, **kwargs):
                if not started:
                    started = True
                    _FAILURES.set(None)
                yield chunk
        except Exception as exc:
            if started:
                raise
            raise exhausted(exc, failures) from exc


def provider_chain(models: Sequence[GuardedChatModel]) -> ProviderChain:
    """The providers of an agent, the first as primary and the rest as fallbacks in order."""
    if not models:
        raise ValueError("an agent needs at least one model provider")
    plain = models[0].with_fallbacks(list(models[1:]))  # any error moves on to the next
    return ProviderChain(
        runnable=plain.runnable,
        fallbacks=plain.fallbacks,
        exceptions_to_handle=plain.exceptions_to_handle,
    )
