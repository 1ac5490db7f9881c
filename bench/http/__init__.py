"""``python -m bench.http``: worker vs bare aiohttp vs LangServe over HTTP.

Modules: ``runnables`` (the Runnables under test), ``serve_bare`` and
``serve_langserve`` (baseline servers, one subprocess each), ``procs``
(subprocesses, ports, readiness, the worker and its nats-server), ``loadgen``
(the wrk driver, with the reasons for wrk), ``report`` (markdown and plot) and
``__main__`` (the command line).
"""
