"""One OpenTelemetry span per HTTP request, continuing an incoming ``traceparent``.

Hand-written on the OpenTelemetry API rather than taken from
``opentelemetry-instrumentation-aiohttp-server``: that package measured ~100 µs per request on
the invoke path (a second middleware, environment variables read and header-capture lists
rebuilt on every request, OTel metrics of its own beside ours), more than the worker's whole
budget over a bare aiohttp handler (``python -m bench.http``, docs/benchmarks.md). What it did
that matters here is a few lines: extract the parent with the configured propagator, start one
SERVER span named by the route template with the stable HTTP semantic-convention attributes,
mark 5xx as errors, end it.
"""

from __future__ import annotations

from aiohttp import web
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from worker.telemetry.tracing import TRACER_NAME

_tracer = trace.get_tracer(TRACER_NAME)


class RequestSpan:
    """The span of one request, current while its handler runs."""

    __slots__ = ("_span", "_token")

    def __init__(self, request: web.Request, route: str, request_id: str) -> None:
        headers = request.headers
        # Extracting costs a few µs; most requests carry no trace context at all.
        parent = propagate.extract(headers) if headers.get("traceparent") else None
        method = request.method
        self._span = _tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": request.path,
                "http.request_id": request_id,
            },
        )
        self._token = context.attach(trace.set_span_in_context(self._span, parent))

    @property
    def span(self) -> trace.Span:
        """The span itself (handlers add attributes to it through ``get_current_span``)."""
        return self._span

    def end(self, status: int, exc: BaseException | None = None) -> None:
        """Close the span with the response's status (5xx marks it an error)."""
        span = self._span
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_attribute("error.type", type(exc).__qualname__ if exc else str(status))
                span.set_status(Status(StatusCode.ERROR))
                if exc is not None:
                    span.record_exception(exc)
        span.end()
        context.detach(self._token)
