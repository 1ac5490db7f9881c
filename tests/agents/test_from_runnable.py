"""Agent types made from Runnables: schemas from the Runnable itself, config as a graph's
context or a Runnable's configurable fields, and ``WORKER_AGENT_TYPES`` entries that stop
start-up when they cannot be used."""

from __future__ import annotations

import pytest

from tests.agents import graphs
from worker.agents.agent_type import BuildContext
from worker.agents.from_runnable import register_agent_types, runnable_type
from worker.agents.registry import AgentTypeRegistry
from worker.config import ConfigError, ImportRef
from worker.errors import BadRequest

GRAPHS = "tests.agents.graphs"


def ref(name: str, attribute: str, module: str = GRAPHS) -> ImportRef:
    return ImportRef(name=name, module=module, attribute=attribute)


def test_a_graph_publishes_its_own_schemas() -> None:
    described = runnable_type("greeter", graphs.graph).describe()
    assert described["input_schema"] == graphs.graph.get_input_jsonschema()
    assert described["output_schema"] == graphs.graph.get_output_jsonschema()
    assert described["config_schema"] == graphs.graph.get_context_jsonschema()
    assert set(described["config_schema"]["properties"]) == {"salutation", "punctuation"}


async def test_a_graph_runs_with_its_config_as_context() -> None:
    greeter = runnable_type("greeter", graphs.graph)
    runnable = greeter.build(greeter.parse_config({"salutation": "Hi"}), BuildContext())
    out = await runnable.ainvoke(greeter.parse_input({"name": "Ada"}))
    assert out == {"name": "Ada", "greeting": "HI, ADA!"}


def test_a_graph_input_or_config_that_does_not_validate_is_a_400_naming_the_field() -> None:
    greeter = runnable_type("greeter", graphs.graph)
    cases = [
        (greeter.parse_input, {"name": 5}, "input.name", "5 is not of type 'string'"),
        (greeter.parse_input, {}, "input.name", "'name' is a required property"),
        (greeter.parse_input, "Ada", "input", "'Ada' is not of type 'object'"),
        (greeter.parse_config, {"colour": "red"}, "config.colour", "('colour' was unexpected)"),
        (greeter.parse_config, {"punctuation": 1}, "config.punctuation", "1 is not of type"),
    ]
    with pytest.raises(BadRequest) as info:
        runnable_type("pair", graphs.pair).parse_input({})
    assert [d["field"] for d in info.value.details] == ["input.left", "input.right"]

    for parse, value, field, message in cases:
        with pytest.raises(BadRequest) as info:
            parse(value)
        (detail,) = info.value.details
        assert detail["field"] == field
        assert message in detail["message"]


async def test_a_runnables_configurable_fields_are_its_config() -> None:
    talker = runnable_type("talker", graphs.talker)
    schema = talker.describe()["config_schema"]
    assert list(schema["properties"]) == ["responses"]
    assert schema["properties"]["responses"]["title"] == "Replies"
    runnable = talker.build(talker.parse_config({"responses": ["configured"]}), BuildContext())
    assert (await runnable.ainvoke("hi")).content == "configured"
    with pytest.raises(BadRequest):
        talker.parse_config({"temperature": 1})


async def test_a_plain_runnable_takes_anything_and_no_config() -> None:
    backwards = runnable_type("backwards", graphs.backwards)
    assert backwards.describe()["input_schema"] == {"title": "backwards_input"}
    runnable = backwards.build(backwards.parse_config({}), BuildContext())
    assert await runnable.ainvoke(backwards.parse_input("abc")) == "cba"
    with pytest.raises(BadRequest):
        backwards.parse_config({"x": 1})


def test_entries_are_registered_under_their_names() -> None:
    registry = AgentTypeRegistry.discover()
    register_agent_types(
        registry, [ref("greeter", "graph"), ref("parrot", "ECHO_TYPE"), ref("rev", "backwards")]
    )
    assert {"greeter", "parrot", "rev", "echo"} <= set(registry.names())
    assert registry.get("parrot").describe()["description"] == "Returns its input unchanged."


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            ref("x", "graph", module="tests.agents.no_such"),
            "no module named 'tests.agents.no_such'",
        ),
        (ref("x", "missing"), "'tests.agents.graphs' has no attribute 'missing'"),
        (ref("x", "NOT_A_RUNNABLE"), "int is neither a LangChain Runnable nor an AgentType"),
        (ref("echo", "graph"), "agent type 'echo' is registered twice"),
    ],
)
def test_a_bad_entry_names_the_variable_and_the_entry(entry: ImportRef, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        register_agent_types(AgentTypeRegistry.discover(), [entry])
    assert str(info.value) == f"WORKER_AGENT_TYPES: entry '{entry}': {reason}"
