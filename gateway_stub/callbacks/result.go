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
)

// Result is the callback body: the seed's result shape, with the contract's error and metadata.
type Result struct {
	TaskID   string          `json:"task_id"`
	Status   string          `json:"status"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *Error          `json:"error,omitempty"`
	Metadata Metadata        `json:"metadata"`
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
