package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
	"github.com/agentos/worker/gateway_stub/tasks"
	"github.com/agentos/worker/gateway_stub/workerclient"
)

// chatOnThreads is a `chat` agent with the fake model: the chat type keeps its history on a
// thread (CONTRACT §6), so every turn adds the human message and the model's answer.
var chatOnThreads = workerclient.AgentConfig{Type: "chat", Name: "threads", Config: map[string]any{
	"system_prompt": "You remember the conversation.",
	"model": map[string]any{"provider": "fake", "responses": []string{
		"Nice to meet you, Ada.", "Your name is Ada.", "Ada, as you said.",
	}},
}}

// turn is one exchange of a conversation: what was said, and what the agent answered.
type turn struct{ human, ai string }

// conversation reads a thread's exchanges from its messages: human and AI messages in order
// (a system message, if the agent type keeps one, is not part of the exchanges).
func conversation(t *testing.T, messages []workerclient.Message) []turn {
	t.Helper()
	var turns []turn
	for i, m := range messages {
		switch m.Type {
		case workerclient.MessageHuman:
			turns = append(turns, turn{human: m.Content.String()})
		case workerclient.MessageAI:
			if len(turns) == 0 || turns[len(turns)-1].ai != "" {
				t.Fatalf("message %d is an AI message with no human message before it: %+v", i, messages)
			}
			turns[len(turns)-1].ai = m.Content.String()
		}
	}
	return turns
}

