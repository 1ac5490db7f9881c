package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agentos/worker/gateway_stub/callbacks"
	"github.com/agentos/worker/gateway_stub/internal/testenv"
)

// The package shares one nats-server and one worker (started on first use, stopped in
// TestMain); tests that kill or reconfigure workers start their own.
var shared struct {
	once   sync.Once
	err    error
	nats   *testenv.Nats
	worker *testenv.Worker
	secret string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.worker != nil {
		start := time.Now()
		shared.worker.Close()
		if took := time.Since(start); took > 5*time.Second {
			fmt.Fprintf(os.Stderr, "the shared worker took %s to stop on SIGTERM; its log tail:\n%s\n", took, shared.worker.Tail(30))
		}
	}
	if shared.nats != nil {
		shared.nats.Close()
	}
	os.Exit(code)
}

// sharedEnv returns the package's nats-server, worker and callback secret.
func sharedEnv(t *testing.T) (*testenv.Nats, *testenv.Worker, string) {
	t.Helper()
	shared.once.Do(func() {
		ctx := context.Background()
		shared.secret = testenv.NewCallbackSecret()
		if shared.nats, shared.err = testenv.StartNats(ctx); shared.err != nil {
			return
		}
		shared.worker, shared.err = testenv.StartWorker(ctx, workerOptions(shared.nats.URL(), shared.secret, nil))
	})
	if shared.err != nil {
		t.Fatalf("shared environment: %v", shared.err)
	}
	return shared.nats, shared.worker, shared.secret
}

// workerOptions: demo agents, signed callbacks, loopback allowed as a callback target.
func workerOptions(natsURL, secret string, extra map[string]string) testenv.WorkerOptions {
	env := map[string]string{
		"WORKER_DEMO_AGENTS":     "true",
		"WORKER_CALLBACK_SECRET": secret,
		"WORKER_CALLBACK_ALLOW":  "127.0.0.1/8,::1",
		"WORKER_LOG_LEVEL":       "warning",
	}
	for k, v := range extra {
		env[k] = v
	}
	return testenv.WorkerOptions{NatsURL: natsURL, Env: env}
}

// startWorker starts a worker of the test's own, closed (and its log shown on failure) at the
// end of the test.
func startWorker(t *testing.T, opts testenv.WorkerOptions) *testenv.Worker {
	t.Helper()
	w, err := testenv.StartWorker(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker %s log tail:\n%s", w.URL(), w.Tail(60))
		}
		start := time.Now()
		w.Close()
		if took := time.Since(start); took > 5*time.Second {
			t.Logf("worker %s took %s to stop on SIGTERM", w.URL(), took)
		}
	})
	return w
}

// startNats starts a nats-server of the test's own.
func startNats(t *testing.T) *testenv.Nats {
	t.Helper()
	n, err := testenv.StartNats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// callbackServer serves a callbacks.Receiver at POST /execution-complete/{id} on a loopback port.
func callbackServer(t *testing.T, secret string) (*callbacks.Receiver, string) {
	t.Helper()
	rec, err := callbacks.NewReceiver(callbacks.Options{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /execution-complete/{id}", rec)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

// callbackURL is the receiver's URL for task id.
func callbackURL(base string) func(string) string {
	return func(id string) string { return fmt.Sprintf("%s/execution-complete/%s", base, id) }
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
