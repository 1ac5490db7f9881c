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

// InvokeRequest is the body of POST /v1/agents/{id}/invoke and /stream.
type InvokeRequest struct {
	// Input is the agent's input; its type's input schema applies (text for chat, text or
	// {"messages": [...]} for agent).
	Input any `json:"input"`
	// Timeout is the run's deadline. It travels as integer nanoseconds, as encoding/json
	// writes a time.Duration; zero means the worker's default (30 s).
	Timeout time.Duration `json:"timeout,omitempty"`
	// ThreadID, when set, runs the agent on that conversation thread (CONTRACT §6): the run
	// continues the thread's state on whichever worker answers, and a thread id nobody has
	// created yet creates the thread. Another run holding the thread gives ErrThreadBusy.
	// Empty: a run without memory, as before threads.
	ThreadID string `json:"thread_id,omitempty"`
}

// Run statuses of an answer (InvokeResult.Status). An answer without status completed.
const (
	RunCompleted   = "completed"
	RunInterrupted = "interrupted"
)

// InvokeResult is the answer of an invocation (or of Resume).
type InvokeResult struct {
	// Output is the agent's output, as JSON. An interrupted run may have none.
	Output json.RawMessage `json:"output"`
	// Status is "interrupted" when the run stopped to ask a person (the question is in
	// Interrupt; answer it with Resume); "completed" or empty otherwise.
	Status string `json:"status,omitempty"`
	// Interrupt is the question of an interrupted run, as the graph asked it (any JSON).
	Interrupt json.RawMessage `json:"interrupt,omitempty"`
	// ThreadID is the thread the run continued, when it ran on one.
	ThreadID string         `json:"thread_id,omitempty"`
	Metadata InvokeMetadata `json:"metadata"`
}

// Interrupted reports whether the run stopped to ask a person.
func (r *InvokeResult) Interrupted() bool { return r.Status == RunInterrupted }

// InvokeMetadata describes one run. ExecutionTime is a Go duration string ("12.5ms").
type InvokeMetadata struct {
	RunID         string `json:"run_id"`
	ExecutionTime string `json:"execution_time"`
	AgentID       string `json:"agent_id"`
	AgentType     string `json:"agent_type"`
	WorkerID      string `json:"worker_id"`
	// Provider is the model provider that answered (agents with models).
	Provider string `json:"provider,omitempty"`
	// Degraded is true when a fallback or the basic provider answered.
	Degraded bool `json:"degraded,omitempty"`
	// ThreadID is the thread the run continued, when it ran on one.
	ThreadID string `json:"thread_id,omitempty"`
	// Usage sums every model call of the run (CONTRACT §7); nil from a worker that does not
	// report it.
	Usage *Usage `json:"usage,omitempty"`
	// TimeToFirstToken is a Go duration string, for runs that streamed tokens.
	TimeToFirstToken string `json:"time_to_first_token,omitempty"`
}

// Usage is what a run spent on models (CONTRACT §7).
type Usage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
	// CostUSD is nil when a model of the run has no price.
	CostUSD *float64 `json:"cost_usd"`
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
