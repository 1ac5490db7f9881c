package relay

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Frame is one progress frame, kept as the JSON the worker sent so fields the relay does not
// know (an agent step's data, usage, an interrupt's question) pass through untouched.
type Frame struct {
	TaskID string
	Seq    int64
	Status string
	// Event is the agent step the frame reports (CONTRACT §6: token, tool_start, tool_end,
	// tool_error, node, interrupt), empty for a plain progress frame. Its data stays in Raw.
	Event string
	Raw   json.RawMessage
}

// Terminal reports whether f ends its run: completed, failed or cancelled, or interrupted (a
// run that stopped to ask a person has ended; its resume is a run of its own).
func (f Frame) Terminal() bool {
	switch f.Status {
	case "completed", "failed", "cancelled", "interrupted":
		return true
	}
	return false
}

// ParseFrame reads a frame: a JSON object with at least a status. A frame without seq (the
// seed's Python worker sent none) is numbered by the Hub.
func ParseFrame(data []byte) (Frame, error) {
	var head struct {
		TaskID string `json:"task_id"`
		Seq    int64  `json:"seq"`
		Status string `json:"status"`
		Event  string `json:"event"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Frame{}, fmt.Errorf("frame: %w", err)
	}
	if head.Status == "" {
		return Frame{}, errors.New("frame: no status")
	}
	if head.Seq < 0 {
		return Frame{}, fmt.Errorf("frame: negative seq %d", head.Seq)
	}
	return Frame{TaskID: head.TaskID, Seq: head.Seq, Status: head.Status, Event: head.Event, Raw: json.RawMessage(data)}, nil
}

// withSeq returns f's JSON with seq set, for frames the Hub numbered.
func (f Frame) withSeq(seq int64) Frame {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(f.Raw, &obj); err != nil {
		f.Seq = seq
		return f
	}
	obj["seq"] = json.RawMessage(fmt.Sprint(seq))
	raw, err := json.Marshal(obj)
	if err != nil {
		f.Seq = seq
		return f
	}
	f.Seq, f.Raw = seq, raw
	return f
}
