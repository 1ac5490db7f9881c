"""With no exporter configured, spans record nothing but still carry the trace on."""

from __future__ import annotations

from opentelemetry import propagate, trace

from worker.telemetry.tracing import PropagatingTracerProvider, build_tracer_provider

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _child_traceparent(tracer: trace.Tracer, incoming: str | None) -> str:
    parent = propagate.extract({"traceparent": incoming} if incoming else {})
    with tracer.start_as_current_span("job", context=parent) as span:
        assert not span.is_recording()
        assert trace.get_current_span() is span
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    return carrier["traceparent"]


def test_no_exporter_means_a_propagating_provider() -> None:
    assert isinstance(build_tracer_provider("s", "w", environ={}), PropagatingTracerProvider)
    exporting = build_tracer_provider("s", "w", environ={"OTEL_TRACES_EXPORTER": "console"})
    assert not isinstance(exporting, PropagatingTracerProvider)


def test_the_parent_trace_and_its_sampled_flag_carry_on() -> None:
    tracer = PropagatingTracerProvider().get_tracer("t")
    for flags in ("01", "00"):
        out = _child_traceparent(tracer, f"00-{TRACE_ID}-00f067aa0ba902b7-{flags}")
        version, trace_id, span_id, out_flags = out.split("-")
        assert (version, trace_id, out_flags) == ("00", TRACE_ID, flags)
        assert span_id != "00f067aa0ba902b7"  # a span of its own


def test_without_a_parent_a_sampled_trace_of_its_own_starts() -> None:
    tracer = PropagatingTracerProvider().get_tracer("t")
    first = _child_traceparent(tracer, None).split("-")
    second = _child_traceparent(tracer, None).split("-")
    assert first[1] != second[1]
    assert first[1] != "0" * 32
    assert first[3] == "01"
