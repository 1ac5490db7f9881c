package testenv

import (
	"context"
	"strings"
	"testing"
	"time"
)

// RequireTasks skips the test when the worker has no NATS jobs yet (its /openapi.json lacks
// /v1/tasks): the jobs door is being built beside this module, and these tests run once it lands.
func RequireTasks(tb testing.TB, w *Worker) {
	tb.Helper()
	paths := workerPaths(tb, w)
	if _, ok := paths["/v1/tasks"]; !ok {
		tb.Skip("waiting for the worker's NATS jobs (worker/jobs): /openapi.json has no /v1/tasks yet")
	}
}

// RequireStreaming skips the test when the worker does not stream frames yet (its /openapi.json
// lacks /v1/tasks/{id}/events), for the same reason as RequireTasks.
func RequireStreaming(tb testing.TB, w *Worker) {
	tb.Helper()
	RequireTasks(tb, w)
	for path := range workerPaths(tb, w) {
		if strings.HasPrefix(path, "/v1/tasks/") && strings.HasSuffix(path, "/events") {
			return
		}
	}
	tb.Skip("waiting for the worker's streaming (worker/streaming): /openapi.json has no /v1/tasks/{id}/events yet")
}

func workerPaths(tb testing.TB, w *Worker) map[string]any {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := w.Paths(ctx)
	if err != nil {
		tb.Fatalf("worker openapi: %v", err)
	}
	paths := make(map[string]any, len(raw))
	for k, v := range raw {
		paths[k] = v
	}
	return paths
}
