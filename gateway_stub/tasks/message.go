package tasks

import "time"

// Subject is where jobs are published; CancelSubjectPrefix + id cancels one.
const (
	Subject             = "agent.execute"
	CancelSubjectPrefix = "agent.cancel."
	TypeAgentExecution  = "agent_execution"
)

// TaskMessage is the seed's message, field for field (Payload holds the Payload* keys). Timeout is a time.Duration, so
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

// Job is what Execute publishes: the seed's agent and input, plus a conversation thread and
// the answer to an interrupted run's question (CONTRACT §6, fields of the job's payload).
type Job struct {
	// AgentID runs the job (required).
	AgentID string
	// Input is the agent's input; nil leaves it out of the payload (a resume needs none).
	Input any
	// ThreadID runs the job on that conversation thread, continuing its state; a thread id
	// nobody created yet creates it. A second job on a busy thread waits its turn rather
	// than failing. The worker checks the id (workerclient.ValidThreadID checks it early).
	ThreadID string
	// Resume, when not nil, answers the thread's pending question and continues its run
	// (ThreadID is then required). Any JSON value.
	Resume any
	// Timeout of this job; zero takes Options.Timeout.
	Timeout time.Duration
}

// Payload keys of a job (TaskMessage.Payload).
const (
	PayloadAgentID  = "agent_id"
	PayloadInput    = "input"
	PayloadThreadID = "thread_id"
	PayloadResume   = "resume"
)

// ExecutionID is what ExecuteAgentAsync returns, as in the seed.
type ExecutionID struct {
	ID string `json:"id"`
}
