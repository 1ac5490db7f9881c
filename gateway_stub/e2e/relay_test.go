package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
	"github.com/agentos/worker/gateway_stub/relay"
	"github.com/agentos/worker/gateway_stub/tasks"
	"github.com/agentos/worker/gateway_stub/workerclient"
)

// The relay delivers a whole run's frames, in order, to a WebSocket client: frames pushed by
// the worker to the job's stream_url, or pulled from the worker's /v1/tasks/{id}/events.
func TestRelayDeliversWholeRunInOrder(t *testing.T) {
	natsSrv, worker, secret := sharedEnv(t)
	testenv.RequireStreaming(t, worker)
	ctx := testContext(t, 2*time.Minute)

	client, err := workerclient.New(workerclient.Options{BaseURL: worker.URL()})
	if err != nil {
		t.Fatal(err)
	}
	const steps = 5
	agent, err := client.CreateAgent(ctx, workerclient.AgentConfig{Type: "steps", Config: map[string]any{"steps": steps, "step_delay": "100ms"}})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsSrv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	receiver, callbackBase := callbackServer(t, secret)

	cases := []struct {
		name string
		push bool
	}{
		{"push to stream_url", true},
		{"pull from /v1/tasks/{id}/events", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub := relay.NewHub(relay.Options{})
			rs := relay.NewServer(hub, nil)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /internal/stream/{id}", rs.IngestHandler)
			mux.HandleFunc("GET /stream", rs.StreamExecution)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			wsBase := "ws" + strings.TrimPrefix(srv.URL, "http")

			opts := tasks.Options{CallbackURL: callbackURL(callbackBase), Timeout: time.Minute}
			if tc.push {
				opts.StreamURL = func(id string) string { return wsBase + "/internal/stream/" + id }
			}
			publisher, err := tasks.NewPublisher(js, opts)
			if err != nil {
				t.Fatal(err)
			}
			exec, err := publisher.ExecuteAgentAsync(ctx, agent.ID, "relay me")
			if err != nil {
				t.Fatal(err)
			}
			if !tc.push {
				go func() { _ = relay.Follow(ctx, hub, worker.URL(), exec.ID, nil) }()
			}

			// A browser that connects while the run goes, and one that connects after it ended.
			start := time.Now()
			live := dialStream(ctx, t, wsBase, exec.ID)
			frames := readFrames(t, live)
			checkRun(t, frames, exec.ID, steps)
			took := time.Since(start)
			late := dialStream(ctx, t, wsBase, exec.ID)
			checkRun(t, readFrames(t, late), exec.ID, steps)
			t.Logf("%d frames, seq 1..%d in order, to a live client in %s and again to a late one", len(frames), len(frames), took)

			if _, err := receiver.Wait(ctx, exec.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func dialStream(ctx context.Context, t *testing.T, wsBase, id string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, wsBase+"/stream?execution_id="+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
