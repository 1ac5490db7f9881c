package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/agentos/worker/gateway_stub/workerclient"
)

// The breaker opens when the worker is killed, fails fast while open, and closes when the
// worker is back.
func TestBreakerOpensFailsFastAndCloses(t *testing.T) {
	natsSrv, _, secret := sharedEnv(t)
	worker := startWorker(t, workerOptions(natsSrv.URL(), secret, nil))
	ctx := testContext(t, 2*time.Minute)

	var transitions []string
	client, err := workerclient.New(workerclient.Options{
		BaseURL: worker.URL(),
		Timeout: 2 * time.Second,
		Breaker: workerclient.BreakerSettings{
			ConsecutiveFailures: 3,
			OpenTimeout:         time.Second,
			OnStateChange: func(_ string, from, to gobreaker.State) {
				transitions = append(transitions, from.String()+"→"+to.String())
			},
		},
		Retry: workerclient.RetrySettings{InitialInterval: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetAgent(ctx, "demo-echo"); err != nil {
		t.Fatalf("worker up: %v", err)
	}

	worker.Kill()
	// GetAgent is idempotent, so one call makes up to 3 attempts; the breaker opens on the
	// third consecutive refused connection and the retries stop there.
	calls := 0
	for client.BreakerState() != gobreaker.StateOpen {
		if calls++; calls > 5 {
			t.Fatalf("breaker still %s after %d calls to a dead worker", client.BreakerState(), calls)
		}
		if _, err := client.GetAgent(ctx, "demo-echo"); err == nil {
			t.Fatal("a call to a killed worker succeeded")
		}
	}
	t.Logf("breaker opened after %d call(s) to the killed worker", calls)

	// While open: every call fails at once with ErrBreakerOpen, without touching the network.
	const n = 200
	var slowest time.Duration
	start := time.Now()
	for range n {
		t0 := time.Now()
		_, err := client.CreateAgent(ctx, workerclient.AgentConfig{Type: "echo"})
		slowest = max(slowest, time.Since(t0))
		if !errors.Is(err, workerclient.ErrBreakerOpen) {
			t.Fatalf("call while open: %v, want ErrBreakerOpen", err)
		}
	}
	t.Logf("open breaker: %d calls in %s, slowest %s", n, time.Since(start), slowest)
	if slowest > 100*time.Millisecond { // a generous bound: no network call is made at all
		t.Fatalf("slowest call while open took %s: not failing fast", slowest)
	}

	if err := worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// After OpenTimeout the breaker lets one trial call through; its success closes it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := client.GetAgent(ctx, "demo-echo")
		if err == nil {
			break
		}
		if !errors.Is(err, workerclient.ErrBreakerOpen) || time.Now().After(deadline) {
			t.Fatalf("worker back, call: %v (breaker %s)", err, client.BreakerState())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if client.BreakerState() != gobreaker.StateClosed {
		t.Fatalf("breaker %s after a successful call, want closed", client.BreakerState())
	}
	want := "closed→open open→half-open half-open→closed"
	if got := strings.Join(transitions, " "); got != want {
		t.Fatalf("transitions %q, want %q", got, want)
	}
}

// Fallback reaches the secondary worker and then the basic answer: the seed's
// CreateAgentWithFallback and workerclient.Fallback, as workers die one by one.
func TestCreateAgentWithFallback(t *testing.T) {
	natsSrv, _, secret := sharedEnv(t)
	primary := startWorker(t, workerOptions(natsSrv.URL(), secret, nil))
	secondary := startWorker(t, workerOptions(natsSrv.URL(), secret, nil))
	ctx := testContext(t, 2*time.Minute)

	seed := &AgentService{primaryWorker: seedClient(primary.URL()), secondaryWorker: seedClient(secondary.URL())}
	clientFor := func(url string) *workerclient.Client {
		c, err := workerclient.New(workerclient.Options{BaseURL: url, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fallback := &workerclient.Fallback{Primary: clientFor(primary.URL()), Secondary: clientFor(secondary.URL())}
	// An agent created through the secondary is in the pool's shared store: readable anywhere.
	secondaryReader := clientFor(secondary.URL())

	steps := []struct {
		name     string
		kill     func()
		wantTier workerclient.Tier
	}{
		{"both workers up", func() {}, workerclient.TierPrimary},
		{"primary killed", primary.Kill, workerclient.TierSecondary},
		{"both killed", secondary.Kill, workerclient.TierBasic},
	}
	for _, step := range steps {
		step.kill()
		t.Run(step.name, func(t *testing.T) {
			config := workerclient.AgentConfig{Type: "echo", Name: "fallback " + step.name}
			agent, tier, err := fallback.CreateAgent(ctx, config)
			if err != nil || tier != step.wantTier {
				t.Fatalf("workerclient.Fallback: tier %s, err %v; want tier %s", tier, err, step.wantTier)
			}
			seedAgent, err := seed.CreateAgentWithFallback(ctx, AgentConfig{Type: "echo", Name: config.Name})
			if err != nil {
				t.Fatal(err)
			}
			isBasic := strings.HasPrefix(agent.ID, "basic-") && strings.HasPrefix(seedAgent.ID, "basic-")
			if isBasic != (step.wantTier == workerclient.TierBasic) {
				t.Fatalf("agents %q and %q: basic=%v at tier %s", agent.ID, seedAgent.ID, isBasic, step.wantTier)
			}
			if step.wantTier == workerclient.TierSecondary {
				for _, id := range []string{agent.ID, seedAgent.ID} {
					if _, err := secondaryReader.GetAgent(ctx, id); err != nil {
						t.Fatalf("agent %s from the secondary: %v", id, err)
					}
				}
			}
			if seedAgent.Name != config.Name || agent.Name != config.Name {
				t.Fatalf("names %q and %q, want %q", agent.Name, seedAgent.Name, config.Name)
			}
		})
	}
	// A 4xx is not a reason to fall back: every worker would refuse the same config.
	t.Run("bad config is not degraded", func(t *testing.T) {
		third := startWorker(t, workerOptions(natsSrv.URL(), secret, nil))
		fb := &workerclient.Fallback{Primary: clientFor(third.URL())}
		_, _, err := fb.CreateAgent(context.Background(), workerclient.AgentConfig{Type: "no-such-type"})
		var apiErr *workerclient.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode/100 != 4 {
			t.Fatalf("err = %v, want the worker's 4xx", err)
		}
	})
}
