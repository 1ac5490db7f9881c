"""Agent types made from any LangChain Runnable, a compiled LangGraph graph included.

``WORKER_AGENT_TYPES="support=mypkg.agents:graph"`` names a Runnable; it becomes an agent type
whose schemas are the Runnable's own: ``get_input_jsonschema()`` and ``get_output_jsonschema()``
for input and output, and for config a graph's context schema (LangGraph 1.x's home for what
0.x called configurable fields, ``get_context_jsonschema()``) or another Runnable's configurable
fields (``config_specs``). An agent's config reaches its runs as the graph's ``context``, or as
``configurable`` values.

Inputs and graph configs are validated against the published JSON Schemas with ``jsonschema``,
not with the Runnable's pydantic input model: for a ``MessagesState`` graph that model refuses
``{"role": "user", "content": ...}`` messages the graph itself accepts (raising ``TypeError``,
not a validation error), while the published schema accepts them. The schema a client reads is
the one its input is held to.

A LangGraph graph keeps conversation threads: on a thread it runs as a copy compiled with the
pool's checkpointer (``thread_graph.with_checkpointer``), its input and output as they are;
without a thread it runs with none (a checkpointer it was compiled with is left out, as a
checkpointer of one process could not serve the pool). Any other Runnable keeps no thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from pydantic import BaseModel, ConfigDict, Field, create_model

from worker.agents.agent_type import AgentType, BuildContext, Builder, ThreadBuilder
from worker.agents.imports import invalid, load
from worker.agents.registry import AgentTypeRegistry
from worker.agents.thread_graph import ThreadGraph, with_checkpointer
from worker.config import ImportRef
from worker.errors import BadRequest
from worker.telemetry.logs import get_logger

log = get_logger(__name__)
MAX_DETAILS = 20
MAX_MESSAGE = 300

# ``oneOf`` checked as ``anyOf``: pydantic writes a discriminated union (a graph's message list)
# as ``oneOf`` plus OpenAPI's ``discriminator``, which JSON Schema ignores, so a message matching
# several members ({"role": "user", "content": ...} fits ChatMessage and more) would be refused,
# while LangChain accepts it. A value must still match at least one member.
Validator = validators.extend(
    Draft202012Validator, {"oneOf": Draft202012Validator.VALIDATORS["anyOf"]}
)


class NoConfig(BaseModel):
    """A Runnable with nothing configurable takes no configuration."""

    model_config = ConfigDict(extra="forbid", title="NoConfig")


class GraphContext(BaseModel):
    """A graph's context, as given: checked against the graph's context schema first."""

    model_config = ConfigDict(extra="allow", title="GraphContext")


def register_agent_types(registry: AgentTypeRegistry, refs: Sequence[ImportRef]) -> None:
    """Add the agent types ``WORKER_AGENT_TYPES`` names to ``registry``: ``ConfigError`` for
    an entry that does not import, is neither a Runnable nor an ``AgentType``, or takes a
    name already registered. An ``AgentType`` is registered under its entry's name."""
    for ref in refs:
        target = load(ref, setting="agent_types")
        if isinstance(target, AgentType):
            agent_type = target if target.name == ref.name else replace(target, name=ref.name)
        elif isinstance(target, Runnable):
            agent_type = runnable_type(ref.name, target, source=str(ref))
        else:
            reason = f"{type(target).__name__} is neither a LangChain Runnable nor an AgentType"
            raise invalid(ref, "agent_types", reason)
        try:
            registry.register(agent_type)
        except ValueError as exc:
            raise invalid(ref, "agent_types", str(exc)) from None
        log.info("agent type registered", agent_type=ref.name, entry=str(ref))


def runnable_type(name: str, runnable: Runnable[Any, Any], *, source: str = "") -> AgentType:
    """An agent type that runs ``runnable``, described by the Runnable's own schemas."""
    config_model: type[BaseModel]
    on_thread: ThreadBuilder | None = None
    if isinstance(runnable, Pregel) and isinstance(runnable.checkpointer, BaseCheckpointSaver):
        runnable = runnable.copy(update={"checkpointer": None})
    if isinstance(runnable, Pregel) and runnable.context_schema is not None:
        config_model = GraphContext
        config_schema = _schema(name, "config", runnable.get_context_jsonschema)
        build = _graph_builder(runnable)
        on_thread = _thread_builder(runnable, _graph_builder)
    else:
        config_model = _configurable_model(runnable)
        config_schema = config_model.model_json_schema()
        build = _configurable_builder(runnable)
        if isinstance(runnable, Pregel):
            on_thread = _thread_builder(runnable, _configurable_builder)
    return RunnableAgentType(
        name=name,
        description=f"{runnable.get_name()} ({source})" if source else runnable.get_name(),
        config_model=config_model,
        build=build,
        on_thread=on_thread,
        input_schema=_schema(name, "input", runnable.get_input_jsonschema),
        output_schema=_schema(name, "output", runnable.get_output_jsonschema),
        config_schema=config_schema,
    )


