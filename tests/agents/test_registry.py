"""The registry of agent types: lookup, validation, schemas."""

from __future__ import annotations

import pytest

from worker.agents.registry import AgentTypeRegistry
from worker.agents.types.echo import AGENT_TYPE as ECHO
from worker.errors import BadRequest


def test_builtins_are_registered() -> None:
    registry = AgentTypeRegistry.discover()
    assert {"echo", "chat", "steps", "agent"} <= set(registry.names())


def test_unknown_type_is_a_400_naming_the_known_ones() -> None:
    registry = AgentTypeRegistry.discover()
    with pytest.raises(BadRequest, match="unknown agent type 'wizard'; known: agent, chat") as info:
        registry.get("wizard")
    assert info.value.code == "unknown_agent_type"


def test_a_type_cannot_be_registered_twice() -> None:
    registry = AgentTypeRegistry([ECHO])
    with pytest.raises(ValueError, match="twice"):
        registry.register(ECHO)


def test_config_errors_name_the_field() -> None:
    registry = AgentTypeRegistry.discover()
    with pytest.raises(BadRequest) as info:
        registry.build("steps", {"steps": "many"})
    assert info.value.details == [
        {
            "field": "config.steps",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]


def test_describe_publishes_three_schemas() -> None:
    described = AgentTypeRegistry.discover().get("chat").describe()
    assert set(described) == {
        "name",
        "description",
        "config_schema",
        "input_schema",
        "output_schema",
    }
    assert described["output_schema"] == {"type": "string"}
