// Package workerclient is a typed Go client of the AgentOS worker's synchronous HTTP API
// (CONTRACT §1): agents, invocations, tasks and health; and CONTRACT §6's conversation threads:
// a ThreadID on Invoke and Stream, CreateThread, GetThread, ThreadHistory, DeleteThread and
// Resume, with sentinel errors (ErrThreadBusy, ErrThreadNotFound, ErrInvalidThreadID...) that
// errors.Is matches against the worker's *APIError.
//
// Stream reads a run's frames as server-sent events with tmaxmax/go-sse's parser; each Frame
// may carry an agent step's event (tool_start, tool_end, node, token, interrupt).
//
// It is written by hand, not generated with oapi-codegen from the worker's /openapi.json, on
// purpose. The Go backend already has the seed's types (an untagged AgentConfig, an Agent) and
// call shapes (CreateAgent(ctx, config) (*Agent, error)); a generated client would bring its own
// pointer-heavy types and request editors that a Go team would have to wrap back into those.
// The surface is a dozen calls, each a few lines around one helper, and what matters is in the
// transport: a circuit breaker (sony/gobreaker v2), retries with exponential backoff for
// idempotent calls only (cenkalti/backoff v5), OpenTelemetry propagation (otelhttp). Drift from
// the worker's spec is caught by a test that checks every route this client calls against the
// live /openapi.json.
//
// Graceful degradation, as the seed's CreateAgentWithFallback does it, is Fallback: primary
// worker, then secondary worker, then a basic answer.
package workerclient
