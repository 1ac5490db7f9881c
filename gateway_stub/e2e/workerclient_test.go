package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
	"github.com/agentos/worker/gateway_stub/tasks"
	"github.com/agentos/worker/gateway_stub/workerclient"
)

// Every route workerclient calls is in the worker's own /openapi.json, with that method: the
// hand-written client cannot drift from the spec unnoticed.
func TestClientRoutesAreInTheWorkersSpec(t *testing.T) {
	_, worker, _ := sharedEnv(t)
	ctx := testContext(t, 30*time.Second)
	paths, err := worker.Paths(ctx)
	if err != nil {
		t.Fatal(err)
	}
	routes := []struct {
		method, path string
		jobs         bool // part of the jobs door
	}{
		{"post", "/create-agent", false},
		{"get", "/v1/agents", false},
		{"get", "/v1/agents/{agent_id}", false},
		{"delete", "/v1/agents/{agent_id}", false},
		{"post", "/v1/agents/{agent_id}/invoke", false},
		{"get", "/readyz", false},
		{"post", "/v1/tasks", true},
		{"get", "/v1/tasks/{task_id}", true},
		{"post", "/v1/tasks/{task_id}/cancel", true},
	}
	_, hasJobs := paths["/v1/tasks"]
	for _, r := range routes {
		if r.jobs && !hasJobs {
			t.Logf("%s %s: the worker has no jobs door yet", r.method, r.path)
			continue
		}
		raw, ok := paths[r.path]
		if !ok {
			t.Errorf("%s is not in the worker's spec", r.path)
			continue
		}
		var ops map[string]json.RawMessage
		if err := json.Unmarshal(raw, &ops); err != nil {
			t.Fatal(err)
		}
		if _, ok := ops[r.method]; !ok {
			t.Errorf("%s %s is not in the worker's spec", strings.ToUpper(r.method), r.path)
		}
	}
}

// The typed client against the real worker: the happy paths, and the contract's errors as
// *APIError.
func TestClientAgainstWorker(t *testing.T) {
	_, worker, _ := sharedEnv(t)
	ctx := testContext(t, time.Minute)
	client, err := workerclient.New(workerclient.Options{BaseURL: worker.URL()})
	if err != nil {
		t.Fatal(err)
	}

	agent, err := client.CreateAgent(ctx, workerclient.AgentConfig{Type: "chat", Name: "typed", Config: map[string]any{
		"model": map[string]any{"provider": "fake", "responses": []string{"typed hello"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Invoke(ctx, agent.ID, workerclient.InvokeRequest{Input: "hi", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(res.Output, &out); err != nil || out != "typed hello" {
		t.Fatalf("output %s, want \"typed hello\"", res.Output)
	}
	if _, err := time.ParseDuration(res.Metadata.ExecutionTime); err != nil || res.Metadata.RunID == "" {
		t.Fatalf("metadata %+v", res.Metadata)
	}
	list, err := client.ListAgents(ctx)
	if err != nil || len(list) == 0 {
		t.Fatalf("list: %v, %d agents", err, len(list))
	}
	if ready, err := client.Ready(ctx); err != nil || ready.Status != "ready" {
		t.Fatalf("ready: %+v, %v", ready, err)
	}
	if err := client.DeleteAgent(ctx, agent.ID); err != nil {
		t.Fatal(err)
	}

	errorCases := []struct {
		name   string
		call   func() error
		status int
	}{
		{"deleted agent is gone", func() error { _, err := client.GetAgent(ctx, agent.ID); return err }, http.StatusNotFound},
		{"unknown type is a 4xx", func() error {
			_, err := client.CreateAgent(ctx, workerclient.AgentConfig{Type: "no-such-type"})
			return err
		}, 0},
		{"past the deadline is 504", func() error {
			_, err := client.Invoke(ctx, "demo-steps", workerclient.InvokeRequest{Input: "slow", Timeout: 300 * time.Millisecond})
			return err
		}, http.StatusGatewayTimeout},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var apiErr *workerclient.APIError
			if !errors.As(err, &apiErr) || apiErr.Code == "" || apiErr.RequestID == "" {
				t.Fatalf("err = %v, want an *APIError with code and request id", err)
			}
			if tc.status == 0 && apiErr.StatusCode/100 != 4 || tc.status != 0 && apiErr.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (0: any 4xx)", apiErr.StatusCode, tc.status)
			}
		})
	}
}

// Jobs over HTTP with the typed client: submit the same TaskMessage as on NATS, read its state
// until it is final, and its callback arrives.
func TestClientTasksOverHTTP(t *testing.T) {
	_, worker, secret := sharedEnv(t)
	testenv.RequireTasks(t, worker)
	ctx := testContext(t, time.Minute)
	client, err := workerclient.New(workerclient.Options{BaseURL: worker.URL()})
	if err != nil {
		t.Fatal(err)
	}
	receiver, base := callbackServer(t, secret)
	id := uuid.NewString()
	task := tasks.TaskMessage{
		ID: id, Type: tasks.TypeAgentExecution,
		Payload:  map[string]interface{}{"agent_id": "demo-echo", "input": "over HTTP"},
		Callback: callbackURL(base)(id),
		Timeout:  30 * time.Second,
	}
	accepted, err := client.SubmitTask(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if accepted.ID != id || accepted.Location != "/v1/tasks/"+id {
		t.Fatalf("accepted %+v", accepted)
	}
	var state *workerclient.Task
	for {
		if state, err = client.GetTask(ctx, id); err != nil {
			t.Fatal(err)
		}
		if state.Status == "completed" || state.Status == "failed" || state.Status == "dead" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if state.Status != "completed" || string(state.Result) != `"over HTTP"` || state.Attempts < 1 {
		t.Fatalf("task %+v", state)
	}
	if _, err := receiver.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Unknown task: a 404 *APIError; cancelling a finished one: 409.
	var apiErr *workerclient.APIError
	if _, err := client.GetTask(ctx, "no-such-task"); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown task: %v", err)
	}
	if err := client.CancelTask(ctx, id); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
		t.Fatalf("cancel a finished task: %v", err)
	}
}
