package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/agentos/worker/gateway_stub/workerclient"
)

const maxAPIBody = 1 << 20

// demoPage serves the embedded demo page.
func demoPage(w http.ResponseWriter, _ *http.Request) {
	page, err := webFiles.ReadFile("web/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "no_page", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_json", err.Error())
		return false
	}
	return true
}

// createAgent: POST /api/agents {type, name, config} → 201 {agent, tier}, through the fallback.
func (g *Gateway) createAgent(w http.ResponseWriter, r *http.Request) {
	var cfg workerclient.AgentConfig
	if !decodeBody(w, r, &cfg) {
		return
	}
	agent, tier, err := g.fallback.CreateAgent(r.Context(), cfg)
	if err != nil {
		writeWorkerError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"agent": agent, "tier": tier.String()})
}

// submitJob: POST /api/jobs {agent_id, input} → 202 {id, stream, result}.
func (g *Gateway) submitJob(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AgentID string `json:"agent_id"`
		Input   string `json:"input"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.AgentID == "" {
		writeError(w, http.StatusBadRequest, "validation_error", "agent_id is required")
		return
	}
	exec, err := g.publisher.ExecuteAgentAsync(r.Context(), req.AgentID, req.Input)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "publish_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"id":     exec.ID,
		"stream": "/stream?execution_id=" + exec.ID,
		"result": "/api/jobs/" + exec.ID + "/result",
	})
}

// jobResult: GET /api/jobs/{id}/result[?wait=20s] → 200 the callback, or 204 not yet.
func (g *Gateway) jobResult(w http.ResponseWriter, r *http.Request) {
	wait := time.Duration(0)
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Minute {
			writeError(w, http.StatusBadRequest, "validation_error", "wait must be a Go duration up to 1m")
			return
		}
		wait = d
	}
	id := r.PathValue("id")
	if d, ok := g.receiver.Result(id); ok || wait == 0 {
		if !ok {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, d)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	d, err := g.receiver.Wait(ctx, id)
	if err != nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
