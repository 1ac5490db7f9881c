"""Conversation threads persisted in the pool's NATS (issue #12, CONTRACT section 6).

Any worker continues any thread, threads survive restarts, and across the whole pool one run at
a time writes a thread. Nothing here needs Postgres or Redis: one JetStream key-value bucket
holds it all.

- ``store``: ``ThreadStore``, what the doors call: create, get, history, delete, ``lease``.
- ``checkpointer``: ``KVCheckpointer``, LangGraph's checkpointer on the bucket.
- ``lease``: the pool-wide lease of a thread (fail fast for HTTP, wait for jobs).
- ``state``: a thread's record, state and history entries, and their JSON forms.
- ``keys``: the key layout of the bucket and the thread id rule.
- ``bucket``: the bucket itself: reads, compare-and-set writes, listing and purging by filter.
"""

from worker.threads.checkpointer import KVCheckpointer
from worker.threads.keys import check_thread_id
from worker.threads.lease import Holder, Lease, LeaseInfo, Leases
from worker.threads.state import ThreadCheckpoint, ThreadRecord, ThreadState, ThreadStatus
from worker.threads.store import ThreadStore, new_thread_id

__all__ = [
    "Holder",
    "KVCheckpointer",
    "Lease",
    "LeaseInfo",
    "Leases",
    "ThreadCheckpoint",
    "ThreadRecord",
    "ThreadState",
    "ThreadStatus",
    "ThreadStore",
    "check_thread_id",
    "new_thread_id",
]
