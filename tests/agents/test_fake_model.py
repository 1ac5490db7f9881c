"""The ``fake`` provider's model: scripted text and tool calls, bound tools, streaming; and
tools bound through a provider chain keep every provider's guard."""

from __future__ import annotations

from langchain_core.messages import AIMessage, AIMessageChunk

from tests.agents.helpers import REGISTRY
from worker.agents.agent_type import BuildContext
from worker.agents.fake_model import ScriptedChatModel, ToolCallReply
from worker.agents.providers import OpenAIProvider, build_provider
from worker.agents.tools.calculator import calculator_tool
from worker.resilience import provider_chain

CALL = ToolCallReply.model_validate(
    {"tool_calls": [{"name": "calculator", "args": {"expression": "1+2"}, "id": "c1"}]}
)


async def test_scripted_tool_calls_whole_and_streamed() -> None:
    model = ScriptedChatModel(responses=[CALL, "three"]).bind_tools([calculator_tool()])
    message = await model.ainvoke("1+2?")
    assert isinstance(message, AIMessage)
    assert message.tool_calls == [
        {"name": "calculator", "args": {"expression": "1+2"}, "id": "c1", "type": "tool_call"}
    ]
    assert (await model.ainvoke("and?")).content == "three"

    chunks = [c async for c in model.astream("again")]
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert isinstance(whole, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [
        ("calculator", {"expression": "1+2"})
    ]


def test_bound_tools_reach_the_call_as_openai_tools() -> None:
    bound = ScriptedChatModel(responses=["x"]).bind_tools([calculator_tool()], tool_choice="any")
    assert bound.kwargs["tool_choice"] == "any"  # type: ignore[attr-defined]
    (spec,) = bound.kwargs["tools"]  # type: ignore[attr-defined]
    assert spec["function"]["name"] == "calculator"
    assert "expression" in spec["function"]["parameters"]["properties"]


def test_a_chain_with_tools_keeps_its_guards() -> None:
    ctx = BuildContext()
    spec = OpenAIProvider(provider="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-x")
    chain = provider_chain([build_provider(spec, ctx, fallback=False)])
    bound = chain.bind_tools([calculator_tool()])
    assert type(bound) is type(chain)
    assert bound.guards == chain.guards
    assert bound.guards[0] is not None


def test_the_fake_provider_config_takes_tool_call_replies() -> None:
    agent_type = REGISTRY.get("chat")
    parsed = agent_type.parse_config(
        {"model": {"responses": ["hi", {"tool_calls": [{"name": "calculator"}]}]}}
    )
    assert parsed.model_dump()["model"]["responses"][1]["tool_calls"][0]["args"] == {}
