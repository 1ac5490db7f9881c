"""The built-in agent types."""

from worker.agents.types.agent import AGENT_TYPE as AGENT
from worker.agents.types.chat import AGENT_TYPE as CHAT
from worker.agents.types.echo import AGENT_TYPE as ECHO
from worker.agents.types.steps import AGENT_TYPE as STEPS

BUILTIN_TYPES = (ECHO, CHAT, STEPS, AGENT)

__all__ = ["BUILTIN_TYPES"]