func newClient(t *testing.T, url string) *workerclient.Client {
	t.Helper()
	c, err := workerclient.New(workerclient.Options{BaseURL: url, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The acceptance of issue #12 from Go: a thread of three turns on workers A, B, A, with A
// killed -9 and restarted between the turns; the third answer's thread holds every earlier
// message in order, whichever worker reads it. The second turn streams, the others invoke.
func TestThreadContinuesAcrossWorkersAndARestart(t *testing.T) {
	natsSrv := startNats(t)
	secret := testenv.NewCallbackSecret()
	a := startWorker(t, workerOptions(natsSrv.URL(), secret, nil))
	b := startWorker(t, workerOptions(natsSrv.URL(), secret, nil))
	ctx := testContext(t, 3*time.Minute)
	clientA, clientB := newClient(t, a.URL()), newClient(t, b.URL())

	agent, err := clientA.CreateAgent(ctx, chatOnThreads)
	if err != nil {
		t.Fatal(err)
	}
	thread, err := clientA.CreateThread(ctx, workerclient.CreateThreadRequest{Metadata: map[string]any{"test": t.Name()}})
	if err != nil {
		t.Fatal(err)
	}
	if !workerclient.ValidThreadID(thread.ThreadID) || thread.Metadata["test"] != t.Name() {
		t.Fatalf("thread %+v", thread)
	}
	inputs := []string{"My name is Ada.", "What is my name?", "Say it once more."}
	var answers []string
	invoke := func(c *workerclient.Client, input string) {
		t.Helper()
		res, err := c.Invoke(ctx, agent.ID, workerclient.InvokeRequest{Input: input, ThreadID: thread.ThreadID, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatalf("turn %d on %s: %v", len(answers)+1, c.BaseURL(), err)
		}
		var out string
		if err := json.Unmarshal(res.Output, &out); err != nil || res.Interrupted() {
			t.Fatalf("turn %d: output %s, status %q", len(answers)+1, res.Output, res.Status)
		}
		answers = append(answers, out)
	}

	invoke(clientA, inputs[0])

	a.Kill() // -9: no drain, no goodbye; the thread must not depend on A
	stream, err := clientB.Stream(ctx, agent.ID, workerclient.InvokeRequest{Input: inputs[1], ThreadID: thread.ThreadID, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("turn 2 on B: %v", err)
	}
	var final workerclient.Frame
	var seq int64
	for f, err := range stream.Frames() {
		if err != nil {
			t.Fatalf("turn 2 on B, after seq %d: %v", seq, err)
		}
		if seq++; f.Seq != seq {
			t.Fatalf("turn 2: frame seq %d, want %d", f.Seq, seq)
		}
		final = f
	}
	_ = stream.Close()
	var out string
	if err := json.Unmarshal(final.Result, &out); err != nil || final.Status != "completed" {
		t.Fatalf("turn 2 ended %s with %s", final.Status, final.Result)
	}
	answers = append(answers, out)

	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	invoke(clientA, inputs[2])

	var want []turn
	for i := range inputs {
		want = append(want, turn{inputs[i], answers[i]})
	}
	for _, reader := range []*workerclient.Client{clientA, clientB} {
		state, err := reader.GetThread(ctx, thread.ThreadID)
		if err != nil {
			t.Fatalf("read the thread on %s: %v", reader.BaseURL(), err)
		}
		if got := conversation(t, state.Values.Messages); !slices.Equal(got, want) {
			t.Fatalf("thread on %s holds %+v, want %+v", reader.BaseURL(), got, want)
		}
		if state.Status != workerclient.ThreadIdle || state.ThreadID != thread.ThreadID {
			t.Fatalf("thread on %s: %s %s, want %s idle", reader.BaseURL(), state.ThreadID, state.Status, thread.ThreadID)
		}
	}

	history, err := clientB.ThreadHistory(ctx, thread.ThreadID, workerclient.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(history) < len(inputs) {
		t.Fatalf("%d checkpoints in the history of %d turns", len(history), len(inputs))
	}
	// Newest first: the newest checkpoint holds the whole conversation.
	if got := conversation(t, history[0].Values.Messages); !slices.Equal(got, want) {
		t.Fatalf("newest checkpoint holds %+v, want %+v", got, want)
	}
	for i := 1; i < len(history); i++ {
		if history[i].CreatedAt.After(history[i-1].CreatedAt) {
			t.Fatalf("history not newest first at %d: %s after %s", i, history[i].CreatedAt, history[i-1].CreatedAt)
		}
	}
	t.Logf("3 turns on A, B (A killed), A (restarted): %+v; %d checkpoints", want, len(history))
}

// The thread routes' errors reach Go as their sentinels, and a deleted thread is gone.
func TestThreadErrorsFromTheWorker(t *testing.T) {
	_, worker, _ := sharedEnv(t)
	ctx := testContext(t, time.Minute)
	client := newClient(t, worker.URL())
	agent, err := client.CreateAgent(ctx, chatOnThreads)
	if err != nil {
		t.Fatal(err)
	}
	thread, err := client.CreateThread(ctx, workerclient.CreateThreadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Invoke(ctx, agent.ID, workerclient.InvokeRequest{Input: "hello", ThreadID: thread.ThreadID}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown thread", func() error { _, err := client.GetThread(ctx, "no-such-thread"); return err }, workerclient.ErrThreadNotFound},
		{"history of an unknown thread", func() error {
			_, err := client.ThreadHistory(ctx, "no-such-thread", workerclient.HistoryOptions{})
			return err
		}, workerclient.ErrThreadNotFound},
		{"delete an unknown thread", func() error { return client.DeleteThread(ctx, "no-such-thread") }, workerclient.ErrThreadNotFound},
		{"resume a thread that asks nothing", func() error {
			_, err := client.Resume(ctx, thread.ThreadID, workerclient.ResumeRequest{Resume: "yes"})
			return err
		}, workerclient.ErrNotInterrupted},
		{"create a thread that exists", func() error {
			_, err := client.CreateThread(ctx, workerclient.CreateThreadRequest{ThreadID: thread.ThreadID})
			return err
		}, workerclient.ErrThreadExists},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var apiErr *workerclient.APIError
			if !errors.Is(err, tc.want) || !errors.As(err, &apiErr) || apiErr.RequestID == "" {
				t.Fatalf("err %v, want %v from the worker", err, tc.want)
			}
		})
	}

	// The client never sends a malformed thread id; the worker refuses one from anyone else.
	for _, path := range []string{"/v1/agents/" + agent.ID + "/invoke", "/v1/agents/" + agent.ID + "/stream"} {
		body, _ := json.Marshal(map[string]any{"input": "hi", "thread_id": "not a thread id!"})
		resp, err := http.Post(worker.URL()+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var answer struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || answer.Error.Code != "invalid_thread_id" {
			t.Fatalf("POST %s with a malformed thread_id: %d %s, want 400 invalid_thread_id", path, resp.StatusCode, answer.Error.Code)
		}
	}

	if err := client.DeleteThread(ctx, thread.ThreadID); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetThread(ctx, thread.ThreadID); !errors.Is(err, workerclient.ErrThreadNotFound) {
		t.Fatalf("deleted thread: %v, want ErrThreadNotFound", err)
	}
}

// Two jobs published at once on one thread both run, one after the other: the thread holds
// both exchanges whole, neither lost nor interleaved.
func TestThreadJobsTakeTurns(t *testing.T) {
	natsSrv, worker, secret := sharedEnv(t)
	ctx := testContext(t, 2*time.Minute)
	client := newClient(t, worker.URL())
	agent, err := client.CreateAgent(ctx, chatOnThreads)
	if err != nil {
		t.Fatal(err)
	}
	receiver, base := callbackServer(t, secret)
	nc, err := nats.Connect(natsSrv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	publisher, err := tasks.NewPublisher(js, tasks.Options{CallbackURL: callbackURL(base), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	threadID := "go-jobs-" + uuid.NewString() // named by the jobs themselves: created by the first
	inputs := []string{"first job", "second job"}
	ids := make([]string, len(inputs))
	for i, input := range inputs {
		exec, err := publisher.Execute(ctx, tasks.Job{AgentID: agent.ID, Input: input, ThreadID: threadID})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = exec.ID
	}
	answers := map[string]string{} // input → answer
	for i, id := range ids {
		d, err := receiver.Wait(ctx, id)
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		var out string
		if err := json.Unmarshal(d.Result.Result, &out); err != nil || d.Status != "completed" {
			t.Fatalf("job %d: %s %s %+v", i, d.Status, d.Result.Result, d.Error)
		}
		answers[inputs[i]] = out
	}

	state, err := client.GetThread(ctx, threadID)
	if err != nil {
		t.Fatal(err)
	}
	got := conversation(t, state.Values.Messages)
	if len(got) != len(inputs) {
		t.Fatalf("thread holds %+v, want both jobs' exchanges", got)
	}
	for _, exchange := range got { // the jobs may have run in either order, each whole
		if answer, ok := answers[exchange.human]; !ok || answer != exchange.ai {
			t.Fatalf("thread holds %+v; the jobs answered %v", got, answers)
		}
	}
}

// Every thread route the client calls is in the worker's own /openapi.json.
func TestThreadRoutesAreInTheWorkersSpec(t *testing.T) {
	_, worker, _ := sharedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	paths, err := worker.Paths(ctx)
	if err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{"post", "/v1/agents/{agent_id}/stream"},
		{"post", "/v1/threads"},
		{"get", "/v1/threads/{thread_id}"},
		{"delete", "/v1/threads/{thread_id}"},
		{"get", "/v1/threads/{thread_id}/history"},
		{"post", "/v1/threads/{thread_id}/resume"},
	}
	for _, r := range routes {
		var ops map[string]json.RawMessage
		if raw, ok := paths[r.path]; !ok || json.Unmarshal(raw, &ops) != nil {
			t.Errorf("%s is not in the worker's spec", r.path)
			continue
		}
		if _, ok := ops[r.method]; !ok {
			t.Errorf("%s %s is not in the worker's spec", strings.ToUpper(r.method), r.path)
		}
	}
}
