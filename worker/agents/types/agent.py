"""``agent``: a tool-calling agent on LangGraph, with the ``chat`` type's model config.

Built with langchain's ``create_agent`` rather than langgraph's prebuilt
``create_react_agent``: the latter is deprecated in LangGraph 1.x in favour of the former, and
the former brings, as middleware, the two behaviours this type promises, so neither is
hand-written: ``ModelCallLimitMiddleware`` ends a run that wants more model calls than
``max_iterations``, and ``ToolErrorMiddleware`` hands a tool's exception to the model as an
error ``ToolMessage`` so the agent goes on.

On a thread (``thread_id``) the same graph runs on the pool's checkpointer: the input's messages
are appended to the thread's, and the run's messages (tool calls and results included) stay on
the thread.

The one piece added here is ``ProviderChainMiddleware``. ``create_agent`` calls a single
``BaseChatModel``; this worker's model is a chain of guarded providers (breakers, retries,
fallbacks, admission: see ``worker.agents.providers``), built exactly as ``chat`` builds it. The
middleware binds the request's tools to that chain and calls it in the model's place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ModelCallLimitMiddleware,
    ModelRequest,
    ModelResponse,
    ToolErrorMiddleware,
)
from langchain.agents.middleware.model_call_limit import ModelCallLimitExceededError
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.errors import GraphRecursionError
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from worker.agents.agent_type import AgentType, BuildContext
from worker.agents.providers import build_provider
from worker.agents.thread_graph import ThreadGraph
from worker.agents.types.chat import ChatConfig
from worker.errors import AgentIterationLimit, WorkerError
from worker.resilience import ProviderChain, provider_chain

MAX_TOOL_ERROR = 2000
UNANSWERED_CALL = "Error: the run was stopped before this tool answered; it has no result."
MAX_TEXT = 1_000_000
ToolName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AgentConfig(ChatConfig):
    """``chat``'s system prompt and providers, plus tools by name and an iteration bound."""

    model_config = ConfigDict(extra="forbid", title="AgentConfig")
    tools: list[ToolName] = Field(
        default_factory=list,
        max_length=64,
        description="Tools the model may call, by name: the built-ins `calculator` and "
        "`current_time`, and any the worker adds (`agentos.tools` entry points, WORKER_TOOLS).",
    )
    max_iterations: int = Field(
        10,
        ge=1,
        le=100,
        description="Model calls per run. A run whose last allowed call still asks for "
        "tools fails with `agent_iteration_limit`.",
    )

    @field_validator("tools")
    @classmethod
    def _once_each(cls, tools: list[str]) -> list[str]:
        twice = sorted({t for t in tools if tools.count(t) > 1})
        if twice:
            raise ValueError(f"tool {twice[0]!r} is listed twice")
        return tools


class InputMessage(BaseModel):
    """A message in LangChain's JSON form (``type``) or OpenAI's (``role``)."""

    model_config = ConfigDict(extra="allow", title="InputMessage")
    type: Literal["human", "ai", "system", "tool"] | None = None
    role: Literal["user", "assistant", "system", "tool"] | None = None
    content: str | list[Any]

    def as_dict(self) -> dict[str, Any]:
        """The message as ``convert_to_messages`` reads it."""
        return self.model_dump(exclude_none=True)


class MessagesInput(BaseModel):
    """A conversation so far, the agent answering its last message; or one text, which is a
    conversation of one message from the user."""

    model_config = ConfigDict(extra="forbid", title="MessagesInput")
    messages: list[InputMessage] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # Text is taken here rather than as a union member: a union would put the member's
        # name in every error's field ("input.MessagesInput.messages.0.role").
        if not isinstance(value, str):
            return value
        if not value or len(value) > MAX_TEXT:
            raise ValueError(f"text input must have 1 to {MAX_TEXT:,} characters")
        return {"messages": [{"role": "user", "content": value}]}

    @field_validator("messages")
    @classmethod
    def _convertible(cls, messages: list[InputMessage]) -> list[InputMessage]:
        # What LangChain refuses (a tool message without tool_call_id...) is the caller's
        # error: a 400 naming the message, not a failed run.
        for i, message in enumerate(messages):
            try:
                convert_to_messages([message.as_dict()])
            except Exception as exc:  # LangChain's refusals vary: KeyError, ValueError...
                raise ValueError(f"message {i}: {type(exc).__name__}: {exc}") from None
        return messages

    def to_messages(self) -> list[BaseMessage]:
        """The messages the graph starts from."""
        messages: list[BaseMessage] = convert_to_messages([m.as_dict() for m in self.messages])
        return messages

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Text or the conversation object, as the input is accepted."""
        text = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
        return {"anyOf": [text, handler(core_schema)]}


def _messages(value: Any) -> list[BaseMessage]:
    # Validated by the worker's doors already; called directly, the Runnable checks its input.
    conversation = (
        value if isinstance(value, MessagesInput) else MessagesInput.model_validate(value)
    )
    return conversation.to_messages()


def answer(messages: list[AnyMessage]) -> str:
    """The agent's final answer: the text of its last message."""
    return messages[-1].text if messages else ""


