package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentos/worker/gateway_stub/relay"
	"github.com/agentos/worker/gateway_stub/tasks"
	"github.com/agentos/worker/gateway_stub/workerclient"
)

// The conversation endpoints of the demo page: a thread (CONTRACT §6), turns on it, and the
// answer to an interrupted run's question. A turn goes through the worker's synchronous stream
// door, so a busy thread answers 409 at once and the page can say so; a resume is published as
// a job, because the person's answer may come long after the question and a job waits its turn
// on the thread instead of failing. Either way the run's frames reach the page through the
// relay, as a job's do, under the run's id.

// followTimeout bounds how long a broken turn stream is followed from the pool's event log.
const followTimeout = time.Minute

// createThread: POST /api/threads {metadata?} → 201 the thread.
func (g *Gateway) createThread(w http.ResponseWriter, r *http.Request) {
	var req workerclient.CreateThreadRequest
	if !decodeBody(w, r, &req) {
		return
	}
	thread, err := g.primary.CreateThread(r.Context(), req)
	if err != nil {
		writeWorkerError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, thread)
}

// getThread: GET /api/threads/{id} → the thread now (status, messages, question).
func (g *Gateway) getThread(w http.ResponseWriter, r *http.Request) {
	state, err := g.primary.GetThread(r.Context(), r.PathValue("id"))
	if err != nil {
		writeWorkerError(w, err)
		return
	}
	question := state.Question()
	writeJSON(w, http.StatusOK, map[string]any{"thread": state, "question": question})
}

// sendTurn: POST /api/threads/{id}/turns {agent_id, input} → 202 {id, thread_id, stream}. The
// run starts before the answer (409 thread_busy if another run holds the thread); its frames
// follow on the stream.
func (g *Gateway) sendTurn(w http.ResponseWriter, r *http.Request) {
	threadID := r.PathValue("id")
	var req struct {
		AgentID string `json:"agent_id"`
		Input   any    `json:"input"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.AgentID == "" || req.Input == nil || req.Input == "" {
		writeError(w, http.StatusBadRequest, "validation_error", "agent_id and input are required")
		return
	}
	// The run outlives this request: it belongs to the gateway, bounded by the job timeout,
	// and stays in the request's trace.
	ctx := trace.ContextWithSpan(g.ctx, trace.SpanFromContext(r.Context()))
	stream, err := g.primary.Stream(ctx, req.AgentID, workerclient.InvokeRequest{
		Input: req.Input, ThreadID: threadID, Timeout: g.cfg.JobTimeout,
	})
	if err != nil {
		writeWorkerError(w, err)
		return
	}
	id := stream.TaskID
	if id == "" { // a worker that does not name its runs: the relay still needs a key
		id = uuid.NewString()
	}
	g.runs.Add(1)
	go func() {
		defer g.runs.Done()
		g.relayTurn(id, stream)
	}()
	writeJSON(w, http.StatusAccepted, map[string]string{
		"id": id, "thread_id": threadID, "stream": "/stream?execution_id=" + id,
	})
}

// relayTurn copies a turn's frames into the relay. A stream that breaks before the final
// frame is followed from the pool's event log of the run (any worker serves it), from the
// first frame the relay lacks.
func (g *Gateway) relayTurn(id string, stream *workerclient.Stream) {
	defer func() { _ = stream.Close() }()
	hub := g.relay.Hub()
	for f, err := range stream.Frames() {
		if err != nil {
			g.log.Warn("turn stream broke; following the run's events", "execution_id", id, "err", err)
			break
		}
		frame, err := relay.ParseFrame(f.Raw)
		if err != nil {
			g.log.Warn("bad frame from worker", "execution_id", id, "err", err)
			continue
		}
		if _, err := hub.Publish(id, frame); err != nil {
			g.log.Error("relay refused a turn's frame", "execution_id", id, "err", err)
			return
		}
		if f.Final() {
			return
		}
	}
	if stream.TaskID == "" {
		return // nothing to follow the run by
	}
	ctx, cancel := context.WithTimeout(g.ctx, followTimeout)
	defer cancel()
	if err := relay.Follow(ctx, hub, g.cfg.WorkerURL, id, g.workerHeader()); err != nil {
		g.log.Error("turn lost", "execution_id", id, "err", err)
	}
}

// resumeThread: POST /api/threads/{id}/resume {agent_id, resume} → 202 {id, thread_id, stream,
// result}: a job whose payload answers the thread's question.
func (g *Gateway) resumeThread(w http.ResponseWriter, r *http.Request) {
	threadID := r.PathValue("id")
	var req struct {
		AgentID string `json:"agent_id"`
		Resume  any    `json:"resume"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if !workerclient.ValidThreadID(threadID) {
		writeError(w, http.StatusBadRequest, "invalid_thread_id", "a thread id is 1 to 128 characters of A-Z a-z 0-9 _ . -")
		return
	}
	if req.AgentID == "" || req.Resume == nil {
		writeError(w, http.StatusBadRequest, "validation_error", "agent_id and resume are required")
		return
	}
	exec, err := g.publisher.Execute(r.Context(), tasks.Job{AgentID: req.AgentID, ThreadID: threadID, Resume: req.Resume})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "publish_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"id": exec.ID, "thread_id": threadID,
		"stream": "/stream?execution_id=" + exec.ID, "result": "/api/jobs/" + exec.ID + "/result",
	})
}

// writeWorkerError answers with the worker's own 4xx (the caller's mistake, a busy thread),
// and 502 when the worker could not be used.
func writeWorkerError(w http.ResponseWriter, err error) {
	var apiErr *workerclient.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500:
		writeError(w, apiErr.StatusCode, apiErr.Code, apiErr.Message)
	case errors.Is(err, workerclient.ErrInvalidThreadID): // refused before it was sent
		writeError(w, http.StatusBadRequest, "invalid_thread_id", err.Error())
	default:
		writeError(w, http.StatusBadGateway, "worker_unavailable", err.Error())
	}
}
