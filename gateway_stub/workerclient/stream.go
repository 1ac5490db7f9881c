package workerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"

	sse "github.com/tmaxmax/go-sse"
)

// maxFrameSize bounds one SSE event, as the relay bounds one frame.
const maxFrameSize = 1 << 20

// Frame events (Frame.Event, CONTRACT §6). A frame without event keeps its CONTRACT §3
// meaning (a progress report).
const (
	EventToken     = "token"      // a token of the model's answer
	EventToolStart = "tool_start" // data {"tool", "input"}
	EventToolEnd   = "tool_end"   // data {"tool", "output"}
	EventToolError = "tool_error" // data {"tool", "error"}
	EventNode      = "node"       // a graph node finished: data {"node"}
	EventInterrupt = "interrupt"  // the run stopped to ask a person
)

// Frame is one progress frame of a run (CONTRACT §3, with §6's events). Status goes started,
// processing..., then completed, failed, cancelled or (a run that asks a person) interrupted.
type Frame struct {
	TaskID   string `json:"task_id"`
	Seq      int64  `json:"seq"`
	Status   string `json:"status"`
	Progress int    `json:"progress"`
	Message  string `json:"message"`
	// PartialResult is what the run produced since the previous frame (a token's text for a
	// model's answer; a coalesced frame joins the text of the frames it stands for).
	PartialResult json.RawMessage `json:"partial_result,omitempty"`
	// Result is on the completed frame, Error on a failed or cancelled one.
	Result json.RawMessage `json:"result,omitempty"`
	Error  *TaskError      `json:"error,omitempty"`
	// TS is when the frame was made, RFC 3339 in UTC with milliseconds.
	TS string `json:"ts"`
	// Attempt is the job's delivery attempt that made the frame.
	Attempt int `json:"attempt,omitempty"`
	// Coalesced counts the frames this one stands for, when a slow reader's frames were
	// merged (Seq-Coalesced+1 is the first of them).
	Coalesced int `json:"coalesced,omitempty"`
	// Event is one of the Event constants, or empty for a plain progress frame.
	Event string `json:"event,omitempty"`
	// Data is the event's data (see the Event constants); ToolData and NodeName read it.
	Data json.RawMessage `json:"data,omitempty"`
	// Interrupt is the question of an interrupted run.
	Interrupt json.RawMessage `json:"interrupt,omitempty"`
	// Usage is on the final frame: what the run spent (CONTRACT §7).
	Usage *Usage `json:"usage,omitempty"`
	// Raw is the frame as the worker sent it (set when decoded, not encoded), for passing it
	// on untouched.
	Raw json.RawMessage `json:"-"`
}

// Final reports whether f ends its run.
func (f *Frame) Final() bool {
	switch f.Status {
	case "completed", "failed", "cancelled", RunInterrupted:
		return true
	}
	return false
}

// ToolData is the data of a tool_start, tool_end or tool_error frame.
type ToolData struct {
	Tool   string          `json:"tool"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// ToolData reads the data of a tool frame; false for any other frame.
func (f *Frame) ToolData() (ToolData, bool) {
	var d ToolData
	switch f.Event {
	case EventToolStart, EventToolEnd, EventToolError:
	default:
		return d, false
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		return d, false
	}
	return d, true
}

// NodeName is the graph node a node frame reports finished; false for any other frame.
func (f *Frame) NodeName() (string, bool) {
	var d struct {
		Node string `json:"node"`
	}
	if f.Event != EventNode || json.Unmarshal(f.Data, &d) != nil {
		return "", false
	}
	return d.Node, true
}

// StreamError is an error the worker sent inside a stream (an SSE "error" event), e.g.
// slow_reader when the reader fell too far behind: GET /v1/tasks/{TaskID}/events with
// ?from_seq=ResumeFromSeq continues from there.
type StreamError struct {
	Code          string
	Message       string
	RequestID     string
	ResumeFromSeq int64
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("worker stream error %s: %s (request %s)", e.Code, e.Message, e.RequestID)
}

// ErrStreamEnded is returned by Stream.Frames when the stream ends before the final frame.
var ErrStreamEnded = errors.New("workerclient: stream ended before the final frame")

// Stream is a run's frames as the worker streams them (server-sent events). Read them with
// Frames; Close it when done (reading to the end does not release it).
type Stream struct {
	// TaskID is the run's id (the worker's X-Task-ID): GET /v1/tasks/{id}/events on any
	// worker of the pool replays the run.
	TaskID string
	body   io.ReadCloser
	cancel context.CancelFunc
}

// Stream runs an agent and streams its frames (POST /v1/agents/{id}/stream). It returns once
// the worker has started the run; errors before that (a bad input, ErrThreadBusy on a
// req.ThreadID another run holds) are returned here as for Invoke. Leaving the stream (Close,
// or ctx ending) cancels the run.
func (c *Client) Stream(ctx context.Context, agentID string, req InvokeRequest) (*Stream, error) {
	if req.ThreadID != "" {
		if err := checkThreadID(req.ThreadID); err != nil {
			return nil, err
		}
	}
	ctx, cancelRun := runDeadline(ctx, req.Timeout)
	ctx, cancelDefault := c.withDefaultTimeout(ctx)
	cancel := func() { cancelDefault(); cancelRun() }
	path := "/v1/agents/" + url.PathEscape(agentID) + "/stream"
	resp, err := c.send(ctx, http.MethodPost, path, req, "text/event-stream")
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return &Stream{TaskID: resp.Header.Get("X-Task-ID"), body: resp.Body, cancel: cancel}, nil
}

// Frames yields the run's frames in order, up to and including the final one. It ends with
// an error when the stream breaks first (ErrStreamEnded, a read error, a *StreamError).
// A Stream's frames can be read once.
func (s *Stream) Frames() iter.Seq2[Frame, error] {
	return func(yield func(Frame, error) bool) {
		for ev, err := range sse.Read(s.body, &sse.ReadConfig{MaxEventSize: maxFrameSize}) {
			if err != nil {
				yield(Frame{}, fmt.Errorf("read stream %s: %w", s.TaskID, err))
				return
			}
			if ev.Type == "error" {
				yield(Frame{}, streamError(ev.Data))
				return
			}
			var f Frame
			if err := json.Unmarshal([]byte(ev.Data), &f); err != nil {
				yield(Frame{}, fmt.Errorf("decode frame of %s: %w", s.TaskID, err))
				return
			}
			f.Raw = json.RawMessage(ev.Data)
			if !yield(f, nil) || f.Final() {
				return
			}
		}
		yield(Frame{}, fmt.Errorf("%w (run %s)", ErrStreamEnded, s.TaskID))
	}
}

// Close ends the stream (and the run, if it is still going).
func (s *Stream) Close() error {
	defer s.cancel()
	if err := s.body.Close(); err != nil {
		return fmt.Errorf("close stream %s: %w", s.TaskID, err)
	}
	return nil
}

func streamError(data string) error {
	var body struct {
		Error struct {
			Code          string `json:"code"`
			Message       string `json:"message"`
			RequestID     string `json:"request_id"`
			ResumeFromSeq int64  `json:"resume_from_seq"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(data), &body); err != nil {
		return fmt.Errorf("worker stream error (unreadable: %w): %s", err, data)
	}
	e := body.Error
	return &StreamError{Code: e.Code, Message: e.Message, RequestID: e.RequestID, ResumeFromSeq: e.ResumeFromSeq}
}
