"""Resilience around model providers: a circuit breaker per endpoint, retries with backoff for
transient errors, and fallback chains that degrade to a basic answer.

- ``breaker``: pybreaker wrapped once for asyncio (``with breaker.calling(): await ...``).
- ``retry``: tenacity policy (transient errors only, ``Retry-After``, the run's deadline).
- ``guard``: retry -> breaker -> call for one provider, with metrics and a span per attempt.
- ``model``: the guarded chat model and the chain of providers (LangChain fallbacks).
- ``failures``: the one error a caller sees when every provider of a chain failed or refuses.
- ``chain_check``: whether one chain can answer now, from its breakers alone.
- ``admission``: refuse a run before it starts when a chain it needs cannot answer.
- ``registry``: the worker's breakers, shared by every agent naming the same endpoint.
- ``scope``: the run's deadline, which provider answered, and whether the run was stopped
  (its budget spent: no model is called again), shared with the caller.
- ``metering``: what a provider's call reports to the run's usage tracker (chunks, usage).
"""

from worker.resilience.admission import Admission, AdmissionRecorder
from worker.resilience.breaker import AsyncBreaker, BreakerOpen, State
from worker.resilience.guard import ProviderGuard
from worker.resilience.model import GuardedChatModel, ProviderChain, provider_chain
from worker.resilience.registry import BreakerStatus, Resilience
from worker.resilience.retry import RetryPolicy
from worker.resilience.scope import RunReport, run_scope

__all__ = [
    "Admission",
    "AdmissionRecorder",
    "AsyncBreaker",
    "BreakerOpen",
    "BreakerStatus",
    "GuardedChatModel",
    "ProviderChain",
    "ProviderGuard",
    "Resilience",
    "RetryPolicy",
    "RunReport",
    "State",
    "provider_chain",
    "run_scope",
]
