package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
	"github.com/agentos/worker/gateway_stub/workerclient"
)

// ExecutionResult is the seed's result shape: what its Python worker's process_task returns
// and sends to the callback.
type ExecutionResult struct {
	TaskID   string                 `json:"task_id"`
	Status   string                 `json:"status"`
	Result   interface{}            `json:"result"`
	Metadata map[string]interface{} `json:"metadata"`
}

func seedClient(baseURL string) *AIWorkerClient {
	return &AIWorkerClient{baseURL: baseURL, httpClient: &http.Client{Timeout: 30 * time.Second}, timeout: 30 * time.Second}
}

// The seed's CreateAgent with an untagged AgentConfig: the worker stores what was asked.
func TestSeedCreateAgent(t *testing.T) {
	_, worker, _ := sharedEnv(t)
	ctx := testContext(t, time.Minute)
	client := seedClient(worker.URL())
	check, err := workerclient.New(workerclient.Options{BaseURL: worker.URL()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		config AgentConfig
	}{
		{"echo, no config", AgentConfig{Type: "echo", Name: "seed echo"}},
		{"chat, fake model", AgentConfig{Type: "chat", Name: "support", Config: map[string]interface{}{
			"model": map[string]interface{}{"provider": "fake", "responses": []string{"Hi, how can I help?"}},
		}}},
		{"steps", AgentConfig{Type: "steps", Config: map[string]interface{}{"steps": 3, "step_delay": "10ms"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			agent, err := client.CreateAgent(ctx, tc.config)
			if err != nil {
				t.Fatal(err)
			}
			if agent.ID == "" || agent.Type != tc.config.Type || agent.Name != tc.config.Name || agent.CreatedAt.IsZero() {
				t.Fatalf("agent = %+v, want type %q name %q with an id and created_at", agent, tc.config.Type, tc.config.Name)
			}
			stored, err := check.GetAgent(ctx, agent.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Type != tc.config.Type || len(stored.Config) < len(tc.config.Config) {
				t.Fatalf("stored agent = %+v", stored)
			}
		})
	}
}

// seedCallbacks serves the seed's "agent-engine": it verifies each callback's Standard Webhooks
// signature and decodes the body into the seed's result shape.
func seedCallbacks(t *testing.T, secret string) (host string, results <-chan ExecutionResult) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan ExecutionResult, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("callback signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var res ExecutionResult
		if err := json.Unmarshal(body, &res); err != nil {
			t.Errorf("callback body %s: %v", body, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/execution-complete/"+res.TaskID) {
			t.Errorf("callback for %s arrived at %s", res.TaskID, r.URL.Path)
		}
		w.WriteHeader(http.StatusNoContent)
		ch <- res
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), ch
}

// The seed's ExecuteAgentAsync, a plain core-NATS Publish, comes back as a signed callback in
// the seed's result shape.
func TestSeedExecuteAgentAsync(t *testing.T) {
	natsSrv, worker, secret := sharedEnv(t)
	testenv.RequireTasks(t, worker)
	ctx := testContext(t, 2*time.Minute)

	nc, err := nats.Connect(natsSrv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	host, results := seedCallbacks(t, secret)
	s := &AgentService{nats: nc, agentEngine: host}

	exec, err := s.ExecuteAgentAsync("demo-echo", "hello from the seed")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-results:
		if res.TaskID != exec.ID || res.Status != "completed" || res.Result != "hello from the seed" {
			t.Fatalf("result = %+v, want task %s completed with the echo", res, exec.ID)
		}
		d, ok := res.Metadata["execution_time"].(string)
		if _, err := time.ParseDuration(d); !ok || err != nil {
			t.Fatalf("metadata.execution_time = %v, want a Go duration string", res.Metadata["execution_time"])
		}
	case <-ctx.Done():
		t.Fatalf("no callback for %s: %v", exec.ID, ctx.Err())
	}
}

// The seed's StreamExecution relays a whole run's frames, in order, to a WebSocket client.
func TestSeedStreamExecution(t *testing.T) {
	natsSrv, worker, secret := sharedEnv(t)
	testenv.RequireStreaming(t, worker)
	ctx := testContext(t, 2*time.Minute)

	nc, err := nats.Connect(natsSrv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	host, results := seedCallbacks(t, secret)
	s := &AgentService{nats: nc, agentEngine: host, workerURL: worker.URL(), primaryWorker: seedClient(worker.URL())}
	agent, err := s.primaryWorker.CreateAgent(ctx, AgentConfig{Type: "steps", Config: map[string]interface{}{"steps": 5, "step_delay": "100ms"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(s.StreamExecution))
	defer srv.Close()

	exec, err := s.ExecuteAgentAsync(agent.ID, "stream me")
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/?execution_id="+exec.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frames := readFrames(t, conn)
	checkRun(t, frames, exec.ID, 5)
	<-results
}
