package tasks

import "time"

// Subject is where jobs are published; CancelSubjectPrefix + id cancels one.
const (
	Subject             = "agent.execute"
	CancelSubjectPrefix = "agent.cancel."
	TypeAgentExecution  = "agent_execution"
)

// TaskMessage is the seed's message, field for field. Timeout is a time.Duration, so
// encoding/json writes integer nanoseconds (300000000000 for 5 minutes), which the worker reads.
// StreamURL is the contract's optional addition: where the worker pushes the run's frames.
type TaskMessage struct {
	ID        string                 `json:"id"`
	Type      string                 `json:"type"`
	Payload   map[string]interface{} `json:"payload"`
	Callback  string                 `json:"callback"`
	Timeout   time.Duration          `json:"timeout"`
	StreamURL string                 `json:"stream_url,omitempty"`
}

// ExecutionID is what ExecuteAgentAsync returns, as in the seed.
type ExecutionID struct {
	ID string `json:"id"`
}
