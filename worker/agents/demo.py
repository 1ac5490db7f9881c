"""The demo agents of the README's tour, created with ``WORKER_DEMO_AGENTS=true``."""

from __future__ import annotations

from typing import Any

from worker.agents.store import AgentStore

DEMO_AGENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "demo-echo": ("echo", "Echo", {}),
    "demo-chat": (
        "chat",
        "Chat (fake model)",
        {
            "system_prompt": "You are a concise assistant.",
            "model": {
                "provider": "fake",
                "responses": [
                    "Hello from the AgentOS worker. This answer was streamed token by token.",
                    "A second scripted reply, so you can see the fake model cycle.",
                ],
                "token_delay": "30ms",
            },
        },
    ),
    "demo-steps": ("steps", "Ten steps", {"steps": 10, "step_delay": "500ms"}),
}


async def create_demo_agents(store: AgentStore) -> None:
    """Create each demo agent unless it already exists (they keep their ids across restarts)."""
    for agent_id, (type_name, name, config) in DEMO_AGENTS.items():
        await store.ensure(agent_id, type_name=type_name, name=name, config=config)
