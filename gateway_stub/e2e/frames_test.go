package e2e

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is the part of a CONTRACT §3 frame the tests check.
type frame struct {
	TaskID        string `json:"task_id"`
	Seq           int64  `json:"seq"`
	Status        string `json:"status"`
	Progress      int    `json:"progress"`
	Message       string `json:"message"`
	PartialResult any    `json:"partial_result"`
	Result        any    `json:"result"`
	TS            string `json:"ts"`
}

// readFrames reads JSON frames until the final one or the connection ends (60 s at most).
func readFrames(t *testing.T, conn *websocket.Conn) []frame {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	var frames []frame
	for {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			if len(frames) == 0 || !final(frames[len(frames)-1].Status) {
				t.Fatalf("stream ended after %d frames: %v", len(frames), err)
			}
			return frames
		}
		frames = append(frames, f)
		if final(f.Status) {
			return frames
		}
	}
}

func final(status string) bool {
	return status == "completed" || status == "failed" || status == "cancelled"
}

// checkRun asserts a whole run: seq 1..n without gaps or repeats, started first, completed last
// with a result, and at least one processing frame per step in between.
func checkRun(t *testing.T, frames []frame, taskID string, steps int) {
	t.Helper()
	if len(frames) < steps+2 {
		t.Fatalf("got %d frames, want at least %d (started, %d steps, completed): %+v", len(frames), steps+2, steps, frames)
	}
	for i, f := range frames {
		if f.Seq != int64(i+1) {
			t.Fatalf("frame %d has seq %d: want 1..n in order, no gaps: %+v", i, f.Seq, frames)
		}
		if f.TaskID != "" && f.TaskID != taskID {
			t.Fatalf("frame %d is for task %q, want %q", i, f.TaskID, taskID)
		}
	}
	if frames[0].Status != "started" {
		t.Fatalf("first frame status %q, want started", frames[0].Status)
	}
	last := frames[len(frames)-1]
	if last.Status != "completed" || last.Result == nil {
		t.Fatalf("last frame %+v, want completed with a result", last)
	}
	processing := 0
	for _, f := range frames[1 : len(frames)-1] {
		if f.Status == "processing" {
			processing++
		}
	}
	if processing < steps {
		t.Fatalf("%d processing frames, want at least %d", processing, steps)
	}
}
