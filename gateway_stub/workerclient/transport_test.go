package workerclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/agentos/worker/gateway_stub/workerclient"
)

// script answers with the given statuses in turn (the last one repeats), counting calls.
func script(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		status := statuses[min(n, len(statuses)-1)]
		w.Header().Set("Content-Type", "application/json")
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
		if status >= 400 {
			_, _ = w.Write([]byte(`{"error":{"code":"c","message":"m","request_id":"r"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"a1","type":"echo","name":"","config":{},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRetriesOnlyIdempotentCalls(t *testing.T) {
	cases := []struct {
		name      string
		statuses  []int
		call      func(context.Context, *workerclient.Client) error
		wantCalls int32
		wantErr   bool
	}{
		{"GET retried through 502s", []int{502, 502, 200}, getAgent, 3, false},
		{"GET gives up after 3 attempts", []int{502}, getAgent, 3, true},
		{"GET not retried on 404", []int{404, 200}, getAgent, 1, true},
		{"DELETE retried", []int{504, 204}, deleteAgent, 2, false},
		{"POST never retried", []int{502, 201}, createAgent, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := script(t, tc.statuses...)
			c, err := workerclient.New(workerclient.Options{BaseURL: srv.URL, Retry: workerclient.RetrySettings{InitialInterval: time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(context.Background(), c)
			if (err != nil) != tc.wantErr || calls.Load() != tc.wantCalls {
				t.Fatalf("err %v after %d calls; want error=%v after %d", err, calls.Load(), tc.wantErr, tc.wantCalls)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv, calls := script(t, 503, 200)
	c, err := workerclient.New(workerclient.Options{BaseURL: srv.URL, Retry: workerclient.RetrySettings{InitialInterval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := getAgent(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond || calls.Load() != 2 {
		t.Fatalf("waited %s over %d calls, want about the 1 s of Retry-After", waited, calls.Load())
	}
}

func TestBreakerCountsOnlyWorkerFailures(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		wantOpen bool
	}{
		{"500s open it", 500, true},
		{"503s open it", 503, true},
		{"400s are the caller's fault", 400, false},
		{"404s are answers", 404, false},
		{"504 is the agent's deadline", 504, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := script(t, tc.status)
			c, err := workerclient.New(workerclient.Options{
				BaseURL: srv.URL,
				Breaker: workerclient.BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: time.Minute},
			})
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				_ = createAgent(context.Background(), c)
			}
			open := c.BreakerState() == gobreaker.StateOpen
			if open != tc.wantOpen {
				t.Fatalf("breaker %s after 5 answers of %d", c.BreakerState(), tc.status)
			}
			if open {
				if calls.Load() != 3 {
					t.Fatalf("%d calls reached the worker, want 3 (then fail fast)", calls.Load())
				}
				if err := createAgent(context.Background(), c); !errors.Is(err, workerclient.ErrBreakerOpen) {
					t.Fatalf("err %v, want ErrBreakerOpen", err)
				}
			}
		})
	}
}

func TestCancelledCallsDoNotTripTheBreaker(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	c, err := workerclient.New(workerclient.Options{BaseURL: srv.URL, Breaker: workerclient.BreakerSettings{ConsecutiveFailures: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		_ = createAgent(ctx, c)
	}
	if c.BreakerState() != gobreaker.StateClosed {
		t.Fatalf("breaker %s after cancelled calls", c.BreakerState())
	}
}

func TestFallbackTiers(t *testing.T) {
	down := func(t *testing.T) string { // a URL where nothing listens
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		return srv.URL
	}
	up, _ := script(t, 201)
	bad, _ := script(t, 400)
	cases := []struct {
		name               string
		primary, secondary string
		want               workerclient.Tier
		wantErr            bool
	}{
		{"primary answers", up.URL, down(t), workerclient.TierPrimary, false},
		{"secondary answers", down(t), up.URL, workerclient.TierSecondary, false},
		{"basic answer", down(t), down(t), workerclient.TierBasic, false},
		{"a 4xx is returned, not degraded", bad.URL, up.URL, workerclient.TierPrimary, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := workerclient.New(workerclient.Options{BaseURL: tc.primary})
			s, _ := workerclient.New(workerclient.Options{BaseURL: tc.secondary})
			f := &workerclient.Fallback{Primary: p, Secondary: s}
			agent, tier, err := f.CreateAgent(context.Background(), workerclient.AgentConfig{Type: "echo", Name: "n"})
			if tier != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("tier %s, err %v; want %s, error=%v", tier, err, tc.want, tc.wantErr)
			}
			if err == nil && agent == nil {
				t.Fatal("no agent")
			}
		})
	}
}

func getAgent(ctx context.Context, c *workerclient.Client) error {
	_, err := c.GetAgent(ctx, "a1")
	return err
}

func deleteAgent(ctx context.Context, c *workerclient.Client) error {
	return c.DeleteAgent(ctx, "a1")
}

func createAgent(ctx context.Context, c *workerclient.Client) error {
	_, err := c.CreateAgent(ctx, workerclient.AgentConfig{Type: "echo"})
	return err
}
