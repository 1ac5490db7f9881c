"""OpenTelemetry tracing set-up.

Exporters follow the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or
``none``, the default being ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and ``none``
otherwise) and the exporter's own ``OTEL_EXPORTER_OTLP_*``. Spans are always created, so the
trace id reaches logs and callbacks even when nothing is exported.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from worker import __version__

TRACER_NAME = "agentos.worker"


def build_tracer_provider(
    service_name: str,
    worker_id: str,
    *,
    environ: Mapping[str, str] | None = None,
    processors: list[SpanProcessor] | None = None,
) -> TracerProvider:
    """A tracer provider for this worker, exporting as the ``OTEL_*`` variables say."""
    env = os.environ if environ is None else environ
    resource = Resource.create(
        {
            "service.name": env.get("OTEL_SERVICE_NAME", service_name),
            "service.version": __version__,
            "service.instance.id": worker_id,
        }
    )
    provider = TracerProvider(resource=resource)
    for processor in processors or []:
        provider.add_span_processor(processor)
    exporter = env.get("OTEL_TRACES_EXPORTER")
    if exporter is None:
        exporter = "otlp" if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
    if exporter == "otlp":
        # Imported only when used: the exporter pulls in protobuf and an HTTP client.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def install(provider: TracerProvider) -> None:
    """Make ``provider`` the process's tracer provider (OpenTelemetry's one allowed global) and
    turn on the aiohttp server instrumentation: one span per request, continuing an incoming
    ``traceparent``."""
    trace.set_tracer_provider(provider)
    instrumentor = AioHttpServerInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        with warnings.catch_warnings():
            # The instrumentation subclasses web.Application, which aiohttp discourages with a
            # DeprecationWarning; it is the instrumentation's documented way in, so we accept it.
            warnings.filterwarnings("ignore", "Inheritance class", DeprecationWarning)
            instrumentor.instrument(tracer_provider=provider)
