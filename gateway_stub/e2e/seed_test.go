package e2e

// This file is the seed's Go code (ADR-007, "Hybrid Communication Patterns") with the
// fewest possible changes: gofmt'ed, and one line marked "CHANGED:". The seed names types,
// fields and helpers it does not show (AgentConfig, Agent, ExecutionID, AgentService's fields,
// upgrader, subscribeToExecutionUpdates, createBasicAgent); they are filled in at the end, under
// "NOT IN THE SEED". seed_paths_test.go drives this code against the real worker.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/agentos/worker/gateway_stub/relay"
)

// ---- The seed: 1. Synchronous HTTP ---------------------------------------------------------

// Go Service → Python Worker
type AIWorkerClient struct {
	baseURL    string
	httpClient *http.Client
	timeout    time.Duration
}

func (c *AIWorkerClient) CreateAgent(ctx context.Context, config AgentConfig) (*Agent, error) {
	payload, _ := json.Marshal(config)

	req, _ := http.NewRequestWithContext(ctx, "POST",
		c.baseURL+"/create-agent",
		bytes.NewBuffer(payload))
	req.Header.Set("Content-Type", "application/json")

	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("HTTP request failed: %w", err)
	}
	defer resp.Body.Close()

	var agent Agent
	if err := json.NewDecoder(resp.Body).Decode(&agent); err != nil {
		return nil, fmt.Errorf("response decode failed: %w", err)
	}

	return &agent, nil
}

// ---- The seed: 2. Asynchronous NATS --------------------------------------------------------

// Go Service publishes task
type TaskMessage struct {
	ID       string                 `json:"id"`
	Type     string                 `json:"type"`
	Payload  map[string]interface{} `json:"payload"`
	Callback string                 `json:"callback"`
	Timeout  time.Duration          `json:"timeout"`
}

func (s *AgentService) ExecuteAgentAsync(agentID string, input string) (*ExecutionID, error) {
	taskID := uuid.New().String()

	msg := &TaskMessage{
		ID:   taskID,
		Type: "agent_execution",
		Payload: map[string]interface{}{
			"agent_id": agentID,
			"input":    input,
		},
		// CHANGED: the host "agent-engine" is s.agentEngine, the test's callback receiver.
		Callback: fmt.Sprintf("http://%s/execution-complete/%s", s.agentEngine, taskID),
		Timeout:  5 * time.Minute,
	}

	data, _ := json.Marshal(msg)
	if err := s.nats.Publish("agent.execute", data); err != nil {
		return nil, fmt.Errorf("failed to publish task: %w", err)
	}

	return &ExecutionID{ID: taskID}, nil
}

// ---- The seed: 3. WebSocket streaming ------------------------------------------------------

// Go Service manages WebSocket connections
func (s *AgentService) StreamExecution(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Printf("WebSocket upgrade failed: %v", err)
		return
	}
	defer conn.Close()

	executionID := r.URL.Query().Get("execution_id")

	// Subscribe to execution updates
	updates := s.subscribeToExecutionUpdates(executionID)

	for update := range updates {
		if err := conn.WriteJSON(update); err != nil {
			log.Printf("WebSocket write failed: %v", err)
			break
		}
	}
}

// ---- The seed: Graceful Degradation --------------------------------------------------------

func (s *AgentService) CreateAgentWithFallback(ctx context.Context, config AgentConfig) (*Agent, error) {
	// Try primary AI worker
	if agent, err := s.primaryWorker.CreateAgent(ctx, config); err == nil {
		return agent, nil
	}

	// Fallback to secondary worker
	if agent, err := s.secondaryWorker.CreateAgent(ctx, config); err == nil {
		return agent, nil
	}

	// Fallback to basic agent without AI capabilities
	return s.createBasicAgent(config), nil
}

// ---- NOT IN THE SEED: what it names but does not show ---------------------------------------

// AgentConfig is untagged, as a Go team would write it; the worker matches keys like
// encoding/json does, case-insensitively.
type AgentConfig struct {
	Type   string
	Name   string
	Config map[string]interface{}
}

// Agent is the worker's answer.
type Agent struct {
	ID        string                 `json:"id"`
	Type      string                 `json:"type"`
	Name      string                 `json:"name"`
	Config    map[string]interface{} `json:"config"`
	CreatedAt time.Time              `json:"created_at"`
}

type ExecutionID struct {
	ID string
}

type AgentService struct {
	nats            *nats.Conn
	primaryWorker   *AIWorkerClient
	secondaryWorker *AIWorkerClient
	agentEngine     string // host:port of the callback receiver (the seed's "agent-engine")
	workerURL       string // where subscribeToExecutionUpdates reads a run's frames
}

var upgrader = websocket.Upgrader{}

// subscribeToExecutionUpdates follows the run's frames from the worker's
// /v1/tasks/{id}/events through a relay.Hub, until the final frame (or two minutes).
func (s *AgentService) subscribeToExecutionUpdates(executionID string) <-chan map[string]interface{} {
	updates := make(chan map[string]interface{})
	go func() {
		defer close(updates)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		hub := relay.NewHub(relay.Options{})
		go func() { _ = relay.Follow(ctx, hub, s.workerURL, executionID, nil) }()
		_ = hub.Frames(ctx, executionID, 1, func(f relay.Frame) error {
			var update map[string]interface{}
			if err := json.Unmarshal(f.Raw, &update); err != nil {
				return err
			}
			select {
			case updates <- update:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return updates
}

func (s *AgentService) createBasicAgent(config AgentConfig) *Agent {
	return &Agent{ID: "basic-" + uuid.NewString(), Type: config.Type, Name: config.Name, Config: config.Config, CreatedAt: time.Now()}
}