@dataclass(frozen=True, kw_only=True)
class RunnableAgentType(AgentType):
    """An ``AgentType`` whose input and config are held to JSON Schemas, not Python types."""

    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    config_schema: dict[str, Any]
    _input_check: Any = field(init=False, repr=False, compare=False)
    _config_check: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_input_check", Validator(self.input_schema))
        object.__setattr__(self, "_config_check", Validator(_closed(self.config_schema)))

    def parse_input(self, value: Any) -> Any:
        """Check ``value`` against the input schema (400 with the failing fields)."""
        _check(self._input_check, value, prefix="input", what=f"input for agent type {self.name!r}")
        return value

    def parse_config(self, raw: Mapping[str, Any] | None) -> BaseModel:
        """Check a graph's config against its context schema, then as the type's model."""
        if self.config_model is GraphContext:
            _check(
                self._config_check,
                dict(raw or {}),
                prefix="config",
                what=f"config for agent type {self.name!r}",
            )
        return super().parse_config(raw)

    def describe(self) -> dict[str, Any]:
        """The type as published at ``GET /v1/agent-types``: the Runnable's own schemas."""
        return {
            "name": self.name,
            "description": self.description,
            "config_schema": self.config_schema,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }


def _thread_builder(
    graph: Pregel[Any, Any, Any, Any], builder: Callable[[Runnable[Any, Any]], Builder]
) -> ThreadBuilder:
    """Builds a copy of ``graph`` on the pool's checkpointer, configured as ``builder``
    configures the graph itself."""

    def build(config: BaseModel, ctx: BuildContext) -> ThreadGraph:
        on_pool = with_checkpointer(graph, ctx.checkpointer) or graph
        return ThreadGraph(graph=builder(on_pool)(config, ctx))

    return build


def _graph_builder(graph: Runnable[Any, Any]) -> Builder:
    def build(config: BaseModel, _: BuildContext) -> Runnable[Any, Any]:
        # LangGraph turns the dict into the graph's context type (dataclass, model...).
        return graph.bind(context=config.model_dump())

    return build


def _configurable_builder(runnable: Runnable[Any, Any]) -> Builder:
    def build(config: BaseModel, _: BuildContext) -> Runnable[Any, Any]:
        values = config.model_dump(exclude_unset=True)
        return runnable.with_config(configurable=values) if values else runnable

    return build


def _configurable_model(runnable: Runnable[Any, Any]) -> type[BaseModel]:
    """A model of the Runnable's configurable fields (``configurable_fields``, alternatives)."""
    specs = runnable.config_specs
    if not specs:
        return NoConfig
    fields: dict[str, Any] = {
        spec.id: (
            spec.annotation,
            Field(spec.default, title=spec.name, description=spec.description),
        )
        for spec in specs
    }
    model: type[BaseModel] = create_model(
        "ConfigurableFields", __config__=ConfigDict(extra="forbid"), **fields
    )
    return model


def _schema(name: str, what: str, make: Any) -> dict[str, Any]:
    """A schema from the Runnable; one it cannot produce accepts anything, with a warning."""
    try:
        schema = make()
    except Exception as exc:  # the Runnable's types may not convert to a JSON Schema
        log.warning(
            "agent type schema unavailable; accepting any value",
            agent_type=name,
            schema=what,
            error=f"{type(exc).__name__}: {exc}",
        )
        return {}
    return dict(schema or {})


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` refusing unknown top-level keys (a typo in a config key is an error)."""
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        return {**schema, "additionalProperties": False}
    return schema


def _check(validator: Any, value: Any, *, prefix: str, what: str) -> None:
    details: list[dict[str, str]] = []
    for err in validator.iter_errors(value):
        path = [prefix, *(str(p) for p in err.absolute_path)]
        fields = [[*path, key] for key in _keys_at_fault(err)] or [path]
        details.extend({"field": ".".join(f), "message": _short(err.message)} for f in fields)
    if details:
        details.sort(key=lambda d: d["field"])
        raise BadRequest(f"invalid {what}", details=details[:MAX_DETAILS])


def _keys_at_fault(err: ValidationError) -> list[str]:
    """The keys a missing-key or unknown-key error is about, so the field names them."""
    if not isinstance(err.instance, dict):
        return []
    if err.validator == "required":  # one error per missing key, named only in its message
        missing = [str(k) for k in err.validator_value if k not in err.instance]
        return [k for k in missing if err.message.startswith(repr(k))][:1]
    if err.validator == "additionalProperties" and err.validator_value is False:
        known = err.schema.get("properties", {})
        return sorted(str(k) for k in err.instance if k not in known)
    return []


def _short(message: str) -> str:
    # jsonschema quotes the offending value, which may be the whole (large) input.
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
