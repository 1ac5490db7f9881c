"""Cross-cutting telemetry: Prometheus metrics, OpenTelemetry tracing, structured logs."""
