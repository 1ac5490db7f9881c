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
	// History is the job's story, its state changes oldest first: queued, redelivered,
	// running (an attempt on a worker), handed_back, cancel_requested, then its outcome
	// (completed, failed, cancelled, interrupted or dead). The worker keeps the last 50;
	// HistoryDropped counts older ones. Empty from a worker older than the story.
	History        []TaskEvent `json:"history,omitempty"`
	HistoryDropped int         `json:"history_dropped,omitempty"`
	// Callback is how the job's callback went; nil until it is first attempted (and for a
	// job without a callback).
	Callback *CallbackDelivery `json:"callback,omitempty"`
}

// TaskEvent is one state change of a job.
type TaskEvent struct {
	Event string    `json:"event"`
	At    time.Time `json:"at"`
	// Attempt is the run's attempt number (running and the outcome); 0 when it does not apply.
	Attempt int `json:"attempt,omitempty"`
	// WorkerID is the worker the event happened on.
	WorkerID string `json:"worker_id,omitempty"`
	// Delivery is how many times JetStream had delivered the job's message (redelivered).
	Delivery int `json:"delivery,omitempty"`
	// Reason is a short code: why a redelivery (worker_lost, handed_back, not_acked), a
	// hand-back (draining, or the error code) or an outcome (the error code).
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// CallbackDelivery is how a job's callback went: attempts, the last answer, the next try,
// and its end (DeliveredAt, or DeadLetteredAt with DeadLetterReason).
type CallbackDelivery struct {
	Attempts int `json:"attempts"`
	// LastStatusCode is the last answer's HTTP status; 0 when no answer came (see LastError).
	LastStatusCode   int        `json:"last_status_code,omitempty"`
	LastError        string     `json:"last_error,omitempty"`
	LastAttemptAt    *time.Time `json:"last_attempt_at,omitempty"`
	NextAttemptAt    *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt      *time.Time `json:"delivered_at,omitempty"`
	DeadLetteredAt   *time.Time `json:"dead_lettered_at,omitempty"`
	DeadLetterReason string     `json:"dead_letter_reason,omitempty"`
	// Tries are the last 10 attempts, oldest first; TriesDropped counts older ones.
	Tries        []CallbackTry `json:"tries,omitempty"`
	TriesDropped int           `json:"tries_dropped,omitempty"`
}

// CallbackTry is one attempt at delivering a job's callback.
type CallbackTry struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
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
