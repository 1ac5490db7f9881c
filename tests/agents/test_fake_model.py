"""The ``fake`` provider's model: scripted text and tool calls, bound tools, streaming, the usage
its answers report; and tools bound through a provider chain keep every provider's guard."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from pydantic import ValidationError

from tests.agents.helpers import REGISTRY
from worker.agents.agent_type import BuildContext
from worker.agents.fake_model import ScriptedChatModel, ScriptedUsage, TextReply, ToolCallReply
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


async def test_answers_report_usage_whole_and_streamed() -> None:
    scripted = TextReply(
        content="a b",
        usage=ScriptedUsage(
            input_tokens=10, output_tokens=4, cached_input_tokens=6, reasoning_tokens=1
        ),
    )
    model = ScriptedChatModel(responses=["one two", scripted, CALL])
    # By default: a token per token of the input, and per token of the answer (and per call).
    whole = await model.ainvoke("three words here")
    assert whole.usage_metadata == {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}
    chunks = [c async for c in model.astream("x")]
    assert [c.usage_metadata is not None for c in chunks if c.content or c.tool_call_chunks] == [
        False,
        False,
        True,  # on the last chunk, as OpenAI sends it after the last token
    ]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert isinstance(merged, AIMessageChunk)
    assert merged.usage_metadata == {
        "input_tokens": 10,
        "output_tokens": 4,
        "total_tokens": 14,
        "input_token_details": {"cache_read": 6},
        "output_token_details": {"reasoning": 1},
    }
    called = await model.ainvoke("1+2?")
    assert called.usage_metadata is not None
    assert called.usage_metadata["output_tokens"] == 1  # one tool call, no text


def test_the_fake_model_names_its_provider_and_model() -> None:
    params = ScriptedChatModel(responses=["x"], model="my-model")._get_ls_params()
    assert (params["ls_provider"], params["ls_model_name"]) == ("fake", "my-model")


def test_scripted_usage_must_add_up() -> None:
    with pytest.raises(ValidationError, match="cached_input_tokens is more than input_tokens"):
        ScriptedUsage(input_tokens=1, output_tokens=1, cached_input_tokens=2)
    with pytest.raises(ValidationError, match="reasoning_tokens is more than output_tokens"):
        ScriptedUsage(input_tokens=1, output_tokens=1, reasoning_tokens=2)


def test_the_fake_provider_config_takes_text_replies_with_usage() -> None:
    parsed = REGISTRY.get("chat").parse_config(
        {
            "model": {
                "model": "m",
                "responses": [{"content": "hi", "usage": {"input_tokens": 3, "output_tokens": 1}}],
            }
        }
    )
    reply = parsed.model_dump()["model"]["responses"][0]
    assert reply == {
        "content": "hi",
        "usage": {
            "input_tokens": 3,
            "output_tokens": 1,
            "cached_input_tokens": 0,
            "reasoning_tokens": 0,
        },
    }
