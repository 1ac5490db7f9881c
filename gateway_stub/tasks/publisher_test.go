package tasks_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
	"github.com/agentos/worker/gateway_stub/tasks"
)

func TestHeaderCarrierKeepsKeysAsWritten(t *testing.T) {
	cases := []struct {
		name, key, lookup, want string
	}{
		{"lowercase traceparent", "traceparent", "traceparent", "v"},
		{"no canonicalisation", "traceparent", "Traceparent", ""},
		{"mixed case key", "Nats-Msg-Id", "Nats-Msg-Id", "v"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := nats.Header{}
			tasks.HeaderCarrier(h).Set(tc.key, "v")
			if got := tasks.HeaderCarrier(h).Get(tc.lookup); got != tc.want {
				t.Fatalf("Get(%q) = %q, want %q", tc.lookup, got, tc.want)
			}
			if keys := tasks.HeaderCarrier(h).Keys(); len(keys) != 1 || keys[0] != tc.key {
				t.Fatalf("keys %v", keys)
			}
		})
	}
}

// The message on the wire: the seed's TaskMessage JSON (timeout as integer nanoseconds), a
// Nats-Msg-Id, and a lowercase traceparent of the caller's span; a re-publish is deduplicated.
func TestPublishOnTheWire(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := testenv.StartNats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The worker creates this stream at start; here the test stands in for it.
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "AGENTOS_TASKS", Subjects: []string{tasks.Subject}, Retention: jetstream.WorkQueuePolicy,
		Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync(tasks.Subject)
	if err != nil {
		t.Fatal(err)
	}

	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(ctx) }()
	p, err := tasks.NewPublisher(js, tasks.Options{
		CallbackURL:    func(id string) string { return "http://agent-engine/execution-complete/" + id },
		StreamURL:      func(id string) string { return "ws://gateway/internal/stream/" + id },
		TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	spanCtx, span := tp.Tracer("test").Start(ctx, "caller")
	exec, err := p.ExecuteAgentAsync(spanCtx, "agent-1", "hello")
	span.End()
	if err != nil {
		t.Fatal(err)
	}

	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var wire map[string]json.RawMessage
	if err := json.Unmarshal(msg.Data, &wire); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id":         `"` + exec.ID + `"`,
		"type":       `"agent_execution"`,
		"payload":    `{"agent_id":"agent-1","input":"hello"}`,
		"callback":   `"http://agent-engine/execution-complete/` + exec.ID + `"`,
		"timeout":    `300000000000`,
		"stream_url": `"ws://gateway/internal/stream/` + exec.ID + `"`,
	}
	for k, v := range want {
		if string(wire[k]) != v {
			t.Errorf("%s = %s, want %s", k, wire[k], v)
		}
	}
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != exec.ID {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, exec.ID)
	}
	if _, ok := msg.Header["traceparent"]; !ok {
		t.Fatalf("no lowercase traceparent header: %v", msg.Header)
	}
	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, tasks.HeaderCarrier(msg.Header)))
	if got.TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("traceparent trace %s, want %s", got.TraceID(), span.SpanContext().TraceID())
	}

	// Published again with the same id (a retry after a lost ack): JetStream keeps one.
	var again tasks.TaskMessage
	if err := json.Unmarshal(msg.Data, &again); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, &again); err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 after a duplicate publish", info.State.Msgs)
	}
}

func TestPublishWithoutStreamFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := testenv.StartNats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	p, err := tasks.NewPublisher(js, tasks.Options{CallbackURL: func(id string) string { return "http://x/" + id }})
	if err != nil {
		t.Fatal(err)
	}
	// No worker has created the stream: a JetStream publish says so instead of losing the job.
	if _, err := p.ExecuteAgentAsync(ctx, "a", "b"); err == nil {
		t.Fatal("publish with no stream: want an error")
	}
}

// Execute puts CONTRACT §6's thread_id and resume in the job's payload, and only what was
// given: a job without them is the seed's payload, byte for byte.
func TestExecutePayload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := testenv.StartNats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AGENTOS_TASKS", Subjects: []string{tasks.Subject}}); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync(tasks.Subject)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tasks.NewPublisher(js, tasks.Options{CallbackURL: func(id string) string { return "http://cb/" + id }})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name        string
		job         tasks.Job
		wantPayload string
		wantTimeout string
		wantErr     bool
	}{
		{"the seed's job", tasks.Job{AgentID: "a", Input: "hi"}, `{"agent_id":"a","input":"hi"}`, "300000000000", false},
		{"a turn on a thread", tasks.Job{AgentID: "a", Input: "hi", ThreadID: "t-1"}, `{"agent_id":"a","input":"hi","thread_id":"t-1"}`, "300000000000", false},
		{"a resume", tasks.Job{AgentID: "a", ThreadID: "t-1", Resume: map[string]bool{"approved": true}, Timeout: time.Minute},
			`{"agent_id":"a","resume":{"approved":true},"thread_id":"t-1"}`, "60000000000", false},
		{"messages as input", tasks.Job{AgentID: "a", Input: map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}}},
			`{"agent_id":"a","input":{"messages":[{"content":"hi","role":"user"}]}}`, "300000000000", false},
		{"no agent", tasks.Job{Input: "hi"}, "", "", true},
		{"a resume without its thread", tasks.Job{AgentID: "a", Resume: "yes"}, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exec, err := p.Execute(ctx, tc.job)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("published job %s, want an error", exec.ID)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			msg, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var wire map[string]json.RawMessage
			if err := json.Unmarshal(msg.Data, &wire); err != nil {
				t.Fatal(err)
			}
			if string(wire["payload"]) != tc.wantPayload || string(wire["timeout"]) != tc.wantTimeout ||
				string(wire["id"]) != `"`+exec.ID+`"` {
				t.Fatalf("published %s; want payload %s and timeout %s", msg.Data, tc.wantPayload, tc.wantTimeout)
			}
		})
	}
}
