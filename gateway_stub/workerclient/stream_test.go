package workerclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentos/worker/gateway_stub/workerclient"
)

// sseWorker answers POST /v1/agents/a/stream with events, each written as the worker writes
// them (id = seq, event = status), the request body kept in *body.
func sseWorker(t *testing.T, events []string, body *map[string]any) *workerclient.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/agents/a/stream" || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "wrong call", http.StatusBadRequest)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(raw, body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Task-ID", "task-1")
		_, _ = io.WriteString(w, ": ping\n\n") // a keep-alive comment is not an event
		for _, ev := range events {
			_, _ = io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	c, err := workerclient.New(workerclient.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sseFrame(seq int, status, extra string) string {
	data := fmt.Sprintf(`{"task_id":"task-1","seq":%d,"status":%q,"progress":0,"message":"","ts":"2026-01-01T00:00:00.000Z"%s}`, seq, status, extra)
	return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", seq, status, data)
}

// A tool-calling run's frames arrive in order, with their events and data readable.
func TestStreamFramesWithEvents(t *testing.T) {
	var body map[string]any
	c := sseWorker(t, []string{
		sseFrame(1, "started", ""),
		sseFrame(2, "processing", `,"event":"tool_start","data":{"tool":"calculator","input":{"expression":"6*7"}}`),
		sseFrame(3, "processing", `,"event":"tool_end","data":{"tool":"calculator","output":"42"}`),
		sseFrame(4, "processing", `,"event":"node","data":{"node":"tools"}`),
		sseFrame(5, "processing", `,"event":"token","partial_result":"42"`),
		sseFrame(6, "completed", `,"result":"42","usage":{"input_tokens":3,"output_tokens":1,"total_tokens":4,"cost_usd":0.5}`),
		sseFrame(7, "processing", ""), // after the final frame: never read
	}, &body)
	s, err := c.Stream(context.Background(), "a", workerclient.InvokeRequest{Input: "6*7?", ThreadID: "t-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.TaskID != "task-1" || body["thread_id"] != "t-1" || body["input"] != "6*7?" {
		t.Fatalf("task %q, body %v", s.TaskID, body)
	}
	var got []string
	var last workerclient.Frame
	for f, err := range s.Frames() {
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		desc := fmt.Sprintf("%d %s %s", f.Seq, f.Status, f.Event)
		if d, ok := f.ToolData(); ok {
			desc += fmt.Sprintf(" %s in=%s out=%s", d.Tool, d.Input, d.Output)
		}
		if node, ok := f.NodeName(); ok {
			desc += " " + node
		}
		if !strings.Contains(string(f.Raw), fmt.Sprintf(`"seq":%d`, f.Seq)) {
			t.Fatalf("raw %s", f.Raw)
		}
		got = append(got, desc)
		last = f
	}
	want := []string{
		"1 started ",
		`2 processing tool_start calculator in={"expression":"6*7"} out=`,
		`3 processing tool_end calculator in= out="42"`,
		"4 processing node tools",
		"5 processing token",
		"6 completed ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("frames\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !last.Final() || string(last.Result) != `"42"` || last.Usage == nil || *last.Usage.CostUSD != 0.5 {
		t.Fatalf("last frame %+v", last)
	}
}

// A stream ends on its final frame, which for a run that asks a person is "interrupted"; a
// broken stream ends with an error.
func TestStreamEndings(t *testing.T) {
	cases := []struct {
		name    string
		events  []string
		frames  int
		wantErr func(error) bool
	}{
		{"interrupted is final", []string{sseFrame(1, "started", ""), sseFrame(2, "interrupted", `,"event":"interrupt","interrupt":{"question":"ok?"}`)}, 2, nil},
		{"failed is final", []string{sseFrame(1, "started", ""), sseFrame(2, "failed", `,"error":{"code":"timeout","message":"m"}`)}, 2, nil},
		{"cut before the final frame", []string{sseFrame(1, "started", "")}, 1,
			func(err error) bool { return errors.Is(err, workerclient.ErrStreamEnded) }},
		{"the worker's error event", []string{sseFrame(1, "started", ""),
			"event: error\ndata: {\"error\":{\"code\":\"slow_reader\",\"message\":\"m\",\"request_id\":\"r\",\"resume_from_seq\":2}}\n\n"}, 1,
			func(err error) bool {
				var se *workerclient.StreamError
				return errors.As(err, &se) && se.Code == "slow_reader" && se.ResumeFromSeq == 2
			}},
		{"a frame that is not JSON", []string{"id: 1\nevent: started\ndata: {nope\n\n"}, 0,
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "decode frame") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body map[string]any
			s, err := sseWorker(t, tc.events, &body).Stream(context.Background(), "a", workerclient.InvokeRequest{Input: "x"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, ok := body["thread_id"]; ok {
				t.Fatalf("body %v has a thread_id though none was given", body)
			}
			n := 0
			var last error
			for f, err := range s.Frames() {
				if err != nil {
					last = err
					break
				}
				n++
				if f.Status == "interrupted" && string(f.Interrupt) != `{"question":"ok?"}` {
					t.Fatalf("interrupt %s", f.Interrupt)
				}
			}
			if n != tc.frames {
				t.Fatalf("%d frames, want %d", n, tc.frames)
			}
			if (tc.wantErr == nil) != (last == nil) || (tc.wantErr != nil && !tc.wantErr(last)) {
				t.Fatalf("err %v", last)
			}
		})
	}
}
