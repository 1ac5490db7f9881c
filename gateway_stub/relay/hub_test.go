package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/agentos/worker/gateway_stub/relay"
)

func frame(t *testing.T, seq int64, status string) relay.Frame {
	t.Helper()
	raw := fmt.Sprintf(`{"task_id":"run","seq":%d,"status":%q}`, seq, status)
	if seq == 0 { // the seed's frames: no seq, no task_id
		raw = fmt.Sprintf(`{"status":%q,"progress":0}`, status)
	}
	f, err := relay.ParseFrame([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// collect reads the run's frames from fromSeq to the end.
func collect(t *testing.T, hub *relay.Hub, fromSeq int64) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var seqs []int64
	err := hub.Frames(ctx, "run", fromSeq, func(f relay.Frame) error {
		var body struct{ Seq int64 }
		if err := json.Unmarshal(f.Raw, &body); err != nil || body.Seq != f.Seq {
			t.Errorf("frame JSON %s does not carry seq %d", f.Raw, f.Seq)
		}
		seqs = append(seqs, f.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func TestHubKeepsOneOrderedCopyOfTheRun(t *testing.T) {
	type push struct {
		seq    int64
		status string
	}
	p := func(seq int64, status string) push { return push{seq, status} }
	cases := []struct {
		name    string
		pushes  []push
		fromSeq int64
		want    []int64
	}{
		{"in order", []push{p(1, "started"), p(2, "processing"), p(3, "completed")}, 1, []int64{1, 2, 3}},
		{"resent after a reconnect", []push{p(1, "started"), p(2, "processing"), p(2, "processing"), p(1, "started"), p(3, "processing"), p(4, "completed")}, 1, []int64{1, 2, 3, 4}},
		{"frames after the final one are dropped", []push{p(1, "started"), p(2, "failed"), p(3, "processing")}, 1, []int64{1, 2}},
		{"seed frames without seq are numbered", []push{p(0, "started"), p(0, "processing"), p(0, "completed")}, 1, []int64{1, 2, 3}},
		{"from_seq skips what the reader has", []push{p(1, "started"), p(2, "processing"), p(3, "processing"), p(4, "completed")}, 3, []int64{3, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := relay.NewHub(relay.Options{})
			for _, ps := range tc.pushes {
				if _, err := hub.Publish("run", frame(t, ps.seq, ps.status)); err != nil {
					t.Fatal(err)
				}
			}
			got := collect(t, hub, tc.fromSeq)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("frames %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLiveReadersAndBounds(t *testing.T) {
	hub := relay.NewHub(relay.Options{MaxFramesPerRun: 5})
	done := make(chan []int64, 2)
	for range 2 {
		go func() {
			var seqs []int64
			_ = hub.Frames(context.Background(), "run", 1, func(f relay.Frame) error {
				seqs = append(seqs, f.Seq)
				return nil
			})
			done <- seqs
		}()
	}
	// A reader that never reads past its first frame holds nobody else up.
	stuck := make(chan struct{})
	go func() {
		_ = hub.Frames(context.Background(), "run", 1, func(relay.Frame) error { <-stuck; return nil })
	}()
	defer close(stuck)

	_, _ = hub.Publish("run", frame(t, 1, "started"))
	for seq := int64(2); seq <= 20; seq++ {
		_, _ = hub.Publish("run", frame(t, seq, "processing"))
	}
	_, _ = hub.Publish("run", frame(t, 21, "completed"))
	for range 2 {
		select {
		case got := <-done:
			// Five frames kept, then the final one always.
			if fmt.Sprint(got) != "[1 2 3 4 5 21]" {
				t.Fatalf("frames %v", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a live reader did not finish")
		}
	}

	small := relay.NewHub(relay.Options{MaxRuns: 1})
	if _, err := small.Publish("a", frame(t, 1, "started")); err != nil {
		t.Fatal(err)
	}
	if _, err := small.Publish("b", frame(t, 1, "started")); err == nil {
		t.Fatal("past MaxRuns: want ErrTooManyRuns")
	}
}

func TestParseFrame(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{"task_id":"x","seq":1,"status":"started"}`, true},
		{`{"status":"processing"}`, true},
		{`{"seq":1}`, false},
		{`not json`, false},
		{`{"status":"started","seq":-1}`, false},
	}
	for _, tc := range cases {
		if _, err := relay.ParseFrame([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("ParseFrame(%s): err %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// Frames of agent steps (CONTRACT §6) pass through byte for byte, with their event read; an
// interrupted run has ended.
func TestAgentStepFrames(t *testing.T) {
	raws := []string{
		`{"task_id":"run","seq":1,"status":"started"}`,
		`{"task_id":"run","seq":2,"status":"processing","event":"tool_start","data":{"tool":"calculator","input":{"expression":"6*7"}}}`,
		`{"task_id":"run","seq":3,"status":"processing","event":"tool_end","data":{"tool":"calculator","output":"42"}}`,
		`{"task_id":"run","seq":4,"status":"interrupted","event":"interrupt","interrupt":{"question":"go on?"}}`,
		`{"task_id":"run","seq":5,"status":"processing"}`,
	}
	hub := relay.NewHub(relay.Options{})
	for _, raw := range raws {
		f, err := relay.ParseFrame([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := hub.Publish("run", f); err != nil {
			t.Fatal(err)
		}
	}
	var got []relay.Frame
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.Frames(ctx, "run", 1, func(f relay.Frame) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	wantEvents := []string{"", "tool_start", "tool_end", "interrupt"}
	if len(got) != len(wantEvents) {
		t.Fatalf("%d frames, want %d: the run should end at the interrupted frame", len(got), len(wantEvents))
	}
	for i, f := range got {
		if f.Event != wantEvents[i] || string(f.Raw) != raws[i] {
			t.Errorf("frame %d: event %q, raw %s; want %q, %s", i, f.Event, f.Raw, wantEvents[i], raws[i])
		}
	}
	if !got[3].Terminal() {
		t.Fatal("an interrupted frame is not terminal")
	}
}
