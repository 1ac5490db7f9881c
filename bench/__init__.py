"""Benchmarks for the AgentOS worker: not shipped, run from the repo root.

Each subpackage is one benchmark with its own command, e.g. ``python -m bench.http``
(the HTTP API against bare aiohttp and LangServe); results go to ``bench/results/``.
"""
