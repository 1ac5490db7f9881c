package workerclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/agentos/worker/gateway_stub/workerclient"
)

// call is one request a fake worker saw.
type call struct {
	Method, Path, Query string
	Body                map[string]json.RawMessage
}

// fakeWorker answers each "METHOD /path" from routes with its status and body, recording the
// calls; any other route answers 404.
type fakeWorker struct {
	mu    sync.Mutex
	calls []call
}

type answer struct {
	status int
	body   string
}

func newFakeWorker(t *testing.T, routes map[string]answer) (*fakeWorker, *workerclient.Client) {
	t.Helper()
	fw := &fakeWorker{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
		if raw, _ := io.ReadAll(r.Body); len(raw) > 0 {
			if err := json.Unmarshal(raw, &c.Body); err != nil {
				t.Errorf("%s %s: body %q is not a JSON object", r.Method, r.URL.Path, raw)
			}
		}
		fw.mu.Lock()
		fw.calls = append(fw.calls, c)
		fw.mu.Unlock()
		a, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			a = answer{404, `{"error":{"code":"not_found","message":"no route","request_id":"r"}}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	c, err := workerclient.New(workerclient.Options{
		BaseURL: srv.URL,
		Retry:   workerclient.RetrySettings{InitialInterval: time.Millisecond},
		Breaker: workerclient.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fw, c
}

func (fw *fakeWorker) seen() []call {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return append([]call(nil), fw.calls...)
}

func apiError(status int, code string) answer {
	return answer{status, `{"error":{"code":"` + code + `","message":"m","request_id":"req-1"}}`}
}

const threadState = `{"thread_id":"t-1","status":"interrupted","created_at":"2026-01-01T00:00:00Z",
 "updated_at":"2026-01-01T00:01:00Z","checkpoint_id":"cp-2",
 "values":{"messages":[
  {"type":"human","content":"what is 6*7?","id":"m1"},
  {"type":"ai","content":"","tool_calls":[{"name":"calculator","args":{"expression":"6*7"},"id":"call_1","type":"tool_call"}]},
  {"type":"tool","content":"42","name":"calculator","tool_call_id":"call_1","status":"success"},
  {"type":"ai","content":[{"type":"text","text":"It is "},{"type":"text","text":"42."}],"response_metadata":{"x":1}}
 ],"step":4},
 "interrupts":[{"id":"i-1","value":{"question":"approve?"}}]}`

// Every thread call: its route, its body, and its answer decoded.
func TestThreadCalls(t *testing.T) {
	fw, c := newFakeWorker(t, map[string]answer{
		"POST /v1/threads":            {201, `{"thread_id":"t-1","created_at":"2026-01-01T00:00:00Z","metadata":{"user":"ada"}}`},
		"GET /v1/threads/t-1":         {200, threadState},
		"GET /v1/threads/t-1/history": {200, `[{"checkpoint_id":"cp-2","parent_checkpoint_id":"cp-1","created_at":"2026-01-01T00:01:00Z","values":{"messages":[]}},{"checkpoint_id":"cp-1","created_at":"2026-01-01T00:00:00Z","values":{}}]`},
		"DELETE /v1/threads/t-1":      {204, ``},
		"POST /v1/threads/t-1/resume": {200, `{"output":null,"status":"interrupted","interrupt":{"question":"sure?"},"metadata":{"run_id":"r2","execution_time":"1ms","agent_id":"a","agent_type":"agent","worker_id":"w"}}`},
		"POST /v1/agents/a/invoke": {200, `{"output":"42","metadata":{"run_id":"r1","execution_time":"2ms","agent_id":"a","agent_type":"agent","worker_id":"w",
			"usage":{"input_tokens":10,"output_tokens":5,"total_tokens":15,"cost_usd":null},"time_to_first_token":"120ms"}}`},
	})
	ctx := context.Background()

	thread, err := c.CreateThread(ctx, workerclient.CreateThreadRequest{Metadata: map[string]any{"user": "ada"}})
	if err != nil || thread.ThreadID != "t-1" || thread.Metadata["user"] != "ada" || thread.CreatedAt.IsZero() {
		t.Fatalf("CreateThread: %+v, %v", thread, err)
	}

	state, err := c.GetThread(ctx, "t-1")
	if err != nil {
		t.Fatal(err)
	}
	if state.Status != workerclient.ThreadInterrupted || state.CheckpointID != "cp-2" || string(state.Question()) != `{"question":"approve?"}` {
		t.Fatalf("state %+v", state)
	}
	msgs := state.Values.Messages
	wantTypes := []string{"human", "ai", "tool", "ai"}
	wantText := []string{"what is 6*7?", "", "42", "It is 42."}
	if len(msgs) != len(wantTypes) {
		t.Fatalf("%d messages, want %d", len(msgs), len(wantTypes))
	}
	for i, m := range msgs {
		if m.Type != wantTypes[i] || m.Content.String() != wantText[i] {
			t.Errorf("message %d: %s %q, want %s %q", i, m.Type, m.Content.String(), wantTypes[i], wantText[i])
		}
	}
	if call := msgs[1].ToolCalls; len(call) != 1 || call[0].Name != "calculator" || string(call[0].Args) != `{"expression":"6*7"}` {
		t.Errorf("tool calls %+v", call)
	}
	if msgs[2].ToolCallID != "call_1" || msgs[2].Name != "calculator" || !strings.Contains(string(msgs[3].Raw), "response_metadata") {
		t.Errorf("tool message %+v; raw of the last %s", msgs[2], msgs[3].Raw)
	}
	if !strings.Contains(string(state.Values.Raw), `"step":4`) {
		t.Errorf("values raw %s lost the graph's other channels", state.Values.Raw)
	}

	history, err := c.ThreadHistory(ctx, "t-1", workerclient.HistoryOptions{Limit: 2, Before: "cp-3"})
	if err != nil || len(history) != 2 || history[0].CheckpointID != "cp-2" || history[0].ParentCheckpointID != "cp-1" {
		t.Fatalf("history %+v, %v", history, err)
	}

	res, err := c.Resume(ctx, "t-1", workerclient.ResumeRequest{Resume: map[string]any{"approved": true}, Timeout: time.Second})
	if err != nil || !res.Interrupted() || string(res.Interrupt) != `{"question":"sure?"}` {
		t.Fatalf("resume: %+v, %v", res, err)
	}

	inv, err := c.Invoke(ctx, "a", workerclient.InvokeRequest{Input: "6*7?", ThreadID: "t-1"})
	if err != nil || inv.Interrupted() || string(inv.Output) != `"42"` {
		t.Fatalf("invoke: %+v, %v", inv, err)
	}
	if u := inv.Metadata.Usage; u == nil || u.TotalTokens != 15 || u.CostUSD != nil || inv.Metadata.TimeToFirstToken != "120ms" {
		t.Fatalf("usage %+v, ttft %q", u, inv.Metadata.TimeToFirstToken)
	}
	if _, err := c.Invoke(ctx, "a", workerclient.InvokeRequest{Input: "no thread"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteThread(ctx, "t-1"); err != nil {
		t.Fatal(err)
	}

	calls := fw.seen()
	want := []struct{ route, query, body string }{
		{"POST /v1/threads", "", `{"metadata":{"user":"ada"}}`},
		{"GET /v1/threads/t-1", "", ``},
		{"GET /v1/threads/t-1/history", "before=cp-3&limit=2", ``},
		{"POST /v1/threads/t-1/resume", "", `{"resume":{"approved":true},"timeout":1000000000}`},
		{"POST /v1/agents/a/invoke", "", `{"input":"6*7?","thread_id":"t-1"}`},
		// No thread: no thread_id key at all, so a worker without threads reads the body.
		{"POST /v1/agents/a/invoke", "", `{"input":"no thread"}`},
		{"DELETE /v1/threads/t-1", "", ``},
	}
	if len(calls) != len(want) {
		t.Fatalf("%d calls, want %d: %+v", len(calls), len(want), calls)
	}
	for i, w := range want {
		got := calls[i]
		body := ""
		if got.Body != nil {
			raw, _ := json.Marshal(got.Body) // keys sorted: a stable form to compare
			body = string(raw)
		}
		if got.Method+" "+got.Path != w.route || got.Query != w.query || body != w.body {
			t.Errorf("call %d: %s %s ?%s %s; want %s ?%s %s", i, got.Method, got.Path, got.Query, body, w.route, w.query, w.body)
		}
	}
}

// The worker's thread errors match their sentinels with errors.Is, and stay *APIError.
func TestThreadErrors(t *testing.T) {
	ctx := context.Background()
	getThread := func(c *workerclient.Client) error { _, err := c.GetThread(ctx, "t-1"); return err }
	resume := func(c *workerclient.Client) error {
		_, err := c.Resume(ctx, "t-1", workerclient.ResumeRequest{Resume: "yes"})
		return err
	}
	invoke := func(c *workerclient.Client) error {
		_, err := c.Invoke(ctx, "a", workerclient.InvokeRequest{Input: "x", ThreadID: "t-1"})
		return err
	}
	stream := func(c *workerclient.Client) error {
		s, err := c.Stream(ctx, "a", workerclient.InvokeRequest{Input: "x", ThreadID: "t-1"})
		if err == nil {
			_ = s.Close()
		}
		return err
	}
	create := func(c *workerclient.Client) error {
		_, err := c.CreateThread(ctx, workerclient.CreateThreadRequest{ThreadID: "t-1"})
		return err
	}
	all := []error{workerclient.ErrThreadBusy, workerclient.ErrThreadNotFound, workerclient.ErrInvalidThreadID,
		workerclient.ErrThreadExists, workerclient.ErrNotInterrupted}
	cases := []struct {
		name   string
		route  string
		answer answer
		call   func(*workerclient.Client) error
		want   error // nil: none of the thread sentinels
	}{
		{"busy thread on invoke", "POST /v1/agents/a/invoke", apiError(409, "thread_busy"), invoke, workerclient.ErrThreadBusy},
		{"busy thread on stream", "POST /v1/agents/a/stream", apiError(409, "thread_busy"), stream, workerclient.ErrThreadBusy},
		{"busy thread on resume", "POST /v1/threads/t-1/resume", apiError(409, "thread_busy"), resume, workerclient.ErrThreadBusy},
		{"resume of an idle thread", "POST /v1/threads/t-1/resume", apiError(409, "conflict"), resume, workerclient.ErrNotInterrupted},
		{"unknown thread by code", "GET /v1/threads/t-1", apiError(404, "thread_not_found"), getThread, workerclient.ErrThreadNotFound},
		{"any 404 of a thread route", "GET /v1/threads/t-1", apiError(404, "not_found"), getThread, workerclient.ErrThreadNotFound},
		{"unknown agent is not a thread", "POST /v1/agents/a/invoke", apiError(404, "not_found"), invoke, nil},
		{"invalid thread id", "POST /v1/agents/a/invoke", apiError(400, "invalid_thread_id"), invoke, workerclient.ErrInvalidThreadID},
		{"thread exists", "POST /v1/threads", apiError(409, "thread_exists"), create, workerclient.ErrThreadExists},
		{"other 400s are not thread errors", "POST /v1/agents/a/invoke", apiError(400, "validation_error"), invoke, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newFakeWorker(t, map[string]answer{tc.route: tc.answer})
			err := tc.call(c)
			var apiErr *workerclient.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.answer.status || apiErr.RequestID != "req-1" {
				t.Fatalf("err %v, want the worker's *APIError %d", err, tc.answer.status)
			}
			for _, sentinel := range all {
				if errors.Is(err, sentinel) != (sentinel == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, sentinel, !(sentinel == tc.want))
				}
			}
		})
	}
}

// thread_busy is an answer, not a failing worker: never retried, never counted by the breaker.
func TestThreadBusyIsNeitherRetriedNorABreakerFailure(t *testing.T) {
	fw, c := newFakeWorker(t, map[string]answer{
		"DELETE /v1/threads/t-1":   apiError(409, "thread_busy"),
		"POST /v1/agents/a/invoke": apiError(409, "thread_busy"),
	})
	ctx := context.Background()
	for range 3 {
		if err := c.DeleteThread(ctx, "t-1"); !errors.Is(err, workerclient.ErrThreadBusy) {
			t.Fatalf("delete: %v", err)
		}
		if _, err := c.Invoke(ctx, "a", workerclient.InvokeRequest{Input: "x", ThreadID: "t-1"}); !errors.Is(err, workerclient.ErrThreadBusy) {
			t.Fatalf("invoke: %v", err)
		}
	}
	if n := len(fw.seen()); n != 6 {
		t.Fatalf("%d calls reached the worker, want 6 (no retries of an idempotent DELETE either)", n)
	}
	// The breaker opens after one failure here, so one counted 409 would have opened it.
	if st := c.BreakerState(); st != gobreaker.StateClosed {
		t.Fatalf("breaker %s after thread_busy answers", st)
	}
}

// A malformed thread id is refused before anything is sent.
func TestInvalidThreadIDsAreNeverSent(t *testing.T) {
	fw, c := newFakeWorker(t, nil)
	ctx := context.Background()
	cases := []struct {
		name string
		id   string
	}{
		{"empty", ""},
		{"slash", "a/b"},
		{"space", "a b"},
		{"too long", strings.Repeat("x", 129)},
		{"non-ASCII", "thé"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if workerclient.ValidThreadID(tc.id) {
				t.Fatalf("ValidThreadID(%q) = true", tc.id)
			}
			errs := []error{
				func() error { _, err := c.GetThread(ctx, tc.id); return err }(),
				func() error { _, err := c.ThreadHistory(ctx, tc.id, workerclient.HistoryOptions{}); return err }(),
				c.DeleteThread(ctx, tc.id),
				func() error { _, err := c.Resume(ctx, tc.id, workerclient.ResumeRequest{Resume: 1}); return err }(),
			}
			if tc.id != "" { // an empty ThreadID means "no thread" on a run
				errs = append(errs,
					func() error { _, err := c.Invoke(ctx, "a", workerclient.InvokeRequest{ThreadID: tc.id}); return err }(),
					func() error { _, err := c.Stream(ctx, "a", workerclient.InvokeRequest{ThreadID: tc.id}); return err }(),
					func() error {
						_, err := c.CreateThread(ctx, workerclient.CreateThreadRequest{ThreadID: tc.id})
						return err
					}())
			}
			for i, err := range errs {
				if !errors.Is(err, workerclient.ErrInvalidThreadID) {
					t.Errorf("call %d: %v, want ErrInvalidThreadID", i, err)
				}
			}
		})
	}
	if n := len(fw.seen()); n != 0 {
		t.Fatalf("%d calls reached the worker", n)
	}
	for _, id := range []string{"t-1", "a.b_c-D9", strings.Repeat("x", 128)} {
		if !workerclient.ValidThreadID(id) {
			t.Errorf("ValidThreadID(%q) = false", id)
		}
	}
}

// The history may come as a list or wrapped in an object.
func TestThreadHistoryShapes(t *testing.T) {
	entries := `[{"checkpoint_id":"b","created_at":"2026-01-01T00:01:00Z","values":{}},{"checkpoint_id":"a","created_at":"2026-01-01T00:00:00Z","values":{}}]`
	cases := []struct {
		name, body string
	}{
		{"a list", entries},
		{"under checkpoints", `{"checkpoints":` + entries + `}`},
		{"under history", `{"history":` + entries + `}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newFakeWorker(t, map[string]answer{"GET /v1/threads/t/history": {200, tc.body}})
			got, err := c.ThreadHistory(context.Background(), "t", workerclient.HistoryOptions{})
			if err != nil || len(got) != 2 || got[0].CheckpointID != "b" || got[1].CheckpointID != "a" {
				t.Fatalf("history %+v, %v", got, err)
			}
		})
	}
}

func TestContentJSON(t *testing.T) {
	cases := []struct {
		name, in, text, out string
		blocks              int
	}{
		{"a string", `"hello"`, "hello", `"hello"`, 0},
		{"text blocks", `[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"b"}]`, "ab",
			`[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"b"}]`, 3},
		{"no blocks", `[]`, "", `[]`, 0},
		{"null", `null`, "", `""`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c workerclient.Content
			if err := json.Unmarshal([]byte(tc.in), &c); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tc.text || len(c.Blocks) != tc.blocks || string(out) != tc.out {
				t.Fatalf("text %q, %d blocks, encoded %s; want %q, %d, %s", c.String(), len(c.Blocks), out, tc.text, tc.blocks, tc.out)
			}
		})
	}
	var c workerclient.Content
	if err := json.Unmarshal([]byte(`{"not":"content"}`), &c); err == nil {
		t.Fatal("an object decoded as content")
	}
}
