"""Many runs at once on many threads, over two workers: leases keep each thread's turns whole."""

from __future__ import annotations

import asyncio
import uuid

from tests.threads.conftest import OpenStore
from tests.threads.helpers import contents, echo_graph, turn

THREADS = 20
TURNS = 5


async def test_concurrent_turns_keep_every_thread_exact(open_store: OpenStore) -> None:
    workers = [await open_store(), await open_store()]
    graphs = [echo_graph(w.checkpointer) for w in workers]
    threads = [f"conv-{i}-{uuid.uuid4().hex[:6]}" for i in range(THREADS)]

    async def run_turn(thread: str, n: int) -> None:
        k = (hash(thread) + n) % 2  # the turns of a thread land on both workers
        async with workers[k].lease(thread, f"{thread}-turn-{n}", wait=60):
            await graphs[k].ainvoke(turn(f"{thread} #{n}"), workers[k].config(thread))

    # Every turn of every thread starts at once: the turns of a thread queue on its lease.
    await asyncio.gather(*(run_turn(t, n) for t in threads for n in range(TURNS)))

    for thread in threads:
        state = await workers[0].get(thread)
        assert state.status == "idle"
        said = contents(state.values["messages"])
        assert len(said) == 2 * TURNS, said
        asked = said[0::2]
        assert sorted(asked) == [f"{thread} #{n}" for n in range(TURNS)]  # each once
        assert said[1::2] == [f"echo: {text}" for text in asked]  # each answered in place
