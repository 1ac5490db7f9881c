package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
	"github.com/agentos/worker/gateway_stub/tasks"
)

// 1,000 jobs published from Go: 1,000 signed callbacks verified, 0 duplicates after dedupe,
// 0 lost.
func TestThousandJobsThousandSignedCallbacks(t *testing.T) {
	natsSrv, worker, secret := sharedEnv(t)
	testenv.RequireTasks(t, worker)
	ctx := testContext(t, 4*time.Minute)

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

	const n = 1000
	inputs := make(map[string]string, n)
	start := time.Now()
	for i := range n {
		input := fmt.Sprintf("job %d", i)
		exec, err := publisher.ExecuteAgentAsync(ctx, "demo-echo", input)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		inputs[exec.ID] = input
	}
	published := time.Since(start)

	for receiver.Stats().Stored < n {
		select {
		case <-ctx.Done():
			t.Fatalf("after %s: %+v, want %d stored", time.Since(start), receiver.Stats(), n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	all := time.Since(start)
	// Give late duplicates a moment to show up before counting.
	time.Sleep(500 * time.Millisecond)
	stats := receiver.Stats()
	t.Logf("%d jobs: published in %s (%.0f/s), all callbacks in %s (%.0f/s); receiver %+v",
		n, published, n/published.Seconds(), all, n/all.Seconds(), stats)

	if stats.Stored != n || stats.Rejected != 0 || stats.Verified < n {
		t.Fatalf("receiver %+v: want %d stored, %d verified, 0 rejected", stats, n, n)
	}
	for id, input := range inputs {
		d, ok := receiver.Result(id)
		if !ok {
			t.Fatalf("no result for %s (lost)", id)
		}
		var got string
		if err := json.Unmarshal(d.Result.Result, &got); err != nil || d.Status != "completed" || got != input {
			t.Fatalf("task %s: %s %s, want completed %q", id, d.Status, d.Result.Result, input)
		}
		if d.WebhookID == "" || d.Metadata.Attempts < 1 || d.Metadata.WorkerID == "" {
			t.Fatalf("task %s: delivery %+v lacks webhook-id or metadata", id, d)
		}
	}
}
