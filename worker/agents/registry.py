"""Agent types: what kinds of agent exist, how each validates its config and builds a Runnable.

Built-in types are registered here; third-party types plug in through the entry-point group
``agentos.agent_types``, each entry naming an ``AgentType`` instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from langchain_core.runnables import Runnable
from pydantic import BaseModel, TypeAdapter, ValidationError

from worker.agents.tools import ToolRegistry
from worker.errors import BadRequest
from worker.resilience.admission import AdmissionRecorder
from worker.resilience.model import ProviderChain
from worker.resilience.registry import Resilience
from worker.telemetry.logs import get_logger

ENTRY_POINT_GROUP = "agentos.agent_types"
log = get_logger(__name__)


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

    def requires(self, chain: ProviderChain) -> None:
        """Declare that every run of the agent being built calls ``chain``, so that runs are
        refused at once, before the Runnable starts, while none of its providers can answer
        (see ``worker.resilience.admission``). Do not declare a chain that only some runs call.
        """
        if self.admission is not None:
            self.admission.require(chain)


Builder = Callable[[Any, BuildContext], Runnable[Any, Any]]


@dataclass(frozen=True, kw_only=True)
class AgentType:
    """One kind of agent: its config model, its input and output types, and its builder."""

    name: str
    description: str
    config_model: type[BaseModel]
    build: Builder
    input_type: Any = Any
    output_type: Any = Any
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
                details=_error_list(exc, prefix="config"),
            ) from None

    def parse_input(self, value: Any) -> Any:
        """Validate an invocation's input (400 with the failing fields)."""
        try:
            return self._input.validate_python(value)
        except ValidationError as exc:
            raise BadRequest(
                f"invalid input for agent type {self.name!r}",
                details=_error_list(exc, prefix="input"),
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


def _error_list(exc: ValidationError, *, prefix: str) -> list[dict[str, Any]]:
    return [
        {"field": ".".join([prefix, *(str(p) for p in err["loc"])]), "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


class AgentTypeRegistry:
    """The agent types this worker knows, by name."""

    def __init__(self, types: Iterable[AgentType] = ()) -> None:
        self._types: dict[str, AgentType] = {}
        for agent_type in types:
            self.register(agent_type)

    def register(self, agent_type: AgentType) -> None:
        """Add a type; a second type with the same name is refused."""
        if agent_type.name in self._types:
            raise ValueError(f"agent type {agent_type.name!r} is registered twice")
        self._types[agent_type.name] = agent_type

    @classmethod
    def discover(cls) -> AgentTypeRegistry:
        """The built-in types plus every type found in the ``agentos.agent_types`` group."""
        # The built-in types import this module; importing them here avoids the cycle.
        from worker.agents.types import BUILTIN_TYPES  # noqa: PLC0415

        registry = cls(BUILTIN_TYPES)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                agent_type = ep.load()
            except Exception:  # a broken plugin must not stop the worker
                log.exception("agent type plugin failed to load", entry_point=ep.value)
                continue
            if not isinstance(agent_type, AgentType):
                log.error("entry point is not an AgentType", entry_point=ep.value)
                continue
            registry.register(agent_type)
            log.info("agent type plugin loaded", agent_type=agent_type.name, entry_point=ep.value)
        return registry

    def get(self, name: str) -> AgentType:
        """The type named ``name`` (400 ``unknown_agent_type`` if none)."""
        try:
            return self._types[name]
        except KeyError:
            raise BadRequest(
                f"unknown agent type {name!r}; known: {', '.join(sorted(self._types))}",
                code="unknown_agent_type",
            ) from None

    def names(self) -> list[str]:
        """Registered type names, sorted."""
        return sorted(self._types)

    def build(
        self,
        name: str,
        raw_config: Mapping[str, Any] | None = None,
        ctx: BuildContext | None = None,
    ) -> Runnable[Any, Any]:
        """Validate ``raw_config`` and build the type's Runnable (handy for tests and benches)."""
        agent_type = self.get(name)
        return agent_type.build(agent_type.parse_config(raw_config), ctx or BuildContext())

    def __iter__(self) -> Any:
        return iter(self._types[name] for name in self.names())
