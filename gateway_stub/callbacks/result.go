package callbacks

import (
	"encoding/json"
	"time"
)

// Job outcomes a callback reports.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	// StatusInterrupted: the run stopped to ask a person (CONTRACT §6); the question is in
	// Interrupt, and a job with "resume" in its payload continues the thread.
	StatusInterrupted = "interrupted"
)

// Result is the callback body: the seed's result shape, with the contract's error and metadata.
type Result struct {
	TaskID string          `json:"task_id"`
	Status string          `json:"status"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
	// Interrupt is the question of an interrupted run (any JSON).
	Interrupt json.RawMessage `json:"interrupt,omitempty"`
	Metadata  Metadata        `json:"metadata"`
}

// Error is a failed or cancelled job's error.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Metadata describes the run. ExecutionTime is a Go duration string ("2.5s").
type Metadata struct {
	ExecutionTime string `json:"execution_time"`
	Attempts      int    `json:"attempts"`
	WorkerID      string `json:"worker_id"`
	// ThreadID is the conversation thread the job ran on, if any.
	ThreadID string `json:"thread_id,omitempty"`
	// Usage is what the run spent on models (CONTRACT §7); nil from a worker that does not
	// report it.
	Usage *Usage `json:"usage,omitempty"`
	// TimeToFirstToken is a Go duration string, for runs that streamed tokens.
	TimeToFirstToken string `json:"time_to_first_token,omitempty"`
}

// Usage is what a run spent on models, summed over its model calls. It mirrors
// workerclient.Usage so this package stays free of the HTTP client's dependencies.
type Usage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
	// CostUSD is nil when a model of the run has no price.
	CostUSD *float64 `json:"cost_usd"`
}

// Delivery is one verified callback: its result and how it arrived.
type Delivery struct {
	Result
	// WebhookID is the Standard Webhooks message id, the same on every retry.
	WebhookID string `json:"webhook_id"`
	// TraceParent is the callback's W3C traceparent: the trace the job ran in.
	TraceParent string    `json:"traceparent,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
}
