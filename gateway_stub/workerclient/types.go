package workerclient

import (
	"encoding/json"
	"time"
)

// AgentConfig is what POST /create-agent and POST /v1/agents take (the seed's AgentConfig).
// The worker matches keys case-insensitively, so the seed's untagged struct works too.
type AgentConfig struct {
	Type   string         `json:"type"`
	Name   string         `json:"name,omitempty"`
	Config map[string]any `json:"config,omitempty"`
}

// Agent is an agent as the worker returns it.
type Agent struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Name      string         `json:"name"`
	Config    map[string]any `json:"config"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// InvokeRequest is the body of POST /v1/agents/{id}/invoke. Timeout travels as integer
// nanoseconds, as encoding/json writes a time.Duration; zero means the worker's default (30 s).
type InvokeRequest struct {
	Input   any           `json:"input"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// InvokeResult is the answer of an invocation.
type InvokeResult struct {
	Output   json.RawMessage `json:"output"`
	Metadata InvokeMetadata  `json:"metadata"`
}

// InvokeMetadata describes one run. ExecutionTime is a Go duration string ("12.5ms").
type InvokeMetadata struct {
	RunID         string `json:"run_id"`
	ExecutionTime string `json:"execution_time"`
	AgentID       string `json:"agent_id"`
	AgentType     string `json:"agent_type"`
	WorkerID      string `json:"worker_id"`
}

// Readiness is GET /readyz.
type Readiness struct {
	Status   string          `json:"status"`
	Checks   map[string]bool `json:"checks"`
	WorkerID string          `json:"worker_id"`
}

// Task is a job's state from GET /v1/tasks/{id}. Status is one of queued, running,
// completed, failed, cancelled, dead.
type Task struct {
	ID              string          `json:"id"`
	Status          string          `json:"status"`
	AgentID         string          `json:"agent_id"`
	Attempts        int             `json:"attempts"`
	WorkerID        string          `json:"worker_id"`
	CreatedAt       time.Time       `json:"created_at"`
	StartedAt       *time.Time      `json:"started_at"`
	FinishedAt      *time.Time      `json:"finished_at"`
	Result          json.RawMessage `json:"result,omitempty"`
	Error           *TaskError      `json:"error,omitempty"`
	ExecutionTime   string          `json:"execution_time,omitempty"`
	CancelRequested bool            `json:"cancel_requested"`
}

// TaskError is a failed job's error.
type TaskError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// TaskAccepted is the answer of POST /v1/tasks.
type TaskAccepted struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Location string `json:"location"`
}
