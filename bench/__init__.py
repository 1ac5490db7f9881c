"""Benchmarks for the AgentOS worker (not shipped; run from the repo root).

``python -m bench.http`` compares the worker's HTTP API with a bare aiohttp
handler and with LangServe, all serving the same LangChain Runnable.
"""
