// Package callbacks receives the worker's job results (CONTRACT §2): an http.Handler that
// verifies Standard Webhooks signatures with the spec authors' Go library (which also rejects
// timestamps more than 5 minutes off), deduplicates by webhook-id (retries keep the same id),
// and records each job's result for callers to read or wait for.
package callbacks
