"""Agents: the registry of agent types, the pool-wide store of agents, and running them."""
