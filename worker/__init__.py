"""AgentOS worker: the Python pool that runs LangChain agents for Go backends."""

__version__ = "0.1.0"
