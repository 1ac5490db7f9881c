package workerclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerSettings tune the circuit breaker in front of one worker. Zero fields take the defaults
// noted on each.
type BreakerSettings struct {
	// ConsecutiveFailures that open the breaker. Default 5.
	ConsecutiveFailures uint32
	// OpenTimeout is how long the breaker stays open before letting a trial call through.
	// Default 5 s.
	OpenTimeout time.Duration
	// HalfOpenCalls is how many trial calls may run at once while half-open; that many
	// successes in a row close the breaker. Default 1.
	HalfOpenCalls uint32
	// OnStateChange, when set, is told every transition ("closed" → "open" and so on).
	OnStateChange func(name string, from, to gobreaker.State)
}

// errServerFailure marks an answer that counts against the breaker (500, 503) while still
// handing the response itself to the caller.
type errServerFailure struct{ status int }

func (e *errServerFailure) Error() string { return fmt.Sprintf("worker answered %d", e.status) }

// breakerTransport runs every request through a gobreaker v2 breaker. A worker that refuses
// connections, times out or answers 500/503 counts as failing; 4xx answers and the agent's own
// outcomes (502 agent failed, 504 agent deadline) do not, nor do calls the caller cancelled.
type breakerTransport struct {
	next http.RoundTripper
	cb   *gobreaker.CircuitBreaker[*http.Response]
}

func newBreakerTransport(name string, s BreakerSettings, next http.RoundTripper) *breakerTransport {
	failures := s.ConsecutiveFailures
	if failures == 0 {
		failures = 5
	}
	timeout := s.OpenTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &breakerTransport{
		next: next,
		cb: gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
			Name:        name,
			MaxRequests: max(s.HalfOpenCalls, 1),
			Timeout:     timeout,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= failures
			},
			OnStateChange: s.OnStateChange,
			// The caller giving up says nothing about the worker's health.
			IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		}),
	}
}

func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.cb.Execute(func() (*http.Response, error) {
		resp, err := t.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusInternalServerError || resp.StatusCode == http.StatusServiceUnavailable {
			return resp, &errServerFailure{status: resp.StatusCode}
		}
		return resp, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("%w (%s): %w", ErrBreakerOpen, t.cb.Name(), err)
	}
	var failure *errServerFailure
	if errors.As(err, &failure) {
		return resp, nil
	}
	return resp, err
}

// State is the breaker's state: closed, half-open or open.
func (t *breakerTransport) State() gobreaker.State { return t.cb.State() }