class ProviderChainMiddleware(AgentMiddleware):
    """Calls the agent's provider chain, with the request's tools bound, in place of the one
    model ``create_agent`` knows. What the chain raises (``Unavailable`` when every provider
    is down) reaches the caller unchanged."""

    def __init__(self, chain: ProviderChain) -> None:
        super().__init__()
        self._chain = chain

    def _bound(self, request: ModelRequest) -> tuple[Runnable[Any, Any], list[BaseMessage]]:
        model: Runnable[Any, Any] = self._chain
        if request.tools:
            model = self._chain.bind_tools(request.tools, tool_choice=request.tool_choice)
        if request.model_settings:
            model = model.bind(**request.model_settings)
        system = [request.system_message] if request.system_message else []
        return model, [*system, *answered(request.messages)]

    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        """The chain's answer, synchronously."""
        model, messages = self._bound(request)
        return ModelResponse(result=[model.invoke(messages)])

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """The chain's answer."""
        model, messages = self._bound(request)
        return ModelResponse(result=[await model.ainvoke(messages)])


def answered(messages: list[AnyMessage]) -> list[AnyMessage]:
    """``messages`` with every tool call answered. A run on a thread cancelled inside its tools
    leaves the thread at the model's step: an AI message whose tool calls have no tool message,
    which providers refuse (OpenAI: 400). The next run's model reads that they were stopped."""
    done = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    if all(c["id"] in done or c["id"] is None for c in calls):
        return messages  # the usual case: nothing to add, nothing copied
    out: list[AnyMessage] = []
    for message in messages:
        out.append(message)
        if isinstance(message, AIMessage):
            out.extend(
                ToolMessage(UNANSWERED_CALL, tool_call_id=c["id"], name=c["name"], status="error")
                for c in message.tool_calls
                if c["id"] is not None and c["id"] not in done
            )
    return out


def tool_error(exc: Exception, request: ToolCallRequest) -> str | None:
    """What the model reads when a tool raises (the worker's own errors still end the run)."""
    if isinstance(exc, WorkerError):
        return None
    text = f"Error: tool {request.tool_call['name']!r} failed: {type(exc).__name__}: {exc}"
    return text[:MAX_TOOL_ERROR]


def build_graph(
    config: AgentConfig, ctx: BuildContext, *, checkpointer: Checkpointer = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent's LangGraph graph: state ``{"messages": [...]}`` in and out, every message of
    the run kept (what a thread stores), with ``checkpointer`` when given."""
    tools = ctx.tools.select(config.tools)  # 400 unknown_tool, listing the known ones
    models = [
        build_provider(spec, ctx, fallback=i > 0)
        for i, spec in enumerate([config.model, *config.fallbacks])
    ]
    providers = provider_chain(models)
    ctx.requires(providers)  # every run calls it: refused at once while it cannot answer
    middleware: list[AgentMiddleware[Any, Any, Any]] = [
        ModelCallLimitMiddleware(run_limit=config.max_iterations, exit_behavior="error"),
        ToolErrorMiddleware(tool_error),
        ProviderChainMiddleware(providers),
    ]
    graph = create_agent(
        models[0],  # never called: ProviderChainMiddleware calls the whole chain instead
        tools,
        system_prompt=config.system_prompt,
        middleware=middleware,
        checkpointer=checkpointer,
        name="agent",
    )
    # Each iteration takes a few graph steps (the limit's check, the model, the tools); the
    # recursion limit only backs up ``max_iterations``, it must never be the one that trips.
    return graph.with_config(recursion_limit=8 * config.max_iterations + 8)


def _iteration_limit(limit: int) -> AgentIterationLimit:
    return AgentIterationLimit(
        f"the agent was still calling tools after {limit} model calls (max_iterations)"
    )


_OVER_LIMIT = (ModelCallLimitExceededError, GraphRecursionError)


def build(config: AgentConfig, ctx: BuildContext) -> Runnable[Any, str]:
    """The graph between an input (text or messages) and the final answer's text."""
    graph = build_graph(config, ctx)
    limit = config.max_iterations

    async def arun(value: Any, config: RunnableConfig) -> str:
        try:
            state = await graph.ainvoke({"messages": _messages(value)}, config)
        except _OVER_LIMIT as exc:
            raise _iteration_limit(limit) from exc
        return answer(state["messages"])

    def run(value: Any, config: RunnableConfig) -> str:
        try:
            state = graph.invoke({"messages": _messages(value)}, config)
        except _OVER_LIMIT as exc:
            raise _iteration_limit(limit) from exc
        return answer(state["messages"])

    return RunnableLambda(run, afunc=arun, name="agent")


def build_on_thread(config: AgentConfig, ctx: BuildContext) -> ThreadGraph:
    """The agent's graph on ``ctx.checkpointer``: a turn's messages in, the state out."""
    graph = build_graph(config, ctx, checkpointer=ctx.checkpointer)
    limit = config.max_iterations

    async def arun(graph_input: Any, config: RunnableConfig) -> Any:
        # The input is the turn's state, or a Command resuming the thread.
        try:
            return await graph.ainvoke(graph_input, config)
        except _OVER_LIMIT as exc:
            raise _iteration_limit(limit) from exc

    return ThreadGraph(
        graph=RunnableLambda(arun, name="agent"),
        to_input=lambda value: {"messages": _messages(value)},
        to_output=lambda values: answer(values["messages"]),
    )


AGENT_TYPE = AgentType(
    name="agent",
    description="A tool-calling agent (LangGraph): a system prompt, tools by name, and the "
    "chat type's providers and fallbacks. Input: text, or {messages: [...]}.",
    config_model=AgentConfig,
    build=build,
    on_thread=build_on_thread,
    input_type=MessagesInput,
    output_type=str,
)
