"""``AgentType``: one kind of agent (its config model, input and output types, the builder of
its Runnable and, for a type that can keep a conversation thread, the builder of its graph on a
thread), and the ``BuildContext`` a builder is given.

The built-in types (``worker.agents.types``) and third-party plugins define ``AgentType``
instances; ``worker.agents.registry`` collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import BaseModel, TypeAdapter, ValidationError

from worker.agents.accounting.prices import PriceTable
from worker.agents.thread_graph import ThreadGraph
from worker.agents.tools import ToolRegistry
from worker.errors import BadRequest, validation_details
from worker.resilience.admission import AdmissionRecorder
from worker.resilience.model import ProviderChain
from worker.resilience.registry import Resilience


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """What a type may need from the worker to build its Runnable (provider defaults...)."""

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    resilience: Resilience = field(default_factory=Resilience)
    """Breakers shared by the worker's agents, and the default retry and breaker settings."""
    tools: ToolRegistry = field(default_factory=ToolRegistry.builtin)
    """The tools agents may be given by name (built-ins, plugins, ``WORKER_TOOLS``)."""
    admission: AdmissionRecorder | None = None
    """Set by the store while it builds one agent: what ``requires`` records (None: nobody
    asked, as when a type is built only to validate its config)."""
    checkpointer: BaseCheckpointSaver[Any] | None = None
    """The pool's thread checkpointer (``worker.threads``), which ``on_thread`` builders compile
    their graphs with; None where the worker keeps no threads."""
    prices: PriceTable = field(default_factory=PriceTable)
    """The operator's price table (``WORKER_PRICES_FILE``), which prices every run's usage."""
    accounting: bool = True
    """Count what runs spend (``WORKER_ACCOUNTING``); off, runs report no usage and agents'
    limits are not enforced."""

    def requires(self, chain: ProviderChain) -> None:
        """Declare that every run of the agent being built calls ``chain``, so that runs are
        refused at once, before the Runnable starts, while none of its providers can answer
        (see ``worker.resilience.admission``). Do not declare a chain that only some runs call.
        """
        if self.admission is not None:
            self.admission.require(chain)


Builder = Callable[[Any, BuildContext], Runnable[Any, Any]]
ThreadBuilder = Callable[[Any, BuildContext], ThreadGraph]


@dataclass(frozen=True, kw_only=True)
class AgentType:
    """One kind of agent: its config model, its input and output types, and its builder."""

    name: str
    description: str
    config_model: type[BaseModel]
    build: Builder
    input_type: Any = Any
    output_type: Any = Any
    on_thread: ThreadBuilder | None = None
    """Builds the agent as it runs on a conversation thread, from the same config and a context
    whose ``checkpointer`` is set; None for a type that keeps no thread (a run naming one gets
    400 ``threads_unsupported``)."""
    usage_from: Literal["providers", "callbacks"] = "callbacks"
    """How its runs' spending is counted (``worker.agents.accounting``). ``providers``: every
    model it calls is one of the worker's providers (``providers.build_provider``), which
    report to the run's scope themselves, and it calls no tools, so nothing is attached to its
    runs (``chat``; ``echo`` and ``steps``, which call no model at all). ``callbacks``, the
    default, for a type whose calls are not all known: a callback handler hears the models it
    calls that are not the worker's providers, and its tools (``agent``, import-path graphs,
    plugins)."""
    _input: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_input", TypeAdapter(self.input_type))

    def parse_config(self, raw: Mapping[str, Any] | None) -> BaseModel:
        """Validate ``raw`` against the config model (400 with the failing fields)."""
        try:
            return self.config_model.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise BadRequest(
                f"invalid config for agent type {self.name!r}",
                details=validation_details(exc, prefix="config"),
            ) from None

    def parse_input(self, value: Any) -> Any:
        """Validate an invocation's input (400 with the failing fields)."""
        try:
            return self._input.validate_python(value)
        except ValidationError as exc:
            raise BadRequest(
                f"invalid input for agent type {self.name!r}",
                details=validation_details(exc, prefix="input"),
            ) from None

    def describe(self) -> dict[str, Any]:
        """The type as published at ``GET /v1/agent-types``, JSON Schemas included."""
        return {
            "name": self.name,
            "description": self.description,
            "config_schema": self.config_model.model_json_schema(),
            "input_schema": TypeAdapter(self.input_type).json_schema(),
            "output_schema": TypeAdapter(self.output_type).json_schema(mode="serialization"),
        }
