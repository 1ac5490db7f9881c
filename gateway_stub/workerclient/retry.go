package workerclient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// RetrySettings tune retries of idempotent calls (GET, HEAD, OPTIONS, PUT, DELETE). POST and
// PATCH are never retried: creating an agent twice or running an agent twice is not harmless.
type RetrySettings struct {
	// MaxAttempts counts the first try. Default 3; 1 turns retries off.
	MaxAttempts uint
	// InitialInterval is the first wait, doubled on each retry with ±50 % jitter. Default 100 ms.
	InitialInterval time.Duration
	// MaxInterval caps one wait (and a worker's Retry-After). Default 2 s.
	MaxInterval time.Duration
}

// retryTransport retries idempotent requests on connection errors and on 429, 502, 503 and 504,
// honouring Retry-After, with exponential backoff. An open breaker ends the retries at once:
// failing fast is the breaker's point.
type retryTransport struct {
	next     http.RoundTripper
	settings RetrySettings
}

func newRetryTransport(s RetrySettings, next http.RoundTripper) *retryTransport {
	if s.MaxAttempts == 0 {
		s.MaxAttempts = 3
	}
	if s.InitialInterval <= 0 {
		s.InitialInterval = 100 * time.Millisecond
	}
	if s.MaxInterval <= 0 {
		s.MaxInterval = 2 * time.Second
	}
	return &retryTransport{next: next, settings: s}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// errRetryableStatus carries a retryable answer through backoff.Retry.
type errRetryableStatus struct{ status int }

func (e *errRetryableStatus) Error() string { return fmt.Sprintf("worker answered %d", e.status) }

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.settings.MaxAttempts <= 1 || !idempotent(req.Method) || (req.Body != nil && req.GetBody == nil) {
		return t.next.RoundTrip(req)
	}
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval = t.settings.InitialInterval
	policy.MaxInterval = t.settings.MaxInterval

	var last *http.Response
	attempt := 0
	resp, err := backoff.Retry(req.Context(), func() (*http.Response, error) {
		if last != nil { // a retryable answer we are about to replace
			_, _ = io.Copy(io.Discard, io.LimitReader(last.Body, 64<<10))
			_ = last.Body.Close()
			last = nil
		}
		try := req
		if attempt++; attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, backoff.Permanent(fmt.Errorf("rewind request body: %w", err))
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		resp, err := t.next.RoundTrip(try)
		if err != nil {
			if errors.Is(err, ErrBreakerOpen) || req.Context().Err() != nil {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
		if !retryableStatus(resp.StatusCode) {
			return resp, nil
		}
		last = resp
		if wait := retryAfter(resp.Header); wait > 0 {
			return resp, backoff.RetryAfter(int(min(wait, t.settings.MaxInterval) / time.Second))
		}
		return resp, &errRetryableStatus{status: resp.StatusCode}
	}, backoff.WithBackOff(policy), backoff.WithMaxTries(t.settings.MaxAttempts), backoff.WithMaxElapsedTime(0))
	var status *errRetryableStatus
	var later *backoff.RetryAfterError
	if err != nil && last != nil && (errors.As(err, &status) || errors.As(err, &later)) {
		// Out of attempts on a retryable answer: hand that answer to the caller as it is.
		return last, nil
	}
	if err != nil && last != nil { // cancelled while waiting to retry
		_ = last.Body.Close()
		return nil, err
	}
	return resp, err
}
